"""Evaluation-only widefield phantoms: a second, deliberately different simulator.

A model trained on :mod:`abbe.simulate.superres` may learn that simulator (its filament walker,
its PSF kernels, its noise) rather than the optics. These phantoms share none of its code:

- structures are drawn analytically on a fine grid: smooth random curves (Fourier series)
  whose width and brightness vary along them, crossing bundles of near-parallel curves,
  Siemens-star-like sinusoidal sectors, and textured cell-like blobs with a bright rim;
- the image is formed in Fourier space: the optical transfer function is the
  autocorrelation of a circular pupil (computed as the FFT of the squared modulus of the
  pupil's inverse FFT), not a PSF kernel convolved in real space;
- noise is Poisson plus Gaussian read noise, drawn here.

Training code must never import this module (a test checks it): its phantoms measure how a
model generalizes, so nothing may be tuned on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.spatial import cKDTree

from abbe.errors import InputError

Family = Literal["curves", "bundles", "star", "cells"]
FAMILIES: tuple[str, ...] = ("curves", "bundles", "star", "cells")
#: FWHM of the in-focus Airy pattern in units of λ/NA (half maximum of (2J1(v)/v)² at v=1.6163).
AIRY_FWHM_PER_LAMBDA_NA = 2 * 1.616340 / (2 * np.pi)


@dataclass(frozen=True, eq=False)
class EvaluationField:
    """One evaluation field.

    Attributes
    ----------
    input : (Y, X) float32 noisy widefield image in photons (background included).
    clean : (Y, X) float32 noise-free widefield image in photons.
    object : (Y·k, X·k) float64 fluorophore density on the fine grid (arbitrary units).
    pixel_size_nm : camera pixel size.
    object_pixel_size_nm : fine-grid pixel size (``pixel_size_nm / k``).
    psf : odd-sized (P, P) float32 PSF on the camera grid (unit sum), for deconvolution.
    params : what was drawn.
    """

    input: np.ndarray
    clean: np.ndarray
    object: np.ndarray
    pixel_size_nm: float
    object_pixel_size_nm: float
    psf: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- structures
def _smooth_curve(
    rng: np.random.Generator, extent_px: float, *, order: int = 5, closed: bool = False
) -> np.ndarray:
    """Points (N, 2) of a random Fourier-series curve spanning about ``extent_px``."""
    t = np.linspace(0.0, 1.0 if closed else rng.uniform(0.4, 0.7), 4000)
    k = np.arange(1, order + 1)[:, None]
    amp = extent_px / 2.5 / k**1.6  # falling spectrum: smooth, gently winding curves
    ya = (rng.normal(size=(order, 1)) * amp * np.cos(2 * np.pi * k * t)).sum(0)
    yb = (rng.normal(size=(order, 1)) * amp * np.sin(2 * np.pi * k * t)).sum(0)
    xa = (rng.normal(size=(order, 1)) * amp * np.cos(2 * np.pi * k * t)).sum(0)
    xb = (rng.normal(size=(order, 1)) * amp * np.sin(2 * np.pi * k * t)).sum(0)
    return np.stack([ya + yb, xa + xb], axis=1)


def _resample(points: np.ndarray, spacing_px: float) -> np.ndarray:
    """The same curve with points ``spacing_px`` apart along its length."""
    seg = np.hypot(*np.diff(points, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(2, int(s[-1] / spacing_px))
    u = np.linspace(0, s[-1], n)
    return np.stack([np.interp(u, s, points[:, 0]), np.interp(u, s, points[:, 1])], axis=1)


def render_curve(
    canvas: np.ndarray,
    points: np.ndarray,
    width_nm: np.ndarray,
    brightness: np.ndarray,
    pixel_size_nm: float,
) -> None:
    """Add a curve with a Gaussian cross-section to ``canvas`` in place, evaluated exactly at
    each pixel centre from its distance to the nearest point of the (densely sampled) curve.

    ``width_nm`` (FWHM of the cross-section) and ``brightness`` (peak) are given per point."""
    sigma_px = width_nm / 2.3548 / pixel_size_nm
    reach = float(4 * sigma_px.max() + 2)
    lo = np.floor(points.min(axis=0) - reach).astype(int).clip(0)
    hi = np.ceil(points.max(axis=0) + reach).astype(int) + 1
    hi = np.minimum(hi, canvas.shape)
    if np.any(hi <= lo):
        return
    yy, xx = np.mgrid[lo[0] : hi[0], lo[1] : hi[1]]
    centres = np.stack([yy.ravel() + 0.5, xx.ravel() + 0.5], axis=1)
    dist, idx = cKDTree(points).query(centres, distance_upper_bound=reach)
    near = np.isfinite(dist)
    value = np.zeros(dist.shape)
    i = idx[near]
    value[near] = brightness[i] * np.exp(-0.5 * (dist[near] / sigma_px[i]) ** 2)
    canvas[lo[0] : hi[0], lo[1] : hi[1]] += value.reshape(yy.shape)


def _along(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    """A smooth random profile of ``n`` values between ``lo`` and ``hi`` along a curve."""
    t = np.linspace(0, 1, n)
    f = rng.uniform(0.5, 3.0)
    wave = 0.5 + 0.5 * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    return lo + (hi - lo) * wave


def curves(shape: tuple[int, int], pixel_size_nm: float, rng: np.random.Generator) -> np.ndarray:
    """Open and closed smooth random curves, 30–180 nm wide, brightness varying along each."""
    canvas = np.zeros(shape)
    extent = min(shape)
    for _ in range(int(rng.integers(4, 9))):
        pts = _smooth_curve(rng, extent, closed=bool(rng.random() < 0.3))
        pts = pts + rng.uniform(0.2, 0.8, 2) * shape
        pts = _resample(pts, 0.5)
        w0 = rng.uniform(30.0, 180.0)
        width = _along(rng, len(pts), 0.6 * w0, 1.2 * w0)
        bright = _along(rng, len(pts), rng.uniform(0.2, 0.6), 1.0)
        render_curve(canvas, pts, width, bright, pixel_size_nm)
    return canvas


def bundles(shape: tuple[int, int], pixel_size_nm: float, rng: np.random.Generator) -> np.ndarray:
    """Two or three crossing bundles, each of 2–5 near-parallel curves 100–300 nm apart
    (some pairs closer than the widefield resolution, some farther)."""
    canvas = np.zeros(shape)
    extent = min(shape)
    for _ in range(int(rng.integers(2, 4))):
        base = _smooth_curve(rng, 0.9 * extent, order=2) + rng.uniform(0.3, 0.7, 2) * shape
        base = _resample(base, 0.5)
        tangent = np.gradient(base, axis=0)
        normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
        normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
        offset = 0.0
        for _ in range(int(rng.integers(2, 6))):
            pts = base + normal * offset / pixel_size_nm
            width = np.full(len(pts), rng.uniform(30.0, 80.0))
            bright = _along(rng, len(pts), 0.5, 1.0)
            render_curve(canvas, pts, width, bright, pixel_size_nm)
            offset += rng.uniform(100.0, 300.0)
    return canvas


def star(shape: tuple[int, int], pixel_size_nm: float, rng: np.random.Generator) -> np.ndarray:
    """A Siemens-star-like target: ``n`` sinusoidal sectors within a disc of 2–3.5 µm radius,
    its period falling towards the centre through and below the resolution limit."""
    yy, xx = (np.mgrid[: shape[0], : shape[1]] + 0.5) * pixel_size_nm
    cy, cx = (np.array(shape) * pixel_size_nm) * rng.uniform(0.4, 0.6, 2)
    r = np.hypot(yy - cy, xx - cx)
    theta = np.arctan2(yy - cy, xx - cx)
    n = int(rng.integers(16, 33))
    radius = rng.uniform(2000.0, 3500.0)
    sectors = 0.5 * (1 + np.cos(n * theta + rng.uniform(0, 2 * np.pi)))
    # Below ~2 fine pixels per period the grid cannot draw the sectors: a flat grey disc there.
    inner = n * 2 * pixel_size_nm / np.pi
    sectors = np.where(r < inner, 0.5, sectors)
    edge = 1 / (1 + np.exp((r - radius) / 20.0))
    return sectors * edge


def cells(shape: tuple[int, int], pixel_size_nm: float, rng: np.random.Generator) -> np.ndarray:
    """Textured cell-like blobs: star-shaped outlines (Fourier-series radius, 1–2.5 µm) filled
    with a log-normal texture of 60–200 nm grain, a brighter rim, and a dim inner hole."""
    canvas = np.zeros(shape)
    yy, xx = (np.mgrid[: shape[0], : shape[1]] + 0.5) * pixel_size_nm
    for _ in range(int(rng.integers(2, 5))):
        cy, cx = np.array(shape) * pixel_size_nm * rng.uniform(0.15, 0.85, 2)
        r0 = rng.uniform(1000.0, 2500.0)
        theta = np.arctan2(yy - cy, xx - cx)
        k = np.arange(2, 6)[:, None, None]
        wobble = rng.normal(0, 0.08, (4, 1, 1)) * np.cos(k * theta + rng.uniform(0, 6, (4, 1, 1)))
        boundary = r0 * (1 + wobble.sum(0))
        signed = np.hypot(yy - cy, xx - cx) - boundary  # < 0 inside
        inside = 1 / (1 + np.exp(signed / 30.0))
        grain = rng.uniform(60.0, 200.0) / pixel_size_nm
        noise = np.fft.ifft2(
            np.fft.fft2(rng.normal(size=shape)) * _gaussian_transfer(shape, grain)
        ).real
        texture = np.exp(0.6 * noise / (noise.std() + 1e-12))
        rim = np.exp(-0.5 * (signed / 60.0) ** 2)
        hole = 1 - 0.7 / (1 + np.exp((np.hypot(yy - cy, xx - cx) - 0.35 * r0) / 40.0))
        canvas += rng.uniform(0.4, 1.0) * (0.5 * inside * texture * hole + rim)
    return canvas


_GENERATORS = {"curves": curves, "bundles": bundles, "star": star, "cells": cells}


# -------------------------------------------------------------------------------- imaging
def _gaussian_transfer(shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Fourier transfer function of a Gaussian blur of ``sigma_px`` (unshifted FFT grid)."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    return np.exp(-2 * (np.pi * sigma_px) ** 2 * (fy**2 + fx**2))


def pupil_otf(
    shape: tuple[int, int], pixel_size_nm: float, *, fwhm_nm: float, defocus_waves: float = 0.0
) -> np.ndarray:
    """Incoherent OTF (unshifted, unit DC) of a circular pupil whose in-focus PSF has FWHM
    ``fwhm_nm``: the pupil radius is NA/λ = 0.5145/FWHM cycles per nm; the amplitude PSF is
    the pupil's inverse FFT, the OTF the FFT of its squared modulus. ``defocus_waves`` adds
    a quadratic phase of that many waves at the pupil's edge."""
    fy = np.fft.fftfreq(shape[0], d=pixel_size_nm)[:, None]
    fx = np.fft.fftfreq(shape[1], d=pixel_size_nm)[None, :]
    rho = np.hypot(fy, fx) / (AIRY_FWHM_PER_LAMBDA_NA / fwhm_nm)
    pupil = (rho <= 1).astype(complex) * np.exp(2j * np.pi * defocus_waves * rho**2)
    intensity = np.abs(np.fft.ifft2(pupil)) ** 2
    otf = np.fft.fft2(intensity)
    return otf / otf[0, 0].real


