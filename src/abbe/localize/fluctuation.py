"""Emitter density, brightness and background of a dense SMLM stack from its fluctuations.

Number-and-brightness analysis (Digman, Dalal, Horwitz & Gratton, Biophys J 94:2320, 2008;
the same second cumulant as SOFI, Dertinger et al., PNAS 106:22287, 2009) applied to blinking
emitters. Emitters switch on independently from frame to frame, so by Campbell's theorem a
pixel's temporal variance above the camera's noise is Σ_k ρ_k·E[N²]·h_p(x_k)² (ρ the emitters
per frame at each place, N their photo-electrons, h the pixel-integrated PSF) while its mean
above the background is Σ_k ρ_k·E[N]·h_p(x_k). Summed over the field, whatever the structure
the emitters sit on,

    Σ_p [Var_t(p) − F²·Mean_t(p) − read²] / Σ_p [Mean_t(p) − b] = E[N²]/E[N] · Σ_p h_p²,

which gives the brightness E[N²]/E[N], hence the mean photons per emitter (given the spread of
the photons), hence the density = mean signal / (photons · field area). Nothing but the camera
(offset, gains, EM excess factor F² = 2) and the PSF σ (read off the power spectrum) is needed.

Two things that are not emitters also fluctuate: a background that changes from frame to frame
(lamp flicker) and slow drifts (background, bleaching). The first is removed by subtracting
each frame's mean over the field (it removes a negligible 1/(P·Σh²) of the emitters'
variance), the second by taking the variance from differences of frames 10 apart, which a
slow drift barely changes. Emitters are assumed to stay on for well under 10 frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.special import erf

from abbe.errors import InputError
from abbe.localize.fit import Electrons
from abbe.simulate.camera import Camera

#: Photon spread assumed when turning E[N²]/E[N] into the mean: photons uniform over
#: ×0.5 to ×1.5 of their mean (the range a matched model trains for), CV² = 1/12.
PHOTON_CV2 = 1.0 / 12.0


@dataclass(frozen=True)
class StackConditions:
    """What a dense stack holds, read off its fluctuations.

    Attributes
    ----------
    density_per_um2 : emitters on per µm² per frame.
    photons : mean photons per emitter per frame.
    background : mean background, photons per pixel.
    psf_sigma_nm : PSF σ used (given, or from the power spectrum).
    """

    density_per_um2: float
    photons: float
    background: float
    psf_sigma_nm: float


def psf_power(sigma_px: float, order: int = 2, samples: int = 8) -> float:
    """Σ_p h_p^order of a unit-mass Gaussian PSF integrated over square pixels, averaged over
    the emitter's position within its pixel (Σh² ≈ 1/(4πσ²) for σ of several pixels)."""
    r = math.ceil(5 * sigma_px) + 1
    edges = np.arange(-r, r + 2, dtype=np.float64) - 0.5
    total = 0.0
    for shift in (np.arange(samples) + 0.5) / samples - 0.5:
        c = 0.5 * np.diff(erf((edges - shift) / (math.sqrt(2) * sigma_px)))
        total += float(np.sum(c**order))
    # The integrated PSF is the product of its two axes', and so is the sum of its powers;
    # the average over positions factorizes too, the two offsets being independent.
    return (total / samples) ** 2


@dataclass(frozen=True)
class _Cumulants:
    """Σ over pixels of the mean, and of the 2nd and 3rd temporal cumulants above the
    camera's noise, in photo-electrons."""

    mean: float
    second: float
    third: float


def _cumulants(e: Electrons, window: int, lag: int) -> _Cumulants:
    """Cumulants of the frames' fluctuations after removing each frame's mean over the field
    (flicker). The second from differences of frames ``lag`` apart, Var = E[(x_t+L − x_t)²]/2:
    a drift moves it by only (slope·L)²/2, and it is not lowered by emitters that stay on for
    a few frames (a moving average would take their correlated share away: with on-times of
    2 frames a 31-frame average lowered it 7 %, a 21-frame one 10 %). The third, which needs
    signed deviations, from the residual of a ``window``-frame moving average (drift and
    bleaching removed)."""
    data = np.asarray(e.data, dtype=np.float64)
    mean = data.mean(0)
    flat = data - data.mean(axis=(1, 2), keepdims=True)
    second = ((flat[lag:] - flat[:-lag]) ** 2).mean(0) / 2
    resid = flat - uniform_filter1d(flat, size=window, axis=0, mode="nearest")
    h = window // 2
    resid = resid[h : len(resid) - h] if len(resid) > 2 * h + 2 else resid
    # For frames independent in time, x − (moving average) keeps this fraction of κ3.
    w = float(window)
    keep3 = (1.0 - 1.0 / w) ** 3 - (w - 1.0) / w**3
    electrons = np.clip(mean, 0, None)
    noise2 = e.excess * electrons + np.broadcast_to(e.read_variance, mean.shape)
    # Shot noise has κ3 = λ; behind an EM register each electron leaves as an exponential
    # packet (Basden et al., MNRAS 345:985, 2003), κ3 = E[X³] = 6 (in electrons³).
    noise3 = (6.0 if e.excess > 1.5 else 1.0) * electrons
    return _Cumulants(
        mean=float(np.sum(mean)),
        second=float(np.sum(second - noise2)),
        third=float(np.sum((resid**3).mean(0) / keep3 - noise3)),
    )


