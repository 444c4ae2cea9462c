"""SMLM simulation: the density, photons and positions in the truth table are the ones asked
for, in the challenge's coordinates, and the frames hold them."""

from __future__ import annotations

import numpy as np
import pytest

from abbe.simulate import Camera
from abbe.simulate.smlm import render_emitters, smlm


def test_density_and_photon_range_follow_the_parameters():
    sim = smlm(frames=400, size=64, density=0.5, photons=(1000, 2000), camera="ideal", seed=1)
    per_frame = len(sim.truth) / 400
    assert per_frame == pytest.approx(0.5 * 6.4 * 6.4, rel=0.05)
    assert sim.truth["photons"].between(1000, 2000).all()
    assert sim.truth["frame"].min() == 1 and sim.truth["frame"].max() == 400
    assert sim.truth["x_nm"].between(0, 6400).all()


def test_an_emitter_at_a_pixel_centre_puts_its_peak_there():
    # x = 250 nm, y = 150 nm with 100 nm pixels: centre of pixel (row 1, column 2).
    img = render_emitters(np.array([2.5]), np.array([1.5]), np.array([1000.0]), (8, 8), sigma_px=1)
    assert np.unravel_index(np.argmax(img), img.shape) == (1, 2)
    from scipy.stats import norm

    # What falls off the frame: the parts beyond 1.5 σ above and 2.5 σ to the left.
    assert img.sum() == pytest.approx(1000 * norm.cdf(1.5) * norm.cdf(2.5), rel=1e-6)


def test_frames_hold_the_expected_photons():
    sim = smlm(frames=50, size=32, density=0.2, background=(10, 10), camera=Camera.ideal(), seed=3)
    expected = 10 * 32 * 32 * 50 + sim.truth["photons"].sum() * 0.97
    assert sim.stack.sum() == pytest.approx(expected, rel=0.02)


def test_same_seed_same_stack_and_airy_psf_runs():
    a = smlm(frames=5, size=32, seed=7)
    b = smlm(frames=5, size=32, seed=7)
    np.testing.assert_array_equal(a.stack, b.stack)
    airy = smlm(frames=3, size=32, psf="airy", camera="ideal", seed=7)
    assert airy.stack.shape == (3, 32, 32)


def test_blinking_fluorophores_on_filaments_reappear_over_frames():
    sim = smlm(frames=200, size=32, density=0.5, structure="filaments", camera="ideal", seed=2)
    per_frame = len(sim.truth) / 200
    assert per_frame == pytest.approx(0.5 * 3.2 * 3.2, rel=0.25)
    repeats = sim.truth.groupby("emitter").size()
    assert repeats.max() > 1  # the same molecule blinks on again
