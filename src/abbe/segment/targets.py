"""What the segmentation network is taught: normalized inputs, and from instance labels the
foreground, the normalized border distance, the contact map and the contact loss weights."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from abbe.segment.config import SegmenterConfig


def normalize_image(
    image: np.ndarray,
    percentiles: tuple[float, float],
    levels: tuple[float, float] | None = None,
) -> np.ndarray:
    """Percentile normalization (low → 0, high → 1), robust to a few hot pixels; ``levels``
    gives the two values directly (e.g. a whole stack's percentiles for one of its planes)."""
    x = np.asarray(image, dtype=np.float32)
    lo, hi = levels if levels is not None else np.percentile(x, percentiles)
    return ((x - lo) / max(float(hi - lo), 1e-6)).astype(np.float32)


def segmentation_targets(labels: np.ndarray, *, contact_px: float | None = None) -> np.ndarray:
    """(2, Y, X) targets: foreground, and each object's border distance over its maximum;
    with ``contact_px``, a third map: the contacts (:func:`contact_map`)."""
    lab = np.asarray(labels)
    dist = np.zeros(lab.shape, np.float32)
    for i, sl in enumerate(ndimage.find_objects(lab), start=1):
        if sl is None:
            continue
        grown = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in sl)
        inside = lab[grown] == i
        d = ndimage.distance_transform_edt(np.pad(inside, 1))[1:-1, 1:-1]
        dist[grown][inside] = (d[inside] / max(float(d.max()), 1e-6)).astype(np.float32)
    maps = [(lab > 0).astype(np.float32), dist]
    if contact_px is not None:
        maps.append(contact_map(lab, contact_px))
    return np.stack(maps)


def contact_map(labels: np.ndarray, width_px: float) -> np.ndarray:
    """1 where a pixel lies within ``width_px`` of two different nuclei (itself counted),
    else 0: the lines along which touching nuclei meet, and narrow gaps between them.

    The third map of the touching-border class of DSB2018 solutions (Caicedo et al., Nat
    Methods 16:1247 (2019), "3-class" U-Nets with a boundary class): on its own the distance
    map must find contacts from a valley it has to draw where the image often shows none.
    """
    lab = np.asarray(labels)
    r = int(np.ceil(width_px))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disk = yy**2 + xx**2 <= width_px**2
    highest = ndimage.maximum_filter(lab, footprint=disk, mode="constant", cval=0)
    big = np.iinfo(np.int32).max
    lowest = ndimage.minimum_filter(
        np.where(lab > 0, lab, big).astype(np.int32), footprint=disk, mode="constant", cval=big
    )
    return ((lowest < big) & (highest != lowest)).astype(np.float32)


def contact_weights(labels: np.ndarray, w0: float, sigma: float) -> np.ndarray:
    """Loss weights 1 + w0·exp(−(d1 + d2)²/2σ²) that single out where nuclei touch.

    d1 is a pixel's distance to the nearest nucleus (0 inside one), d2 its distance to the
    nearest *other* nucleus, so the weight peaks in the thin background between two nuclei
    and on both sides of a contact where they are pressed together: the few pixels that
    decide whether a watershed separates them (the U-Net's separation border weight,
    Ronneberger et al., MICCAI 2015, extended to nuclei that share a border).
    """
    lab = np.asarray(labels)
    weights = np.ones(lab.shape, np.float32)
    fg = lab > 0
    if w0 <= 0 or not fg.any():
        return weights
    d1, (iy, ix) = ndimage.distance_transform_edt(~fg, return_indices=True)
    nearest = lab[iy, ix]
    d2 = np.full(lab.shape, np.inf)
    reach = int(np.ceil(3 * sigma))  # beyond d1 + d2 = 3σ the weight is < 1.2 % of w0
    for k, sl in enumerate(ndimage.find_objects(lab), start=1):
        if sl is None:
            continue
        box = tuple(
            slice(max(s.start - 2 * reach, 0), min(s.stop + 2 * reach, n))
            for s, n in zip(sl, lab.shape, strict=True)
        )
        others = (lab[box] > 0) & (lab[box] != k)
        if not others.any():
            continue
        mine = nearest[box] == k
        d2[box][mine] = ndimage.distance_transform_edt(~others)[mine]
    near = np.isfinite(d2)
    weights[near] += (w0 * np.exp(-((d1[near] + d2[near]) ** 2) / (2 * sigma**2))).astype(
        np.float32
    )
    return weights


def contact_px_of(cfg: SegmenterConfig) -> float | None:
    """Width of the contact target, or None for two-output networks (no contact map)."""
    return cfg.contact_px if cfg.network.out_channels == 3 else None
