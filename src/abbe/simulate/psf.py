"""Point spread functions and optical transfer functions of a widefield microscope.

All PSFs are integrated over the camera pixel (by sub-pixel sampling or the error function) and
normalized to unit sum, so convolving a photon density with them conserves photons.

References
----------
Born & Wolf, *Principles of Optics*, 7th ed., §8.5 (Airy pattern) and §8.8 (3D focal field).
Zhang, Zerubia & Olivo-Marin, Appl. Opt. 46:1819 (2007) (Gaussian approximations of the PSF).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from abbe.errors import InputError
from abbe.simulate.psfmodel import (
    AiryPSF,
    IntegratedGaussian,
    _bin,
    _check_optics,
    _subpixel_radii,
    gaussian_sigma_nm,
)

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))  # 2.3548

__all__ = [
    "FWHM_PER_SIGMA",
    "airy_fwhm_nm",
    "airy_psf",
    "analytic_otf",
    "born_wolf_psf",
    "cutoff_frequency",
    "default_size",
    "frequency_grid",
    "gaussian_psf",
    "gaussian_sigma_nm",
    "otf",
]


def cutoff_frequency(na: float, wavelength_nm: float) -> float:
    """Incoherent widefield cutoff 2·NA/λ, in cycles per nm (Abbe's limit is its inverse ×2)."""
    return 2.0 * na / wavelength_nm


def airy_fwhm_nm(na: float, wavelength_nm: float) -> float:
    """FWHM of the in-focus Airy pattern: 1.029·λ/(2·NA) ≈ 0.51·λ/NA."""
    # The half maximum of (2 J1(v)/v)^2 lies at v = 1.6163.
    return 2 * 1.616340 * wavelength_nm / (2 * math.pi * na)


def default_size(radius_nm: float, pixel_size_nm: float, *, minimum: int = 7) -> int:
    """Odd kernel size in pixels that covers ``radius_nm`` on each side of the centre."""
    half = max(math.ceil(radius_nm / pixel_size_nm), (minimum - 1) // 2)
    return 2 * half + 1


def gaussian_psf(
    size: int | None = None, *, fwhm_nm: float, pixel_size_nm: float, center: float = 0.0
) -> np.ndarray:
    """Pixel-integrated 2D Gaussian PSF, normalized to unit sum: the kernel of
    :class:`~abbe.simulate.psfmodel.IntegratedGaussian`.

    Parameters
    ----------
    size : odd edge length in pixels; default covers ±4 σ.
    fwhm_nm : full width at half maximum.
    pixel_size_nm : pixel size of the output grid.
    center : sub-pixel shift of the centre along both axes, in pixels.
    """
    if fwhm_nm <= 0 or pixel_size_nm <= 0:
        raise InputError("FWHM and pixel size must be positive")
    sigma = fwhm_nm / FWHM_PER_SIGMA / pixel_size_nm
    size = size or default_size(4 * sigma * pixel_size_nm, pixel_size_nm)
    return IntegratedGaussian(sigma_px=sigma).kernel(size, center=center)


def airy_psf(
    size: int | None = None,
    *,
    na: float,
    wavelength_nm: float,
    pixel_size_nm: float,
    n_immersion: float = 1.515,
    oversample: int = 5,
) -> np.ndarray:
    """In-focus widefield (Airy) PSF ``(2 J1(v)/v)^2``, v = 2π·NA·r/λ, integrated over pixels:
    the kernel of :class:`~abbe.simulate.psfmodel.AiryPSF`.

    Parameters
    ----------
    size : odd edge length in pixels; default covers ±10·λ/NA (about 99 % of the energy).
    na, wavelength_nm, n_immersion : numerical aperture, emission wavelength, immersion index.
    pixel_size_nm : pixel size of the output grid.
    oversample : sub-samples per pixel edge used to integrate over the pixel (odd).
    """
    model = AiryPSF(
        na=na, wavelength_nm=wavelength_nm, pixel_size_nm=pixel_size_nm, n_immersion=n_immersion
    )
    size = size or default_size(10 * wavelength_nm / na, pixel_size_nm)
    return model.kernel(size, oversample=oversample)


def born_wolf_psf(
    size: int | None = None,
    n_z: int = 33,
    *,
    na: float,
    wavelength_nm: float,
    pixel_size_nm: float,
    z_step_nm: float,
    n_immersion: float = 1.515,
    oversample: int = 3,
) -> np.ndarray:
    """3D widefield PSF of the scalar, paraxial Born–Wolf model, as a ``(Z, Y, X)`` stack.

    ``U(u, v) = 2 ∫₀¹ J0(vρ) exp(-i u ρ²/2) ρ dρ`` with v = 2π·NA·r/λ and u = 2π·NA²·z/(n·λ);
    the PSF is ``|U|²``, integrated over each pixel and normalized to unit total sum (each plane
    then carries the fraction of light it receives from a point at the central plane).

    Parameters
    ----------
    size : odd lateral edge length in pixels; default covers ±6·λ/NA.
    n_z : number of planes (odd, centred on focus).
    z_step_nm : axial spacing of the planes.
    """
    _check_optics(na, wavelength_nm, n_immersion)
    if n_z < 1 or n_z % 2 == 0:
        raise InputError(f"n_z must be a positive odd number, got {n_z}")
    size = size or default_size(6 * wavelength_nm / na, pixel_size_nm)
    r_sub = _subpixel_radii(size, pixel_size_nm, oversample)
    # Evaluate the radial profile on a fine 1D grid and interpolate onto the sub-pixel radii.
    r_line = np.linspace(0, r_sub.max() * 1.001, 2048)
    v_line = 2 * np.pi * na * r_line / wavelength_nm
    z = (np.arange(n_z) - n_z // 2) * z_step_nm
    u = 2 * np.pi * na**2 * z / (n_immersion * wavelength_nm)
    rho, w = _gauss_legendre_unit(max(128, int(np.abs(u).max() + v_line.max()) * 2))
    bessel = special.j0(np.outer(v_line, rho)) * (rho * w)  # (R, P)
    phase = np.exp(-0.5j * np.outer(u, rho**2))  # (Z, P)
    field = 2 * phase @ bessel.T  # (Z, R)
    intensity_line = np.abs(field) ** 2
    planes = [
        _bin(np.interp(r_sub, r_line, intensity_line[k]), size, oversample) for k in range(n_z)
    ]
    stack = np.stack(planes)
    return (stack / stack.sum()).astype(np.float32)


def _gauss_legendre_unit(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1), 0.5 * w


def frequency_grid(shape: tuple[int, int], pixel_size_nm: float) -> np.ndarray:
    """Radial spatial frequency (cycles/nm) of each element of an unshifted 2D FFT of ``shape``."""
    fy = np.fft.fftfreq(shape[0], d=pixel_size_nm)
    fx = np.fft.fftfreq(shape[1], d=pixel_size_nm)
    return np.hypot(*np.meshgrid(fy, fx, indexing="ij"))


def otf(psf: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Modulus of the optical transfer function of a 2D PSF, unshifted, 1 at zero frequency.

    Parameters
    ----------
    psf : 2D PSF with its centre at the central pixel.
    shape : FFT size (zero-padded); default the PSF's own shape.
    """
    shape = shape or psf.shape
    padded = np.zeros(shape, dtype=np.float64)
    h, w = psf.shape
    padded[:h, :w] = psf
    padded = np.roll(padded, (-(h // 2), -(w // 2)), axis=(0, 1))
    spectrum = np.abs(np.fft.fft2(padded))
    return spectrum / spectrum[0, 0]


def analytic_otf(frequency: np.ndarray, *, na: float, wavelength_nm: float) -> np.ndarray:
    """Diffraction-limited incoherent OTF of a circular pupil (no pixel integration).

    ``(2/π)(arccos s − s·√(1−s²))`` for s = f/(2·NA/λ) ≤ 1, zero beyond.
    """
    s = np.clip(np.asarray(frequency) / cutoff_frequency(na, wavelength_nm), 0, 1)
    return (2 / np.pi) * (np.arccos(s) - s * np.sqrt(1 - s**2))