def blur(obj: np.ndarray, fwhm_nm: float, pixel_size_nm: float) -> np.ndarray:
    """``obj`` blurred by a Gaussian of ``fwhm_nm`` (in Fourier space, periodic)."""
    sigma = fwhm_nm / 2.3548 / pixel_size_nm
    return np.fft.ifft2(np.fft.fft2(obj) * _gaussian_transfer(obj.shape, sigma)).real


def bin_sum(image: np.ndarray, factor: int) -> np.ndarray:
    """Sum over ``factor × factor`` blocks (pixel integration)."""
    h, w = image.shape
    return image.reshape(h // factor, factor, w // factor, factor).sum(axis=(1, 3))


def evaluation_field(
    family: str,
    *,
    size: int = 128,
    pixel_size_nm: float = 100.0,
    oversample: int = 4,
    fwhm_nm: float = 250.0,
    photons: float = 150.0,
    background: float = 10.0,
    read_noise: float = 1.5,
    seed: int = 0,
) -> EvaluationField:
    """One evaluation field: a phantom of ``family`` imaged through a pupil OTF.

    Parameters
    ----------
    family : ``curves``, ``bundles``, ``star`` or ``cells``.
    size : field edge in camera pixels.
    pixel_size_nm : camera pixel size; the object is drawn at ``pixel_size_nm / oversample``.
    fwhm_nm : FWHM of the in-focus PSF (pupil radius 0.5145/FWHM).
    photons : expected signal photons at the brightest pixel, above background.
    background : expected background photons per pixel.
    read_noise : Gaussian read noise (photon units, i.e. electrons at QE 1).
    seed : one seed for the phantom and the noise.
    """
    if family not in _GENERATORS:
        raise InputError(f"unknown phantom family {family!r}; choose one of {', '.join(FAMILIES)}")
    if photons <= 0 or background < 0 or read_noise < 0:
        raise InputError("photons must be positive, background and read noise non-negative")
    rng = np.random.default_rng(seed)
    fine_px = pixel_size_nm / oversample
    n = size * oversample
    obj = _GENERATORS[family]((n, n), fine_px, rng)
    # Zero-pad by ~1.5 µm so that the periodic Fourier imaging does not wrap light around.
    pad = int(np.ceil(1500 / pixel_size_nm)) * oversample
    padded = np.pad(obj, pad)
    otf = pupil_otf(padded.shape, fine_px, fwhm_nm=fwhm_nm)
    blurred = np.clip(np.fft.ifft2(np.fft.fft2(padded) * otf).real, 0, None)[pad:-pad, pad:-pad]
    binned = bin_sum(blurred, oversample)
    scale = photons / binned.max()
    clean = binned * scale + background
    noisy = rng.poisson(clean) + rng.normal(0, read_noise, clean.shape)
    return EvaluationField(
        input=noisy.astype(np.float32),
        clean=clean.astype(np.float32),
        object=obj * scale,
        pixel_size_nm=pixel_size_nm,
        object_pixel_size_nm=fine_px,
        psf=camera_psf(fwhm_nm, pixel_size_nm, oversample),
        params={
            "family": family,
            "size": size,
            "pixel_size_nm": pixel_size_nm,
            "fwhm_nm": fwhm_nm,
            "photons": photons,
            "background": background,
            "read_noise": read_noise,
            "seed": seed,
            "imaging": "pupil OTF in Fourier space, Poisson + Gaussian read noise",
        },
    )


def camera_psf(fwhm_nm: float, pixel_size_nm: float, oversample: int, half: int = 12) -> np.ndarray:
    """The same pupil's PSF integrated over camera pixels: ``2·half + 1`` pixels square."""
    n = (2 * half + 1) * oversample * 2
    otf = pupil_otf((n, n), pixel_size_nm / oversample, fwhm_nm=fwhm_nm)
    h = np.fft.fftshift(np.fft.ifft2(otf).real)
    c = n // 2  # the PSF's centre; camera pixel 'half' spans fine [c - k/2, c + k/2)
    start = c - oversample // 2 - half * oversample
    window = h[
        start : start + (2 * half + 1) * oversample, start : start + (2 * half + 1) * oversample
    ]
    psf = np.clip(bin_sum(window, oversample), 0, None)
    return (psf / psf.sum()).astype(np.float32)


def truth(field_: EvaluationField, *, fwhm_nm: float, scale: int) -> np.ndarray:
    """The object at resolution ``fwhm_nm`` (Gaussian) on pixels ``scale``× smaller than the
    camera's, per camera-pixel area (as :func:`abbe.simulate.superres.sr_pair`'s targets)."""
    k = round(field_.pixel_size_nm / field_.object_pixel_size_nm)
    if k % scale:
        raise InputError(f"scale {scale} must divide the oversampling {k}")
    sharp = np.clip(blur(field_.object, fwhm_nm, field_.object_pixel_size_nm), 0, None)
    return (bin_sum(sharp, k // scale) * scale * scale + field_.params["background"]).astype(
        np.float32
    )


@dataclass(frozen=True)
class EffectiveResolution:
    """The Gaussian blur of the truth that best correlates with an image.

    Attributes
    ----------
    fwhm_nm : FWHM of that blur (the image's effective resolution).
    pearson : its Pearson correlation with the image.
    curve : (fwhm_nm, pearson) pairs over the searched blurs.
    """

    fwhm_nm: float
    pearson: float
    curve: tuple[tuple[float, float], ...]


def effective_resolution(
    image: np.ndarray,
    field_: EvaluationField,
    *,
    fwhms_nm: np.ndarray | None = None,
    border_px: int = 4,
) -> EffectiveResolution:
    """Effective resolution of ``image`` (camera grid or a multiple of it): the FWHM of the
    Gaussian blur of the true object which, integrated over the image's pixels, correlates
    best (Pearson) with it. Pixels within ``border_px`` of the edge are left out.

    Parameters
    ----------
    image : (Y·s, X·s) image of the field at pixels ``s`` times smaller than the camera's.
    field_ : the evaluation field (its fine object is the truth).
    fwhms_nm : candidate FWHMs; default a 25 nm grid over 10–510 nm, then a bounded search
        (to 1 nm) around its best.
    """
    from scipy.optimize import minimize_scalar

    k = round(field_.pixel_size_nm / field_.object_pixel_size_nm)
    scale = image.shape[0] // field_.input.shape[0]
    if scale < 1 or k % scale or image.shape[0] != field_.input.shape[0] * scale:
        raise InputError(f"image {image.shape} is not the field {field_.input.shape} × 1, 2 or 4")
    spectrum = np.fft.rfft2(field_.object)
    fy = np.fft.fftfreq(field_.object.shape[0])[:, None]
    fx = np.fft.rfftfreq(field_.object.shape[1])[None, :]
    f2 = fy**2 + fx**2
    b = border_px * scale
    x = np.asarray(image, np.float64)[b:-b, b:-b].ravel()
    cache: dict[float, float] = {}

    def pearson(fwhm: float) -> float:
        if fwhm not in cache:
            sigma = fwhm / 2.3548 / field_.object_pixel_size_nm
            ref = np.fft.irfft2(
                spectrum * np.exp(-2 * (np.pi * sigma) ** 2 * f2), s=field_.object.shape
            )
            ref = bin_sum(ref, k // scale)[b:-b, b:-b].ravel()
            cache[fwhm] = float(np.corrcoef(x, ref)[0, 1])
        return cache[fwhm]

    grid = np.arange(10.0, 511.0, 25.0) if fwhms_nm is None else np.asarray(fwhms_nm, float)
    values = [pearson(float(f)) for f in grid]
    best = float(grid[int(np.argmax(values))])
    if fwhms_nm is None:  # refine: the correlation is smooth and single-peaked in the FWHM
        lo, hi = max(1.0, best - 25.0), best + 25.0
        res = minimize_scalar(
            lambda f: -pearson(float(f)), bounds=(lo, hi), method="bounded", options={"xatol": 1.0}
        )
        pearson(float(res.x))
    fwhm = max(cache, key=cache.get)
    curve = tuple((f, round(cache[f], 5)) for f in sorted(cache))
    return EffectiveResolution(round(float(fwhm), 1), cache[fwhm], curve)
