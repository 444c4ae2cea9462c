"""Instance-segmentation scores: optimal one-to-one matching by IoU, AP, F1, panoptic quality.

AP at an IoU threshold τ is TP/(TP + FP + FN) after matching predicted and true objects one to
one so as to maximize the total IoU among pairs with IoU ≥ τ (the definition of the Data Science
Bowl 2018, StarDist's ``matching`` and Cellpose). F1 = 2TP/(2TP + FP + FN). Panoptic quality
(Kirillov et al., CVPR 2019) = Σ IoU of matched pairs / (TP + FP/2 + FN/2) at τ = 0.5.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from abbe.errors import InputError

THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)


@dataclass(frozen=True)
class SegmentationScores:
    """Scores of one label image against the truth (AP per IoU threshold in ``ap``)."""

    ap: dict[float, float]
    f1: float
    pq: float
    n_true: int
    n_pred: int
    tp50: int

    @property
    def ap50(self) -> float:
        return self.ap[0.5]

    @property
    def ap75(self) -> float:
        return self.ap[0.75]

    def as_dict(self) -> dict[str, float | int]:
        d = asdict(self)
        ap = d.pop("ap")
        return {
            "ap50": round(self.ap50, 4),
            "ap75": round(self.ap75, 4),
            "f1": round(self.f1, 4),
            "pq": round(self.pq, 4),
            "n_true": self.n_true,
            "n_pred": self.n_pred,
            "tp50": self.tp50,
            **{f"ap{round(k * 100)}": round(v, 4) for k, v in ap.items()},
        }


def iou_matrix(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """IoU of every (true object, predicted object) pair; labels 1…n, 0 is background.

    Returns an array (n_true, n_pred) indexed by the objects in order of their labels.
    """
    t = _relabel(truth)
    p = _relabel(pred)
    nt, npred = int(t.max()), int(p.max())
    overlap = np.bincount(
        t.ravel().astype(np.int64) * (npred + 1) + p.ravel(), minlength=(nt + 1) * (npred + 1)
    ).reshape(nt + 1, npred + 1)
    area_t = overlap.sum(1, keepdims=True)
    area_p = overlap.sum(0, keepdims=True)
    union = area_t + area_p - overlap
    iou = overlap / np.maximum(union, 1)
    return iou[1:, 1:]


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Labels as consecutive integers 1…n (background 0), whatever values were used."""
    lab = np.asarray(labels)
    if not np.issubdtype(lab.dtype, np.integer):
        if not np.all(np.equal(np.mod(lab, 1), 0)):
            raise InputError("a label image must hold whole numbers (one per object)")
        lab = lab.astype(np.int64)
    if lab.min(initial=0) < 0:
        raise InputError("a label image cannot hold negative labels")
    _, inverse = np.unique(lab, return_inverse=True)
    inverse = inverse.reshape(lab.shape)
    return inverse if (lab == 0).any() else inverse + 1


def match(iou: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Optimal one-to-one pairs (rows, cols) with IoU ≥ ``threshold``, maximizing total IoU."""
    if iou.size == 0:
        return np.zeros(0, int), np.zeros(0, int)
    cost = np.where(iou >= threshold, -iou, 0.0)
    rows, cols = linear_sum_assignment(cost)
    ok = iou[rows, cols] >= threshold
    return rows[ok], cols[ok]


def score_labels(pred: np.ndarray, truth: np.ndarray) -> SegmentationScores:
    """AP at IoU 0.5…0.9, F1 and PQ at 0.5 of the label image ``pred`` against ``truth``.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.zeros((8, 8), int); t[1:4, 1:4] = 1; t[5:8, 5:8] = 2
    >>> score_labels(t, t).ap50
    1.0
    """
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise InputError(f"label images differ in shape: {pred.shape} and {truth.shape}")
    iou = iou_matrix(truth, pred)
    n_true, n_pred = iou.shape
    ap = {}
    for thr in THRESHOLDS:
        rows, _ = match(iou, thr)
        tp = len(rows)
        denominator = n_true + n_pred - tp
        ap[thr] = tp / denominator if denominator else 1.0
    rows, cols = match(iou, 0.5)
    tp = len(rows)
    fp, fn = n_pred - tp, n_true - tp
    f1 = 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else 1.0
    pq = float(iou[rows, cols].sum()) / (tp + 0.5 * fp + 0.5 * fn) if (tp + fp + fn) else 1.0
    return SegmentationScores(ap=ap, f1=f1, pq=pq, n_true=n_true, n_pred=n_pred, tp50=tp)