def _background_from_skew(c: _Cumulants, sigma_px: float, pixels: int) -> float:
    """Background (photo-electrons per pixel) that needs no dark pixel: the brightness read
    off κ3/κ2 (independent of the background) gives the emitters' share of the mean signal;
    the rest is background. For photons uniform over ×0.5–×1.5 of their mean,
    E[N³] = 1.25·N̄³ and E[N²] = (1 + 1/12)·N̄²."""
    m2, m3 = 1.0 + PHOTON_CV2, 1.25
    mean_n = c.third / c.second * psf_power(sigma_px, 2) / psf_power(sigma_px, 3) * m2 / m3
    emitters = c.second / (m2 * mean_n**2 * psf_power(sigma_px, 2))
    return (c.mean - emitters * mean_n) / pixels


def stack_conditions(
    stack: np.ndarray,
    *,
    pixel_size_nm: float,
    camera: Camera | None = None,
    psf_sigma_nm: float | None = None,
    background: float | None = None,
) -> StackConditions:
    """Density, photons and background of a dense SMLM stack given only its camera.

    Number-and-brightness analysis of the blinking (module docstring; Digman et al. 2008).
    Measured on abbe simulations of 200-frame EMCCD stacks (64², σ 120 nm; 1, 2, 4, 8
    emitters/µm²; photons U[1000, 5000] or U[500, 1500]; background 20 or flickering
    U[20, 100]): on blinking filaments density within −6 to +6 % and photons within −3 to
    +6 %, except the dimmest and sparsest (1 /µm², 500–1500 photons: +13 % and +23 %);
    with emitters at random everywhere (no dark pixel, the background read 5–40 % high)
    density −12 to −19 %, photons +4 to +11 %. A background drifting from 20 to 50 photons
    over the stack moves the filament estimate by 2 %. On the Deep-STORM test stack
    (EPFL 2013 bundled tubes): 5.8 emitters/µm² for a truth of 5.5.

    Parameters
    ----------
    stack : (T, Y, X) frames in camera units (ADU with ``camera``, else photons); at least
        30 frames.
    pixel_size_nm : camera pixel size.
    camera : the camera that recorded the stack; None is an ideal detector.
    psf_sigma_nm : PSF σ; None reads it off the frames' power spectrum.
    background : background photons per pixel; None reads it with
        :func:`abbe.localize.matching.dense_background` (and, where no pixel stays dark, the
        skew of the fluctuations).

    Returns
    -------
    StackConditions

    Raises
    ------
    InputError
        If the stack is too short, or holds no fluctuation above the camera's noise (no
        blinking emitters, or a wrong camera).
    """
    from abbe.localize.calibration import psf_sigma_from_spectrum
    from abbe.localize.fit import to_electrons
    from abbe.localize.matching import background_estimates

    frames = np.asarray(stack)
    if frames.ndim != 3 or len(frames) < 30:
        raise InputError("estimating density and photons needs a stack of at least 30 frames")
    e = to_electrons(frames, camera)
    sigma_nm = psf_sigma_nm or psf_sigma_from_spectrum(e.data, pixel_size_nm)
    sigma_px = sigma_nm / pixel_size_nm
    pixels = frames.shape[1] * frames.shape[2]
    window = 31 if len(frames) >= 93 else max(5, (len(frames) // 3) | 1)
    # Frames 10 apart: blinking on-times of a few frames have decorrelated by then.
    c = _cumulants(e, window, lag=min(10, len(frames) // 4))
    if background is not None:
        bg = background * e.qe
    else:
        over_time, shot = background_estimates(e)
        bg = max(min(over_time, shot), 0.0)
        if over_time > shot and c.third > 0 and c.second > 0:
            # No pixel stays dark (emitters everywhere; the pixels' means then all sit above
            # the shot-noise estimate, while on filaments they reach 0.85–0.94 of it): the
            # shot-noise estimate reads high (45 % at 5 /µm²). The skew-based one needs no
            # dark pixel and errs upwards too (5–30 %), so the lower is kept. Where dark
            # pixels exist it is not used: on filaments the molecules' on/off statistics (not
            # Poissonian where many are on) bias the third cumulant low, and it read the
            # background 20–40 % low.
            bg = max(min(bg, _background_from_skew(c, sigma_px, pixels)), 0.0)
    variance = c.second
    signal = c.mean - bg * pixels
    if variance <= 0 or signal <= 0:
        raise InputError(
            "the stack does not fluctuate above the camera's noise: no blinking emitters to "
            "count, or a wrong camera (check --camera); give --stack-density"
        )
    brightness = variance / (signal * psf_power(sigma_px))
    electrons = brightness / (1.0 + PHOTON_CV2)  # E[N²]/E[N] = E[N]·(1 + CV²)
    emitters = signal / electrons  # per frame over the field
    area_um2 = pixels * (pixel_size_nm / 1e3) ** 2
    return StackConditions(
        density_per_um2=emitters / area_um2,
        photons=electrons / e.qe,
        background=bg / e.qe,
        psf_sigma_nm=float(sigma_nm),
    )
