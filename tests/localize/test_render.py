"""Renders keep every localization's mass where it belongs; drift correction recovers a known
drift from the localizations alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abbe.localize.render import (
    correct_drift,
    estimate_drift,
    render_gaussian,
    render_histogram,
)
from abbe.simulate.smlm import smlm


def test_histogram_and_gaussian_renders_put_each_localization_in_its_pixel():
    locs = pd.DataFrame(
        {
            "frame": [1, 1, 2],
            "x_nm": [15.0, 15.0, 55.0],
            "y_nm": [25.0, 25.0, 45.0],
            "uncertainty_nm": [2.0, 2.0, 2.0],
        }
    )
    hist = render_histogram(locs, field_nm=(100, 100), pixel_size_nm=10)
    assert hist[2, 1] == 2 and hist[4, 5] == 1 and hist.sum() == 3
    gauss = render_gaussian(locs, field_nm=(100, 100), pixel_size_nm=10)
    assert gauss.sum() == pytest.approx(3, rel=0.02)
    assert np.unravel_index(np.argmax(gauss), gauss.shape) == (2, 1)


def test_drift_is_recovered_from_localizations_of_a_blinking_structure():
    sim = smlm(frames=1000, size=64, density=1.0, structure="filaments", camera="ideal", seed=3)
    truth = sim.truth.copy()
    frames = truth["frame"].to_numpy()
    drift_x = 0.06 * frames  # 60 nm over the acquisition
    drift_y = -40 * np.sin(frames / 1000 * np.pi)
    drifted = truth.assign(x_nm=truth["x_nm"] + drift_x, y_nm=truth["y_nm"] + drift_y)
    # Localizations carry 10 nm of precision noise.
    rng = np.random.default_rng(0)
    drifted["x_nm"] += rng.normal(0, 10, len(drifted))
    drifted["y_nm"] += rng.normal(0, 10, len(drifted))
    drift = estimate_drift(drifted, field_nm=(6400, 6400), bins=10)
    corrected = correct_drift(drifted, drift)

    def residual(table):  # drift left, up to the constant offset of the reference bin
        ex = table["x_nm"].to_numpy() - truth["x_nm"].to_numpy()
        ey = table["y_nm"].to_numpy() - truth["y_nm"].to_numpy()
        return np.sqrt(np.mean((ex - ex.mean()) ** 2 + (ey - ey.mean()) ** 2 - 2 * 10**2))

    before, after = residual(drifted), residual(corrected)
    # 60 nm of linear and 40 nm of curved drift; ~4000 localizations per 100-frame bin of a
    # blinking structure (different molecules in each bin): at least 80 % of it is removed.
    assert after < 0.2 * before and after < 8
