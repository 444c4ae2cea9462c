"""Decorrelation analysis reads the resolution the data hold, on dim images too (issue #21).

Truth: simulated widefield filaments (Airy PSF, NA 1.3, λ 632 nm, 100 nm pixels: optical cutoff
period λ/2NA = 243 nm) with Poisson noise. At high signal the resolution is the cutoff; at low
signal it is what two independent acquisitions would show, the analytic FRC expectation
S/(S+N) at 1/7 (:func:`abbe.metrics.resolution.expected_frc`).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from abbe import simulate
from abbe.errors import AbbeWarning
from abbe.metrics import resolution as R

OPTICS = {"na": 1.3, "wavelength_nm": 632.0, "pixel_size_nm": 100.0}
CUTOFF_NM = 632.0 / (2 * 1.3)


def _filaments(photons: float, seed: int, size: int = 512) -> simulate.Simulation:
    return simulate.widefield(
        "filaments", size=size, photons=photons, background=5, seed=seed, **OPTICS
    )


def test_decorrelation_reads_the_optical_cutoff_at_high_signal():
    # Issue #21: the published algorithm read 280 nm here (15 % coarse).
    sim = _filaments(1000.0, seed=41)
    dec = R.decorrelation(sim.input, pixel_size_nm=100)
    assert dec.resolution_nm == pytest.approx(CUTOFF_NM, rel=0.10)
    assert dec.reason == ""


@pytest.mark.parametrize("seed", [42, 43])
def test_decorrelation_of_a_dim_image_agrees_with_the_frc(seed):
    # Issue #21: at 30 photons peak every field gave NaN; the FRC reads ~340 nm there.
    sim = _filaments(30.0, seed=seed)
    expected = R.expected_frc(sim.clean, pixel_size_nm=100).resolution_nm
    dec = R.decorrelation(sim.input, pixel_size_nm=100)
    assert dec.resolution_nm == pytest.approx(expected, rel=0.10)
    assert np.isfinite(dec.a0) and dec.a0 > 0.3


def test_decorrelation_still_reads_a_resolution_at_10_photons():
    sim = _filaments(10.0, seed=44)
    expected = R.expected_frc(sim.clean, pixel_size_nm=100).resolution_nm
    dec = R.decorrelation(sim.input, pixel_size_nm=100)
    # Single fields scatter more this dim (up to 17 % on the fields measured).
    assert dec.resolution_nm == pytest.approx(expected, rel=0.20)


def test_decorrelation_follows_the_signal_level():
    # More photons show finer detail; decorrelation must see it (it "barely moved" before).
    res = [
        R.decorrelation(_filaments(p, seed=45, size=256).input, pixel_size_nm=100).resolution_nm
        for p in (10.0, 30.0, 1000.0)
    ]
    assert res[0] > res[1] > res[2]


def test_decorrelation_does_not_depend_on_the_image_scale_or_offset():
    sim = _filaments(100.0, seed=46, size=256)
    a = R.decorrelation(sim.input, pixel_size_nm=100).resolution_nm
    b = R.decorrelation(3.7 * sim.input + 250.0, pixel_size_nm=100).resolution_nm
    assert a == pytest.approx(b, rel=1e-9)


@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_pure_noise_gives_no_resolution_but_a_reason(size):
    # Small images scatter more: a pure-noise peak must not pass for a resolution at any size.
    for seed in range(5):
        flat = np.random.default_rng(seed).poisson(5.0, (size, size)).astype(float)
        dec = R.decorrelation(flat, pixel_size_nm=100)
        assert np.isnan(dec.resolution_nm)
        assert "too little structure above its noise" in dec.reason
        assert dec.as_dict()["resolution_nm"] is None
    with pytest.warns(AbbeWarning, match="no resolution \\(withheld\\): none of its curves"):
        R.cross_check(decorrelation=dec, pixel_size_nm=100)


def test_cross_check_of_a_dim_image_agrees_with_its_frc():
    # 30 photons: decorrelation reads ~1.4× the cutoff, as the FRC of two acquisitions does;
    # the two agree, so the cross-check raises no doubt.
    sim = _filaments(30.0, seed=47)
    dec = R.decorrelation(sim.input, pixel_size_nm=100)
    second = simulate.Camera.ideal().expose(sim.clean, seed=147)
    frc = R.frc(sim.input, second, pixel_size_nm=100, independent=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AbbeWarning)
        assert (
            R.cross_check(
                decorrelation=dec, frc=frc, pixel_size_nm=100, optical_cutoff_nm=CUTOFF_NM
            )
            == ()
        )


def test_apodization_keeps_edges_out_of_the_spectrum():
    # A steep ramp across the field jumps at the periodic FFT's edges; tapered, it changes
    # nothing the filaments show.
    sim = _filaments(1000.0, seed=48, size=256)
    ramp = np.linspace(0, 200, 256)[None, :] * np.ones((256, 1))
    plain = R.decorrelation(sim.input, pixel_size_nm=100).resolution_nm
    ramped = R.decorrelation(sim.input + ramp, pixel_size_nm=100).resolution_nm
    assert ramped == pytest.approx(plain, rel=0.05)


def test_verify_says_why_when_decorrelation_reads_nothing():
    import abbe

    flat = np.random.default_rng(1).poisson(5.0, (128, 128)).astype(float)
    with pytest.warns(AbbeWarning, match="decorrelation of the result: no resolution"):
        report = abbe.verify(flat, pixel_size_nm=100.0)
    assert report.decorrelation.reason
