"""The simulated optics obey diffraction theory: bead widths and the OTF cutoff."""

from __future__ import annotations

import numpy as np
import pytest

from abbe import simulate
from abbe.simulate import psf


def _fwhm_along_x(image: np.ndarray, pixel_size_nm: float) -> float:
    """Width at half maximum of the row through the peak, by linear interpolation (background 0)."""
    y, x = np.unravel_index(np.argmax(image), image.shape)
    row = image[y].astype(np.float64)
    half = row[x] / 2
    left = x - np.argmax(row[x::-1] < half)
    right = x + np.argmax(row[x:] < half)
    xl = left + (half - row[left]) / (row[left + 1] - row[left])
    xr = right - 1 + (row[right - 1] - half) / (row[right - 1] - row[right])
    return (xr - xl) * pixel_size_nm


@pytest.mark.parametrize(("na", "wavelength"), [(1.4, 520.0), (1.0, 680.0), (0.75, 450.0)])
def test_simulated_bead_fwhm_matches_0_51_lambda_over_na(na, wavelength):
    # Arrange: a point-like bead imaged at 20 nm pixels, no noise.
    px, n, k = 20.0, 101, 3
    obj = np.zeros((n * k, n * k), np.float32)
    obj[n * k // 2, n * k // 2] = 1.0
    bead = simulate.Specimen(obj, px / k)
    # Act
    sim = simulate.widefield(
        bead,
        size=n,
        pixel_size_nm=px,
        na=na,
        wavelength_nm=wavelength,
        oversample=k,
        background=0,
        photons=1000,
    )
    # Assert: Abbe's rule of thumb 0.51·λ/NA (the exact Airy value is 0.5145·λ/NA), within 2 %.
    assert _fwhm_along_x(sim.clean, px) == pytest.approx(0.51 * wavelength / na, rel=0.02)


def test_gaussian_psf_has_the_requested_fwhm():
    kernel = psf.gaussian_psf(fwhm_nm=300.0, pixel_size_nm=10.0)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
    assert _fwhm_along_x(kernel, 10.0) == pytest.approx(300.0, rel=0.01)


def test_airy_otf_follows_the_circular_pupil_and_ends_at_the_cutoff():
    na, wl, px = 1.3, 632.0, 25.0
    kernel = psf.airy_psf(na=na, wavelength_nm=wl, pixel_size_nm=px)
    h = psf.otf(kernel, (1024, 1024))
    f = psf.frequency_grid(h.shape, px)
    fc = psf.cutoff_frequency(na, wl)
    assert fc == pytest.approx(2 * na / wl)
    # Beyond the cutoff only the truncation of the PSF's tails leaks (well under 1 %).
    assert h[f > 1.05 * fc].max() < 5e-3
    # Inside, the transfer follows (2/π)(acos s − s√(1−s²)) (pixel integration costs < 1 %).
    inside = (f > 0.1 * fc) & (f < 0.9 * fc)
    expected = psf.analytic_otf(f[inside], na=na, wavelength_nm=wl)
    np.testing.assert_allclose(h[inside], expected, atol=0.015)


def test_simulated_image_has_no_signal_beyond_the_optical_cutoff():
    # The whole forward model (fine grid, PSF, binning) passes nothing above 2·NA/λ.
    sim = simulate.widefield("filaments", size=256, pixel_size_nm=50, background=0, seed=2)
    window = np.outer(np.hanning(256), np.hanning(256))  # no leakage from the image's edges
    spectrum = np.abs(np.fft.fft2(sim.clean * window))
    f = psf.frequency_grid(sim.clean.shape, 50.0)
    fc = psf.cutoff_frequency(sim.params["na"], sim.params["wavelength_nm"])
    inside = spectrum[(f > 0.2 * fc) & (f < 0.8 * fc)].mean()
    beyond = spectrum[f > 1.1 * fc].mean()
    assert beyond < 1e-3 * inside


def test_born_wolf_focal_plane_is_the_airy_pattern_and_defocus_is_symmetric():
    kw = {"na": 1.2, "wavelength_nm": 600.0, "pixel_size_nm": 40.0}
    stack = psf.born_wolf_psf(41, 9, z_step_nm=200.0, **kw)
    airy = psf.airy_psf(41, **kw)
    focal = stack[4] / stack[4].sum()
    np.testing.assert_allclose(focal, airy, atol=2e-4 * airy.max() / 1e-2)
    np.testing.assert_allclose(stack[3], stack[5], rtol=1e-4, atol=1e-9)
    # Light spreads with defocus: the central pixel dims monotonically away from focus.
    centre = stack[:, 20, 20]
    assert np.all(np.diff(centre[:5]) > 0) and np.all(np.diff(centre[4:]) < 0)


def test_invalid_optics_are_refused():
    from abbe.errors import InputError

    with pytest.raises(InputError, match="NA"):
        psf.airy_psf(na=1.6, wavelength_nm=500, pixel_size_nm=50, n_immersion=1.515)
    with pytest.raises(InputError, match="odd"):
        psf.airy_psf(10, na=1.0, wavelength_nm=500, pixel_size_nm=50)
