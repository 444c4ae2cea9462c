"""Specimens and the widefield forward model: seeded, photon-conserving, fully recorded."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.signal import fftconvolve

from abbe import simulate
from abbe.errors import InputError


@pytest.mark.parametrize("structure", ["filaments", "puncta", "nuclei"])
def test_same_seed_same_specimen_other_seed_other_specimen(structure):
    a = simulate.specimens.make(structure, (200, 200), pixel_size_nm=25, seed=1)
    b = simulate.specimens.make(structure, (200, 200), pixel_size_nm=25, seed=1)
    c = simulate.specimens.make(structure, (200, 200), pixel_size_nm=25, seed=2)
    np.testing.assert_array_equal(a.density, b.density)
    assert not np.array_equal(a.density, c.density)
    assert a.density.min() >= 0 and a.density.max() > 0


def test_filament_density_integrates_to_contour_length():
    # One filament, well inside the field, of known length and unit brightness.
    spec = simulate.filaments(
        (800, 800), pixel_size_nm=25, n=1, length_nm=(5000, 5000), brightness=(1, 1), seed=3
    )
    assert spec.density.sum() == pytest.approx(5000, rel=0.01)


def test_puncta_count_follows_the_requested_density():
    spec = simulate.puncta(
        (2000, 2000), pixel_size_nm=25, density_per_um2=2.0, radius_nm=(5, 10), seed=4
    )
    # 2500 µm² at 2/µm²: Poisson mean 5000; point spots carry median brightness 1.
    from scipy import ndimage

    n_spots = ndimage.label(spec.density > 0)[1]
    assert n_spots == pytest.approx(5000, rel=0.08)  # a few merge where spots touch


def test_nuclei_have_one_label_each_and_cover_the_requested_fraction():
    spec = simulate.nuclei((1000, 1000), pixel_size_nm=50, coverage=0.3, seed=5)
    labels = spec.labels
    assert labels.max() >= 5
    np.testing.assert_array_equal(np.unique(labels), np.arange(labels.max() + 1))
    assert (labels > 0).mean() == pytest.approx(0.3, abs=0.08)
    # Signal lies inside the labelled nuclei.
    assert spec.density[labels > 0].sum() > 0.95 * spec.density.sum()


def test_clean_image_is_the_binned_blur_of_the_object_plus_background():
    sim = simulate.widefield(
        "puncta",
        size=64,
        pixel_size_nm=100,
        oversample=4,
        photons=80,
        background=5,
        psf="gaussian",
        fwhm_nm=250,
        seed=6,
    )
    assert sim.object.shape == (256, 256)
    assert sim.clean.max() == pytest.approx(85.0, rel=1e-5)
    # Recompute away from the border (where light from outside the field enters).
    kernel, _ = simulate.make_psf(
        "gaussian", pixel_size_nm=25, na=1.3, wavelength_nm=632, fwhm_nm=250
    )
    blurred = fftconvolve(sim.object, kernel, mode="same")
    binned = blurred.reshape(64, 4, 64, 4).sum(axis=(1, 3)) + 5
    inner = (slice(8, -8), slice(8, -8))
    np.testing.assert_allclose(sim.clean[inner], binned[inner], rtol=1e-3, atol=1e-3)


def test_ideal_camera_input_is_poisson_around_the_clean_image():
    sim = simulate.widefield("nuclei", size=128, photons=200, background=10, seed=7)
    residual = sim.input - sim.clean
    # Var(Poisson) = mean: the standardized residual has unit variance and zero mean.
    z = residual / np.sqrt(sim.clean)
    assert z.mean() == pytest.approx(0, abs=0.03)
    assert z.var() == pytest.approx(1, abs=0.05)
    assert sim.labels.shape == (128, 128) and sim.labels.max() > 0


def test_params_record_everything_and_are_json():
    sim = simulate.widefield("filaments", size=32, camera="scmos", read_noise=2.0, seed=8)
    params = json.loads(json.dumps(sim.params))
    for key in (
        "na",
        "wavelength_nm",
        "pixel_size_nm",
        "photons",
        "background",
        "camera",
        "seed",
        "psf",
        "psf_fwhm_nm",
        "cutoff_period_nm",
        "oversample",
    ):
        assert key in params
    assert params["camera"]["kind"] == "scmos"
    assert params["camera"]["read_noise_e"]["mean"] == pytest.approx(2.0, rel=0.2)
    assert params["cutoff_period_nm"] == pytest.approx(632 / 2.6)


def test_same_seed_reproduces_the_whole_simulation():
    a = simulate.widefield("filaments", size=48, camera="emccd", seed=11)
    b = simulate.widefield("filaments", size=48, camera="emccd", seed=11)
    np.testing.assert_array_equal(a.input, b.input)
    np.testing.assert_array_equal(a.object, b.object)


def test_bad_parameters_are_refused():
    with pytest.raises(InputError, match="structure"):
        simulate.widefield("stars", size=32)
    with pytest.raises(InputError, match="camera"):
        simulate.widefield(size=32, camera="webcam")
    with pytest.raises(InputError, match="at least 8"):
        simulate.widefield(size=4)


def test_expected_input_is_the_recorded_image_without_noise_or_fixed_pattern():
    sim = simulate.widefield("nuclei", size=64, photons=100, background=10, camera="scmos", seed=3)
    cam = simulate.Camera.scmos((64, 64), seed=0)
    assert sim.expected_input.shape == sim.input.shape
    # Averaged over the field, the noise cancels: the mean recorded ADU matches the expectation.
    assert sim.input.mean() == pytest.approx(sim.expected_input.mean(), rel=0.01)
    # ADU are gain × QE × photons + offset (≈ 100): far from the photon-valued clean image.
    slope, intercept = np.polyfit(sim.clean.ravel(), sim.expected_input.ravel(), 1)
    assert slope == pytest.approx(cam.gain * cam.qe, rel=0.05)
    # Exactly affine in the photons: no per-pixel offset or gain pattern is left in the target.
    residual = sim.expected_input - (slope * sim.clean + intercept)
    assert np.abs(residual).max() < 1e-3
