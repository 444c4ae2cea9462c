"""Linear unmixing of multicolour widefield channels.

Each detection channel records a mix of the labels, ``observed = M · labels + background``, with
``M[channel, label]`` the share of a label's light in each channel relative to its own channel
(Zimmermann, Adv Biochem Eng Biotechnol 95:245 (2005); Lansford et al., J Biomed Opt 6:311
(2001)). Each pixel's labels are the non-negative least-squares solution (Lawson & Hanson,
*Solving Least Squares Problems*, 1974), solved exactly here by trying every set of active
labels (``2^C`` small systems for C ≤ 6 channels, vectorized over pixels) and keeping the best
one that satisfies the Karush–Kuhn–Tucker conditions.

The matrix can be estimated from the data by the single-label-region method: for each label,
the pixels bright in its channel and dim in the others (where that label is alone) give its
column as the slope of each channel against its own, through the origin; the selection is
refined by unmixing with the current estimate and keeping pixels where the other labels are
below 5 % of it.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np

from abbe.errors import AbbeWarning, InputError

MAX_CHANNELS = 6


def _check(image: np.ndarray, matrix: np.ndarray, where: str | Path | None = None) -> None:
    if image.ndim != 3:
        raise InputError(f"unmixing needs channels first (C, Y, X), got shape {image.shape}", where)
    c = image.shape[0]
    if matrix.ndim != 2 or matrix.shape[0] != c:
        raise InputError(
            f"the matrix is {'×'.join(map(str, matrix.shape))} but the image has {c} channels; "
            f"it must have one row per channel ({c}×L)",
            where,
        )
    if matrix.shape[1] > c:
        raise InputError(
            f"{matrix.shape[1]} labels cannot be unmixed from {c} channels (at most {c})", where
        )
    if not np.all(np.isfinite(matrix)) or np.any(matrix < 0):
        raise InputError("the matrix must hold finite, non-negative values", where)
    if c > MAX_CHANNELS:
        raise InputError(f"at most {MAX_CHANNELS} channels can be unmixed, got {c}", where)


def background_levels(image: np.ndarray, percentile: float = 1.0) -> np.ndarray:
    """Each channel's background: its ``percentile``-th value (dark regions)."""
    return np.percentile(image.reshape(image.shape[0], -1), percentile, axis=1)


def nnls_unmix(
    image: np.ndarray,
    matrix: np.ndarray,
    *,
    background: np.ndarray | None = None,
    where: str | Path | None = None,
) -> np.ndarray:
    """Non-negative least-squares unmixing of every pixel.

    Parameters
    ----------
    image : (C, Y, X) channels, background included.
    matrix : (C, L) bleed-through ``M[channel, label]``, L ≤ C.
    background : (C,) subtracted first; default :func:`background_levels`.

    Returns
    -------
    (L, Y, X) float32 labels, each in the units of its own channel.
    """
    image = np.asarray(image, np.float64)
    matrix = np.asarray(matrix, np.float64)
    _check(image, matrix, where)
    c, h, w = image.shape
    n_lab = matrix.shape[1]
    if np.linalg.matrix_rank(matrix) < n_lab:
        raise InputError("the matrix is singular: two labels have the same colour", where)
    b = background_levels(image) if background is None else np.asarray(background, np.float64)
    y = (image - b[:, None, None]).reshape(c, -1)  # (C, P)
    best = np.zeros((n_lab, y.shape[1]))
    best_res = np.full(y.shape[1], np.inf)
    for k in range(1, n_lab + 1):
        for active in itertools.combinations(range(n_lab), k):
            sub = matrix[:, active]
            x = np.linalg.lstsq(sub, y, rcond=None)[0]  # (k, P)
            full = np.zeros((n_lab, y.shape[1]))
            full[list(active)] = x
            r = y - matrix @ full
            # KKT: inactive labels' gradient must not point into the feasible side.
            grad = matrix.T @ r  # (L, P)
            inactive = [i for i in range(n_lab) if i not in active]
            ok = (x >= -1e-9).all(axis=0)
            if inactive:
                ok &= (grad[inactive] <= 1e-6 * (1 + np.abs(y).max())).all(axis=0)
            res = (r**2).sum(axis=0)
            take = ok & (res < best_res)
            best[:, take] = np.clip(full[:, take], 0, None)
            best_res[take] = res[take]
    # All-zero is feasible where nothing else is (every pixel below the background).
    zero = ~np.isfinite(best_res)
    best[:, zero] = 0.0
    return best.reshape(n_lab, h, w).astype(np.float32)


