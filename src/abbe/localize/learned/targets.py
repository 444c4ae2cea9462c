"""What the localizer's network sees and is taught: frames normalized by a mid-range
emitter's peak, and per-pixel targets (presence, offsets, photons) from the truth table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from abbe.localize.learned.config import LocalizerConfig, SimulationMatch


def normalize_frames(electrons: np.ndarray, cfg: SimulationMatch) -> np.ndarray:
    """Network input: each frame minus its median, divided by a mid-range emitter's peak."""
    e = np.asarray(electrons, dtype=np.float32)
    med = np.median(e.reshape(e.shape[0], -1), axis=1)[:, None, None]
    return ((e - med) / cfg.signal_scale).astype(np.float32)


def targets(truth: pd.DataFrame, n_frames: int, shape: tuple[int, int], cfg: LocalizerConfig):
    """Per-pixel targets (T, 5, Y, X): emitter present in the pixel; dx, dy (pixels from the
    pixel centre) and photons / scale of the nearest emitter within ``cfg.reach`` pixels; and
    where such an emitter is. Of two emitters in one pixel the brighter is present.

    Teaching the neighbours too (the nearest emitter wins a pixel) lets the pixel that detects
    an emitter place it anywhere near, instead of inside its own bounds: trained on its own
    pixel only, a head hedges toward the pixel centre when the position is uncertain, which
    shows as a grid of dots in renders (pixel-locking).
    """
    h, w = shape
    out = np.zeros((n_frames, 5, h, w), dtype=np.float32)
    if len(truth) == 0:
        return out
    a = cfg.pixel_size_nm
    x = truth["x_nm"].to_numpy() / a
    y = truth["y_nm"].to_numpy() / a
    t = truth["frame"].to_numpy() - 1
    n = truth["photons"].to_numpy()
    ix, iy = np.floor(x).astype(int), np.floor(y).astype(int)
    ok = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    order = np.argsort(n[ok])  # brightest written last
    out[t[ok][order], 0, iy[ok][order], ix[ok][order]] = 1.0
    steps = np.arange(-cfg.reach, cfg.reach + 1)
    oy, ox = (g.ravel() for g in np.meshgrid(steps, steps, indexing="ij"))
    py, px = iy[:, None] + oy[None], ix[:, None] + ox[None]  # (emitters, neighbours)
    dx, dy = x[:, None] - px - 0.5, y[:, None] - py - 0.5
    inside = (py >= 0) & (py < h) & (px >= 0) & (px < w)
    dist = np.where(inside, np.hypot(dx, dy), np.inf).ravel()
    order = np.argsort(-dist, kind="stable")  # nearest written last, so it wins its pixel
    order = order[np.isfinite(dist[order])]
    k = order // len(ox)  # emitter of each entry
    sel = (t[k], py.ravel()[order], px.ravel()[order])
    out[sel[0], 1, sel[1], sel[2]] = dx.ravel()[order]
    out[sel[0], 2, sel[1], sel[2]] = dy.ravel()[order]
    out[sel[0], 3, sel[1], sel[2]] = n[k] / cfg.photon_scale
    out[sel[0], 4, sel[1], sel[2]] = 1.0
    return out
