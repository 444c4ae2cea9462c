"""Linear unmixing of widefield channels: NNLS with a known or an estimated matrix."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from abbe.errors import InputError
from abbe.restore.unmix import crosstalk, estimate_matrix, nnls_unmix
from abbe.simulate.spectral import multicolour


def test_nnls_matches_scipy_on_random_pixels(rng):
    matrix = np.array([[1.0, 0.3, 0.1], [0.2, 1.0, 0.4], [0.05, 0.25, 1.0]])
    y = rng.normal(5, 10, (3, 4, 5))  # many pixels need a label clipped at zero
    got = nnls_unmix(y, matrix, background=np.zeros(3))
    for i in range(4):
        for j in range(5):
            want = optimize.nnls(matrix, y[:, i, j])[0]
            np.testing.assert_allclose(got[:, i, j], want, atol=1e-4)


def test_known_matrix_recovers_noise_free_channels():
    sim = multicolour(size=64, peak_photons=500, background=10, seed=1)
    mixed = np.einsum("dl,lyx->dyx", sim.matrix, sim.truth) + 10.0
    out = nnls_unmix(mixed, sim.matrix, background=np.full(3, 10.0))
    np.testing.assert_allclose(out, sim.truth, atol=1e-3 * sim.truth.max())


def test_unmixing_noisy_channels_leaves_under_2_percent_crosstalk():
    sim = multicolour(size=128, peak_photons=500, background=10, seed=2)
    raw = crosstalk(sim.image - 10.0, sim.truth)
    out = crosstalk(nnls_unmix(sim.image, sim.matrix), sim.truth)
    off = ~np.eye(3, dtype=bool)
    assert np.abs(raw[off]).max() == pytest.approx(0.2, abs=0.01)  # the bleed-through
    assert np.abs(out[off]).max() < 0.02


def test_estimated_matrix_is_close_to_the_true_one():
    sim = multicolour(size=128, peak_photons=1000, background=10, seed=3)
    m = estimate_matrix(sim.image)
    assert np.abs(m - sim.matrix).max() < 0.03


def test_wrong_matrix_shape_is_an_input_error():
    with pytest.raises(InputError, match="one row per channel"):
        nnls_unmix(np.zeros((3, 8, 8)), np.eye(2))