def estimate_matrix(
    image: np.ndarray,
    *,
    background: np.ndarray | None = None,
    bright_percentile: float = 90.0,
    iterations: int = 4,
    where: str | Path | None = None,
) -> np.ndarray:
    """Estimate the (C, C) bleed-through matrix from single-label regions.

    For label ``l``: pixels above the ``bright_percentile`` of channel ``l`` whose other
    channels are low relative to it (first the fifth with the lowest ratio to channel ``l``,
    then, once a matrix is at hand, those where unmixing leaves the other labels below 5 % of
    ``l``); column ``l`` is the slope of each channel against channel ``l`` over them. Assumes
    every label has regions where it is alone, and channel ``l`` sees label ``l`` best.

    Warns (:class:`AbbeWarning`) when a label has fewer than 50 such pixels: its column is
    then a guess.
    """
    image = np.asarray(image, np.float64)
    if image.ndim != 3 or image.shape[0] < 2:
        raise InputError(
            f"estimating a matrix needs (C, Y, X) with C ≥ 2, got {image.shape}", where
        )
    c = image.shape[0]
    b = background_levels(image) if background is None else np.asarray(background, np.float64)
    y = (image - b[:, None, None]).reshape(c, -1)
    matrix = np.eye(c)
    few = set()
    for it in range(iterations):
        unmixed = None if it == 0 else nnls_unmix(image, matrix, background=b).reshape(c, -1)
        new = np.eye(c)
        for lab in range(c):
            own = y[lab]
            bright = own > np.percentile(own, bright_percentile)
            others = np.delete(np.arange(c), lab)
            if unmixed is None:
                ratio = y[others].clip(0, None).sum(0) / np.maximum(own, 1e-9)
                cut = np.percentile(ratio[bright], 20) if bright.any() else 0.0
                pure = bright & (ratio <= cut)
            else:
                mine = unmixed[lab]
                pure = bright & (unmixed[others].sum(0) < 0.05 * mine) & (mine > 0)
            if pure.sum() < 50:
                few.add(lab)
                pure = bright
            o = own[pure]
            for d in others:
                new[d, lab] = max(0.0, float((y[d][pure] * o).sum() / max((o * o).sum(), 1e-12)))
        matrix = new
    if few:
        warnings.warn(
            f"channel(s) {', '.join(str(k) for k in sorted(few))} have fewer than 50 pixels "
            "where their label is alone: their bleed-through is a guess; give a measured "
            "matrix (--matrix) from single-label samples",
            AbbeWarning,
            stacklevel=2,
        )
    return matrix


def read_matrix(path: str | Path) -> np.ndarray:
    """A bleed-through matrix from a CSV of numbers (rows: channels, columns: labels; an
    optional header row is skipped)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such matrix file", path)
    rows = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            rows.append([float(v) for v in line.split(",")])
        except ValueError:
            if rows:
                raise InputError(f"not a number in row {len(rows) + 1}: {line!r}", path) from None
    if not rows or len({len(r) for r in rows}) != 1:
        raise InputError("the matrix must be rows of equally many comma-separated numbers", path)
    return np.array(rows)


def crosstalk(unmixed: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``X[k, l]``: how much of label ``l`` shows in output ``k`` relative to output ``l``.

    Each output channel is regressed on all true labels (with a constant); ``X[k, l] =
    coef[k, l] / coef[l, l]``, the diagonal 1. Before unmixing it equals the bleed-through
    matrix; perfect unmixing makes it the identity.
    """
    c = truth.shape[0]
    design = np.concatenate([truth.reshape(c, -1), np.ones((1, truth[0].size))]).T
    coef = np.linalg.lstsq(design, unmixed.reshape(unmixed.shape[0], -1).T, rcond=None)[0]
    coef = coef[:c].T  # (outputs, labels)
    return coef / np.diag(coef)[None, :]
