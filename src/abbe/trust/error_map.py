"""SQUIRREL-style error maps: where does a restoration disagree with the data it came from?

A restored or super-resolved image, blurred back to the reference's resolution and sampled on its
grid, should reproduce the reference (e.g. the widefield image it was computed from) up to an
intensity scale and offset. With ``R_σ = D[G_σ ∗ out]`` (Gaussian blur σ, then integration over
each reference pixel), α, β and σ minimize ``RMSE(ref, α·R_σ + β)``; the map of
``|↑ref − G_σ ∗ (α·out + β)|`` at the output's pixel size shows where structure was lost or made up.

Culley et al., "Quantitative mapping and minimization of super-resolution optical imaging
artifacts", Nat Methods 15:263 (2018).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage, optimize

from abbe.errors import InputError


@dataclass(frozen=True)
class ErrorMap:
    """An error map and the fit behind it.

    Attributes
    ----------
    map : (Y, X) absolute error at the output's pixel size, in reference units.
    alpha, beta : intensity scale and offset taking the output to the reference's units.
    sigma_nm : width (σ) of the Gaussian resolution-scaling function.
    rse : resolution-scaled error, RMSE at the reference scale (reference units).
    rsp : resolution-scaled Pearson correlation at the reference scale (1 is perfect).
    shift_nm : (dy, dx) registration shift applied to the output.
    scale : output pixels per reference pixel.
    pixel_size_nm : the map's (the output's) pixel size.
    """

    map: np.ndarray = field(repr=False)
    alpha: float
    beta: float
    sigma_nm: float
    rse: float
    rsp: float
    shift_nm: tuple[float, float]
    scale: int
    pixel_size_nm: float

    def summary(self) -> dict:
        d = asdict(self)
        d.pop("map")
        return d


def _integer_scale(ref_px: float, out_px: float) -> int:
    ratio = ref_px / out_px
    s = round(ratio)
    if s < 1 or abs(ratio - s) > 0.01:
        raise InputError(
            f"the reference pixel ({ref_px:g} nm) must be a whole multiple of the output pixel "
            f"({out_px:g} nm); resample one of them first"
        )
    return int(s)


def _bin(a: np.ndarray, s: int) -> np.ndarray:
    if s == 1:
        return a
    h, w = a.shape[0] // s * s, a.shape[1] // s * s
    return a[:h, :w].reshape(h // s, s, w // s, s).mean(axis=(1, 3))


def _blur(a: np.ndarray, sigma_px: float) -> np.ndarray:
    return ndimage.gaussian_filter(a, sigma_px, mode="reflect") if sigma_px > 1e-3 else a


def _affine(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares α, β for y ≈ α·x + β, and the RMSE of that fit."""
    xm, ym = x.mean(), y.mean()
    xc = x - xm
    var = float((xc * xc).mean())
    alpha = float((xc * (y - ym)).mean()) / var if var > 0 else 0.0
    beta = float(ym - alpha * xm)
    rmse = float(np.sqrt(np.mean((alpha * x + beta - y) ** 2)))
    return alpha, beta, rmse


def _register(out: np.ndarray, ref: np.ndarray, s: int, blur_px: float) -> tuple[float, float]:
    """Shift (reference pixels) that best aligns ``out`` with ``ref``.

    Phase correlation across two resolutions and non-periodic edges is biased by up to half its
    value, so it only starts a search that maximizes the Pearson correlation of the interiors.
    """
    from skimage.registration import phase_cross_correlation

    blurred = _blur(out, blur_px)
    start, _, _ = phase_cross_correlation(ref, _bin(blurred, s), normalization=None)
    h, w = ref.shape
    if np.hypot(*start) > 0.25 * min(h, w):
        raise InputError("the output and reference do not overlap (registration failed)")
    m = int(np.ceil(np.abs(start).max())) + 2
    inner = ref[m : h - m, m : w - m].ravel()

    def negative_correlation(d: np.ndarray) -> float:
        moved = _bin(ndimage.shift(blurred, (d[0] * s, d[1] * s), order=1, mode="nearest"), s)
        c = np.corrcoef(moved[m : h - m, m : w - m].ravel(), inner)[0, 1]
        return -float(c) if np.isfinite(c) else 0.0

    best = optimize.minimize(
        negative_correlation, start, method="Powell", options={"xtol": 0.01, "ftol": 1e-7}
    )
    return float(best.x[0]), float(best.x[1])


