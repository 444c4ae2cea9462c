"""Super-resolved images from localizations, and drift correction by cross-correlation.

Rendering: each localization is either counted in its pixel (histogram) or drawn as a
normalized Gaussian of its own localization precision (the usual way to show what the data
support: a precise localization is a sharp spot, an uncertain one a blur).

Drift: the localizations are split into time bins, each bin rendered, and the shift between
every pair of renders found at the peak of their cross-correlation (sub-pixel by a parabola) and
solved for one drift per bin by least squares (redundant cross-correlation); the drifts are
interpolated over frames and subtracted (Mlodzianoski et al., Opt Express 19:15009
(2011); Wang et al., Opt Express 22:15982 (2014)).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from abbe.errors import InputError
from abbe.simulate.psfmodel import IntegratedGaussian


def _canvas(field_nm: tuple[float, float], pixel_size_nm: float) -> tuple[int, int]:
    if pixel_size_nm <= 0:
        raise InputError("render pixel size must be positive")
    h, w = (math.ceil(f / pixel_size_nm) for f in field_nm)
    if h * w > 20000**2:
        raise InputError(f"render of {h}×{w} pixels is too large; choose a larger pixel size")
    return h, w


def render_histogram(
    locs: pd.DataFrame, *, field_nm: tuple[float, float], pixel_size_nm: float
) -> np.ndarray:
    """Count localizations per pixel of a (height, width) field (float32)."""
    h, w = _canvas(field_nm, pixel_size_nm)
    iy = np.floor(locs["y_nm"].to_numpy() / pixel_size_nm).astype(np.int64)
    ix = np.floor(locs["x_nm"].to_numpy() / pixel_size_nm).astype(np.int64)
    ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    counts = np.bincount(iy[ok] * w + ix[ok], minlength=h * w)
    return counts.reshape(h, w).astype(np.float32)


def render_gaussian(
    locs: pd.DataFrame,
    *,
    field_nm: tuple[float, float],
    pixel_size_nm: float,
    sigma_nm: float | None = None,
    min_sigma_nm: float | None = None,
) -> np.ndarray:
    """Draw each localization as a unit-mass Gaussian of σ = its ``uncertainty_nm`` (or
    ``sigma_nm`` for all), at least ``min_sigma_nm`` (default half a render pixel)."""
    h, w = _canvas(field_nm, pixel_size_nm)
    n = len(locs)
    if sigma_nm is not None:
        sig = np.full(n, float(sigma_nm))
    elif "uncertainty_nm" in locs.columns:
        sig = locs["uncertainty_nm"].to_numpy(np.float64).copy()
    else:
        raise InputError("localizations have no uncertainty_nm; give a render σ")
    floor = min_sigma_nm if min_sigma_nm is not None else pixel_size_nm / 2
    sig = np.clip(np.nan_to_num(sig, nan=floor), floor, None) / pixel_size_nm
    y = locs["y_nm"].to_numpy(np.float64) / pixel_size_nm
    x = locs["x_nm"].to_numpy(np.float64) / pixel_size_nm
    out = np.zeros(h * w, dtype=np.float64)
    # Group by window size so each group is drawn with one vectorized call.
    radius = np.minimum(np.ceil(3 * sig).astype(np.int64), 64)
    for r in np.unique(radius):
        sel = np.flatnonzero(radius == r)
        for start in range(0, sel.size, 50_000):
            part = sel[start : start + 50_000]
            _splat_gaussians(out, h, w, y[part], x[part], sig[part], int(r))
    return out.reshape(h, w).astype(np.float32)


def _splat_gaussians(out, h, w, y, x, sig, r) -> None:
    k = np.arange(-r, r + 1)
    iy = np.floor(y).astype(np.int64)[:, None] + k[None, :]
    ix = np.floor(x).astype(np.int64)[:, None] + k[None, :]
    # Unit-mass pixel-integrated Gaussians on each localization's own window of pixels.
    y_edges = np.concatenate([iy, iy[:, -1:] + 1], axis=1).astype(np.float64)
    x_edges = np.concatenate([ix, ix[:, -1:] + 1], axis=1).astype(np.float64)
    vals = IntegratedGaussian(sigma_px=1.0).window(y_edges, y, x_edges, x, sigma_px=sig)
    yy = np.broadcast_to(iy[:, :, None], vals.shape)
    xx = np.broadcast_to(ix[:, None, :], vals.shape)
    ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
    out += np.bincount((yy[ok] * w + xx[ok]), weights=vals[ok], minlength=h * w)


def estimate_drift(
    locs: pd.DataFrame,
    *,
    field_nm: tuple[float, float],
    bins: int = 8,
    pixel_size_nm: float = 20.0,
    blur_nm: float = 30.0,
) -> pd.DataFrame:
    """Drift (nm) per frame from cross-correlating renders of ``bins`` time segments.

    Returns
    -------
    DataFrame with ``frame``, ``dx_nm``, ``dy_nm`` for every frame from the first to the last
    (the first bin's drift is 0 by definition).
    """
    from scipy import fft

    frames = locs["frame"].to_numpy()
    if len(locs) == 0:
        raise InputError("no localizations to estimate drift from")
    f0, f1 = int(frames.min()), int(frames.max())
    edges = np.linspace(f0, f1 + 1, bins + 1)
    renders, centres = [], []
    for b in range(bins):
        sel = (frames >= edges[b]) & (frames < edges[b + 1])
        if sel.sum() < 10:
            continue
        img = render_gaussian(
            locs[sel], field_nm=field_nm, pixel_size_nm=pixel_size_nm, sigma_nm=blur_nm
        )
        renders.append(img - img.mean())
        centres.append(frames[sel].mean())
    if len(renders) < 2:
        raise InputError("too few localizations per time bin to estimate drift")
    # Redundant cross-correlation: the shift between every pair of bins, then per-bin drifts by
    # least squares (d_j − d_i = r_ij, d_0 = 0), which averages out single noisy correlations.
    from skimage.registration import phase_cross_correlation

    spectra = [fft.fft2(img) for img in renders]
    n = len(spectra)
    rows, rhs = [], []
    for i in range(n):
        for j in range(i + 1, n):
            # Sub-pixel peak by upsampled DFT around it (Guizar-Sicairos et al. 2008).
            found, _, _ = phase_cross_correlation(
                spectra[j], spectra[i], upsample_factor=20, space="fourier", normalization=None
            )
            row = np.zeros(n)
            row[j], row[i] = 1.0, -1.0
            rows.append(row)
            rhs.append(found)
    design = np.array(rows)[:, 1:]
    solved, *_ = np.linalg.lstsq(design, np.array(rhs), rcond=None)
    shifts = np.vstack([[0.0, 0.0], solved])
    shifts_nm = np.array(shifts) * pixel_size_nm
    all_frames = np.arange(f0, f1 + 1)
    dy = _interpolate(all_frames, np.asarray(centres), shifts_nm[:, 0])
    dx = _interpolate(all_frames, np.asarray(centres), shifts_nm[:, 1])
    return pd.DataFrame({"frame": all_frames, "dx_nm": dx, "dy_nm": dy})


def _interpolate(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Piecewise-linear through the bin centres, extended linearly before the first and after
    the last centre (drift keeps going in the half bins at either end)."""
    y = np.interp(x, xp, fp)
    if len(xp) >= 2:
        lo, hi = x < xp[0], x > xp[-1]
        y[lo] = fp[0] + (x[lo] - xp[0]) * (fp[1] - fp[0]) / (xp[1] - xp[0])
        y[hi] = fp[-1] + (x[hi] - xp[-1]) * (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
    return y


def correct_drift(locs: pd.DataFrame, drift: pd.DataFrame) -> pd.DataFrame:
    """Subtract the per-frame drift from the positions (a copy)."""
    table = drift.set_index("frame")
    out = locs.copy()
    f = out["frame"].to_numpy()
    out["x_nm"] = out["x_nm"].to_numpy() - table["dx_nm"].reindex(f).fillna(0.0).to_numpy()
    out["y_nm"] = out["y_nm"].to_numpy() - table["dy_nm"].reindex(f).fillna(0.0).to_numpy()
    return out
