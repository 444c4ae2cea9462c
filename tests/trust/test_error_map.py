"""SQUIRREL error maps recover the known scaling between a result and its data, and point at
planted artifacts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from abbe import simulate, trust
from abbe.simulate.artifacts import plant

FINE, COARSE = 20.0, 100.0  # nm: a 5× super-resolved output against widefield data
S = 5


def _scene(seed: int, size: int = 80):
    """Fine-grid filaments; SR = blur σ 30 nm; reference = blur σ 110 nm, binned 5×5."""
    spec = simulate.filaments((size * S, size * S), pixel_size_nm=FINE, seed=seed)
    sr = ndimage.gaussian_filter(spec.density.astype(np.float64), 30 / FINE)
    return spec, sr


def _reference(density: np.ndarray, *, gain=1.0, offset=0.0, photons=None, seed=0):
    wide = ndimage.gaussian_filter(np.asarray(density, np.float64), 110 / FINE)
    h, w = wide.shape
    ref = wide.reshape(h // S, S, w // S, S).mean(axis=(1, 3))
    if photons is not None:  # Poisson noise at a given peak
        ref = np.random.default_rng(seed).poisson(ref / ref.max() * photons).astype(float)
    return gain * ref + offset


def test_fit_recovers_gain_offset_and_the_resolution_scaling_blur():
    spec, sr = _scene(1)
    ref = _reference(spec.density, gain=2.0, offset=7.0)
    e = trust.error_map(sr, ref, output_pixel_size_nm=FINE, reference_pixel_size_nm=COARSE)
    assert e.scale == S
    assert e.alpha == pytest.approx(2.0, rel=0.03)
    assert e.beta == pytest.approx(7.0, abs=0.05 * 7)
    # Gaussians compose in quadrature: the blur from 30 nm to 110 nm has σ √(110² − 30²).
    assert e.sigma_nm == pytest.approx(np.sqrt(110**2 - 30**2), rel=0.06)
    assert e.rsp > 0.99
    assert e.map.shape == sr.shape


def test_registration_finds_a_known_shift():
    spec, sr = _scene(2)
    ref = _reference(spec.density)
    shifted = ndimage.shift(sr, (7.5, -5.0), order=1, mode="nearest")  # 150 nm, −100 nm
    e = trust.error_map(shifted, ref, output_pixel_size_nm=FINE, reference_pixel_size_nm=COARSE)
    assert e.shift_nm[0] == pytest.approx(-150, abs=20)
    assert e.shift_nm[1] == pytest.approx(100, abs=20)
    assert e.rsp > 0.98


@pytest.mark.parametrize("kind", ["deletion", "addition"])
def test_planted_artifacts_stand_out_in_the_error_map(kind):
    # Data: a noisy widefield image of the true specimen. Result: a perfect SR image but for one
    # planted artifact. The artifact's area must carry ≥ 1.4× the typical error (issue 4).
    hits = 0
    for seed in range(5):
        spec, _ = _scene(10 + seed)
        art = plant(spec.density, kind, pixel_size_nm=FINE, seed=seed)
        sr = ndimage.gaussian_filter(art.density.astype(np.float64), 30 / FINE)
        ref = _reference(spec.density, photons=200, seed=seed)
        e = trust.error_map(sr, ref, output_pixel_size_nm=FINE, reference_pixel_size_nm=COARSE)
        contrast = trust.local_contrast(e.map, art.region, dilate_px=int(110 / FINE))
        hits += contrast >= 1.4
    assert hits >= 4


def test_pixel_sizes_must_be_whole_multiples():
    from abbe.errors import InputError

    with pytest.raises(InputError, match="whole multiple"):
        trust.error_map(
            np.ones((90, 90)),
            np.ones((30, 30)),
            output_pixel_size_nm=33.0,
            reference_pixel_size_nm=100.0,
        )