def error_map(
    output: np.ndarray,
    reference: np.ndarray,
    *,
    output_pixel_size_nm: float,
    reference_pixel_size_nm: float,
    max_sigma_nm: float | None = None,
    register: bool = True,
) -> ErrorMap:
    """Map where ``output`` disagrees with ``reference`` once both are at the same resolution.

    Parameters
    ----------
    output : (Y·s, X·s) restored or super-resolved image (s whole: output pixels per reference
        pixel; 1 for a restoration at the input's pixel size).
    reference : (Y, X) the data it came from (e.g. the widefield image), in any linear unit.
    output_pixel_size_nm, reference_pixel_size_nm : the two pixel sizes.
    max_sigma_nm : upper bound of the resolution-scaling σ (default 4 reference pixels).
    register : correct a translation between the two first (phase correlation, sub-pixel).

    Returns
    -------
    ErrorMap
    """
    out = np.asarray(output, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if out.ndim != 2 or ref.ndim != 2:
        raise InputError("error maps take 2D images (Y, X)")
    s = _integer_scale(reference_pixel_size_nm, output_pixel_size_nm)
    h, w = min(ref.shape[0], out.shape[0] // s), min(ref.shape[1], out.shape[1] // s)
    if h < 8 or w < 8:
        raise InputError(f"output {out.shape} and reference {ref.shape} overlap too little")
    ref = ref[:h, :w]
    out = out[: h * s, : w * s]
    max_sigma_px = (max_sigma_nm or 4 * reference_pixel_size_nm) / output_pixel_size_nm

    shift = (0.0, 0.0)
    if register:
        shift = _register(out, ref, s, max_sigma_px / 4)
        out = ndimage.shift(out, (shift[0] * s, shift[1] * s), order=1, mode="nearest")

    def cost(sigma_px: float) -> float:
        return _affine(_bin(_blur(out, sigma_px), s).ravel(), ref.ravel())[2]

    best = optimize.minimize_scalar(
        cost, bounds=(0.0, max_sigma_px), method="bounded", options={"xatol": 0.01}
    )
    sigma_px = float(best.x)
    scaled = _bin(_blur(out, sigma_px), s)
    alpha, beta, rse = _affine(scaled.ravel(), ref.ravel())
    rsp = float(np.corrcoef(scaled.ravel(), ref.ravel())[0, 1])
    model = _blur(alpha * out + beta, sigma_px)
    up = ndimage.zoom(ref, s, order=1, mode="nearest", grid_mode=True) if s > 1 else ref
    emap = np.abs(up - model).astype(np.float32)
    return ErrorMap(
        map=emap,
        alpha=alpha,
        beta=beta,
        sigma_nm=sigma_px * output_pixel_size_nm,
        rse=rse,
        rsp=rsp,
        shift_nm=(shift[0] * reference_pixel_size_nm, shift[1] * reference_pixel_size_nm),
        scale=s,
        pixel_size_nm=output_pixel_size_nm,
    )


def local_contrast(emap: np.ndarray, region: np.ndarray, *, dilate_px: int = 0) -> float:
    """Mean error inside ``region`` divided by the median error elsewhere (artifact visibility)."""
    mask = np.asarray(region, bool)
    if dilate_px:
        mask = ndimage.binary_dilation(mask, iterations=dilate_px)
    inside = float(emap[mask].mean())
    rest = float(np.median(emap[~mask]))
    return inside / rest if rest > 0 else math.inf
