"""3D labels from per-plane labels: joining objects across planes, dropping thin ones, trimming
out-of-focus planes."""

from __future__ import annotations

import numpy as np


def _overlap_coefficient(
    a: np.ndarray, b: np.ndarray, a_ids: np.ndarray, b_ids: np.ndarray
) -> np.ndarray:
    """|A ∩ B| / min(|A|, |B|) for every object of ``a`` (rows, ``a_ids``) and of ``b``."""
    na, nb = int(a.max()) + 1, int(b.max()) + 1
    counts = np.bincount(a.ravel().astype(np.int64) * nb + b.ravel(), minlength=na * nb)
    counts = counts.reshape(na, nb)
    area_a, area_b = counts.sum(axis=1), counts.sum(axis=0)
    inter = counts[np.ix_(a_ids, b_ids)]
    return inter / np.maximum(np.minimum(area_a[a_ids][:, None], area_b[b_ids][None]), 1)


def stitch_planes(planes: list[np.ndarray], min_overlap: float = 0.5) -> np.ndarray:
    """Join per-plane labels into 3D labels: an object continues the object of the previous
    plane it overlaps by ≥ ``min_overlap`` of the smaller of the two (optimal one-to-one);
    the others start new objects."""
    from abbe.metrics.segmentation import match

    out = np.zeros((len(planes), *planes[0].shape), np.int32)
    next_id = 1
    previous = np.zeros(planes[0].shape, np.int32)
    for z, labels in enumerate(planes):
        ids = np.unique(labels[labels > 0])
        prev_ids = np.unique(previous[previous > 0])
        mapping: dict[int, int] = {}
        if ids.size and prev_ids.size:
            overlap = _overlap_coefficient(previous, labels, prev_ids, ids)
            rows, cols = match(overlap, min_overlap)
            mapping = {int(ids[c]): int(prev_ids[r]) for r, c in zip(rows, cols, strict=True)}
        lut = np.zeros(int(labels.max()) + 1, np.int32)
        for k in ids:
            if int(k) not in mapping:
                mapping[int(k)] = next_id
                next_id += 1
            lut[int(k)] = mapping[int(k)]
        out[z] = lut[labels]
        previous = out[z]
    return out


def drop_thin(labels: np.ndarray, min_planes: int) -> np.ndarray:
    """Remove objects present in fewer than ``min_planes`` planes."""
    n = int(labels.max()) + 1
    planes = np.zeros(n, np.int64)
    for z in range(labels.shape[0]):
        planes[np.unique(labels[z])] += 1
    thin = np.flatnonzero((planes < min_planes) & (np.arange(n) > 0))
    return np.where(np.isin(labels, thin), 0, labels)


def trim_axially(vol: np.ndarray, labels: np.ndarray, level: float = 0.5) -> np.ndarray:
    """Remove each object's planes whose mean intensity inside it is below ``level`` of the way
    from the background to its brightest plane: out-of-focus light above and below a nucleus
    looks like a (dimmer) nucleus in a single plane, so plane-wise masks run long in Z."""
    bg = float(np.percentile(vol, 5))
    n = int(labels.max()) + 1
    out = labels.copy()
    means = np.zeros((vol.shape[0], n))
    for z in range(vol.shape[0]):
        counts = np.bincount(labels[z].ravel(), minlength=n)
        sums = np.bincount(labels[z].ravel(), weights=vol[z].ravel(), minlength=n)
        means[z] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    with np.errstate(all="ignore"):
        peak = np.nanmax(means, axis=0)
        keep = means >= bg + level * (peak - bg)
    for z in range(vol.shape[0]):
        drop = ~keep[z] & ~np.isnan(means[z])
        drop[0] = False
        out[z][drop[labels[z]]] = 0
    return out
