"""Classical restorations that sit beside every network: variance-stabilized non-local means,
BM3D (optional extra) and Richardson–Lucy deconvolution.

References
----------
Mäkitalo & Foi, IEEE TIP 22:91 (2013) (generalized Anscombe transform and its unbiased inverse).
Buades, Coll & Morel, CVPR 2005 (non-local means).
Dabov et al., IEEE TIP 16:2080 (2007) (BM3D).
Richardson, JOSA 62:55 (1972); Lucy, AJ 79:745 (1974) (Richardson–Lucy).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import fftconvolve

from abbe.errors import InputError

_SQRT_3_2 = math.sqrt(1.5)
_D_ZERO = 2 * math.sqrt(0.375)


def anscombe(x: np.ndarray, *, gain: float = 1.0, offset: float = 0.0, read_noise: float = 0.0):
    """Generalized Anscombe transform: Poisson–Gaussian data → unit-variance Gaussian.

    For ``x = gain·Poisson(λ) + offset + N(0, read_noise²)`` (read noise in the units of x),
    ``f(x) = (2/gain)·√(gain·x + 3/8·gain² + read_noise² − gain·offset)``.
    """
    x = np.asarray(x, dtype=np.float64)
    arg = gain * x + 0.375 * gain**2 + read_noise**2 - gain * offset
    return (2.0 / gain) * np.sqrt(np.maximum(arg, 0.0))


def inverse_anscombe(
    d: np.ndarray, *, gain: float = 1.0, offset: float = 0.0, read_noise: float = 0.0
) -> np.ndarray:
    """Closed-form approximation of the exact unbiased inverse of :func:`anscombe`.

    Mäkitalo & Foi (2013), eq. 7, applied in photon units (read noise divided by gain).
    """
    d = np.asarray(d, dtype=np.float64)
    sigma = read_noise / gain
    # The closed form reaches 0 at D = 2·√(3/8) (λ = 0); below it, its D⁻³ term diverges.
    safe = np.maximum(d, _D_ZERO)
    lam = (
        0.25 * safe**2
        + 0.25 * _SQRT_3_2 / safe
        - 1.375 / safe**2
        + 0.625 * _SQRT_3_2 / safe**3
        - 0.125
        - sigma**2
    )
    lam = np.where(d > _D_ZERO, lam, 0.0)
    return np.maximum(lam, 0.0) * gain + offset


def _check_2d(image: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(image, dtype=np.float64)
    if arr.ndim != 2:
        raise InputError(f"{name} takes a 2D (Y, X) image, got shape {arr.shape}")
    return arr


def nlm(
    image: np.ndarray,
    *,
    gain: float = 1.0,
    offset: float = 0.0,
    read_noise: float = 0.0,
    strength: float = 0.7,
    patch_size: int = 5,
    patch_distance: int = 6,
) -> np.ndarray:
    """Non-local means after the generalized Anscombe transform (noise SD 1 there).

    Parameters
    ----------
    image : 2D image of Poisson–Gaussian data (photons, or ADU with ``gain`` and ``offset``).
    gain, offset, read_noise : camera model in the units of ``image`` (see :func:`anscombe`).
    strength : filtering parameter h in units of the (unit) noise SD.
    patch_size, patch_distance : patch edge and search radius in pixels.
    """
    from skimage.restoration import denoise_nl_means

    x = _check_2d(image, "non-local means")
    d = anscombe(x, gain=gain, offset=offset, read_noise=read_noise)
    den = denoise_nl_means(
        d,
        patch_size=patch_size,
        patch_distance=patch_distance,
        h=strength,
        sigma=1.0,
        fast_mode=True,
    )
    return inverse_anscombe(den, gain=gain, offset=offset, read_noise=read_noise).astype(np.float32)


def bm3d_gat(
    image: np.ndarray, *, gain: float = 1.0, offset: float = 0.0, read_noise: float = 0.0
) -> np.ndarray:
    """BM3D after the generalized Anscombe transform (needs the optional ``bm3d`` extra)."""
    try:
        import bm3d
    except ImportError:
        raise InputError("BM3D needs the optional package: pip install 'abbe[bm3d]'") from None
    x = _check_2d(image, "BM3D")
    d = anscombe(x, gain=gain, offset=offset, read_noise=read_noise)
    den = bm3d.bm3d(d, sigma_psd=1.0)
    return inverse_anscombe(den, gain=gain, offset=offset, read_noise=read_noise).astype(np.float32)


def richardson_lucy(
    image: np.ndarray,
    psf: np.ndarray,
    *,
    iterations: int = 30,
    background: float = 0.0,
    eps: float = 1e-6,
) -> np.ndarray:
    """Richardson–Lucy deconvolution of photon-count data with a known background.

    Iterates ``u ← u · Hᵀ[y / (H u + b)]``, the EM algorithm for the Poisson likelihood, starting
    from a flat image of the data's mean signal. Convolutions are zero-padded (no wrap-around);
    the PSF is normalized to unit sum.

    Parameters
    ----------
    image : 2D data in photons (convert ADU with :meth:`abbe.simulate.Camera.to_photons`).
    psf : 2D PSF on the image's pixel grid, centred.
    iterations : EM iterations; more sharpens and amplifies noise.
    background : known background photons per pixel, kept out of the estimate.
    """
    y = np.maximum(_check_2d(image, "Richardson–Lucy"), 0.0)
    h = np.asarray(psf, dtype=np.float64)
    if h.ndim != 2 or h.sum() <= 0:
        raise InputError("the PSF must be a 2D array with a positive sum")
    h = h / h.sum()
    h_flip = h[::-1, ::-1]
    # Weight by Hᵀ1 so that pixels near the border, which see less of the PSF, are not dimmed.
    norm = np.maximum(fftconvolve(np.ones_like(y), h_flip, mode="same"), eps)
    u = np.full_like(y, max(float(y.mean() - background), eps))
    for _ in range(iterations):
        blurred = fftconvolve(u, h, mode="same") + background
        u *= fftconvolve(y / np.maximum(blurred, eps), h_flip, mode="same") / norm
        u = np.maximum(u, 0.0)
    return u.astype(np.float32)
