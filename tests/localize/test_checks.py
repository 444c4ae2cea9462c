"""Doubtful SMLM inputs and results are warned about: a widefield image, spots broader than a
molecule, emitters too dense for the method, an empty result, camera ADU read as photons; a
sparse SMLM stack in photons passes silently."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from abbe import simulate
from abbe.errors import AbbeWarning
from abbe.localize import fit
from abbe.localize.checks import check_localizations, check_photon_units
from abbe.simulate.smlm import smlm


def _checked(locs: pd.DataFrame, stack: np.ndarray, **options) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", AbbeWarning)  # any warning the test does not expect fails
        options.setdefault("sigma_fitted", "sigma_nm" in locs.columns)
        try:
            return check_localizations(locs, shape=stack.shape, pixel_size_nm=100.0, **options)
        except AbbeWarning as w:
            return [str(w)]


def test_a_sparse_smlm_stack_passes_silently():
    # 20 frames of 0.5 emitters/µm², 130 nm PSF, in photons: what fitting is made for.
    sim = smlm(frames=20, size=48, density=0.5, camera="ideal", seed=1)
    locs = fit(sim.stack, pixel_size_nm=100.0)
    assert len(locs) > 0.8 * len(sim.truth)
    assert _checked(locs, sim.stack) == []


def test_a_single_widefield_image_is_flagged_as_not_smlm():
    # Finding 11 of issue 28, scaled down: the README's widefield filaments gave 1 052
    # "molecules" without a word.
    sim = simulate.widefield("filaments", size=96, photons=50, background=2, seed=1)
    stack = sim.input[None].astype(np.float32)
    locs = fit(stack, pixel_size_nm=100.0)
    assert len(locs) > 50  # spots along the filaments are still fitted ...
    (message,) = _checked(locs, stack)  # ... but flagged
    assert "does not look like a sparse SMLM blink stack" in message
    assert "only 1 frame" in message and "abbe restore or abbe segment" in message


def test_spots_broader_than_a_molecule_are_flagged():
    # Twelve frames (a stack, so the frame count is no reason) of spots with a 400 nm PSF σ,
    # as extended structures give; the same stack with the usual 130 nm passes.
    broad = smlm(frames=12, size=48, density=0.2, psf_sigma_nm=400, camera="ideal", seed=2)
    sharp = smlm(frames=12, size=48, density=0.2, psf_sigma_nm=130, camera="ideal", seed=2)
    broad_locs = fit(broad.stack, pixel_size_nm=100.0)
    # The fit reports the broad σ (within its bounds): above the 250 nm of the check.
    assert np.median(broad_locs["sigma_nm"]) > 300
    (message,) = _checked(broad_locs, broad.stack)
    assert "median fitted PSF σ" in message and "only" not in message
    assert _checked(fit(sharp.stack, pixel_size_nm=100.0), sharp.stack) == []
    # With σ given (not fitted) the fitted widths say nothing, and nothing is claimed.
    assert _checked(broad_locs, broad.stack, sigma_fitted=False) == []


def test_emitters_denser_than_the_method_separates_are_flagged():
    # The true positions at 5 emitters/µm², as if all were found: above the 2 per µm² that
    # single-emitter fitting separates, the remedy is a learned model.
    sim = smlm(frames=12, size=32, density=5.0, camera="ideal", seed=3)
    density = len(sim.truth) / (12 * 3.2 * 3.2)
    assert density == pytest.approx(5.0, rel=0.15)
    (message,) = _checked(sim.truth, sim.stack, density_remedy="use --method deepstorm")
    assert f"{density:.1f} localizations per µm² per frame" in message
    assert "use --method deepstorm" in message and "only" not in message
    # A method trained for up to 8 per µm² separates them.
    assert _checked(sim.truth, sim.stack, density_limit=8.0) == []


def test_no_localizations_say_so_with_what_to_do():
    stack = np.zeros((20, 32, 32), np.float32)
    empty = pd.DataFrame(columns=["frame", "x_nm", "y_nm", "sigma_nm"])
    (message,) = _checked(empty, stack, empty_hint="lower --min-photons")
    assert message == "no localizations in 20 frames; lower --min-photons"


def test_camera_adu_read_as_photons_is_flagged():
    # An sCMOS stack in ADU (baseline 100 ADU) read without its camera.
    sim = smlm(frames=10, size=32, density=0.5, camera="scmos", seed=4)
    with pytest.warns(AbbeWarning, match="baseline .*give --camera"):
        assert check_photon_units(sim.stack, camera=None, units=None, remedy="give --camera")
    with warnings.catch_warnings():
        warnings.simplefilter("error", AbbeWarning)
        # With its camera, declared photons, or photon data: nothing to say.
        assert not check_photon_units(sim.stack, camera=sim.camera, units=None)
        assert not check_photon_units(sim.stack, camera=None, units="photons")
        ideal = smlm(frames=10, size=32, density=0.5, camera="ideal", seed=4)
        assert not check_photon_units(ideal.stack, camera=None, units=None)
