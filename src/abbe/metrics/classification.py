"""Classification scores: accuracy, balanced accuracy, confusion matrix and expected
calibration error.

Guo, Pleiss, Sun & Weinberger, "On calibration of modern neural networks", ICML 2017 (ECE,
temperature scaling).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from abbe.errors import InputError


def _labels(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.shape != p.shape or t.ndim != 1:
        raise InputError(f"need two 1D label arrays of one length; got {t.shape} and {p.shape}")
    if t.size == 0:
        raise InputError("no samples to score")
    return t.astype(np.int64), p.astype(np.int64)


def confusion_matrix(y_true, y_pred, n_classes: int | None = None) -> np.ndarray:
    """Counts ``C[i, j]`` of samples of class i predicted as j."""
    t, p = _labels(y_true, y_pred)
    n = n_classes or int(max(t.max(), p.max()) + 1)
    return np.bincount(t * n + p, minlength=n * n).reshape(n, n)


def accuracy(y_true, y_pred) -> float:
    t, p = _labels(y_true, y_pred)
    return float(np.mean(t == p))


def balanced_accuracy(y_true, y_pred) -> float:
    """Mean of the per-class recalls (classes present in ``y_true``)."""
    c = confusion_matrix(y_true, y_pred)
    support = c.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(c)[present] / support[present]))


def expected_calibration_error(probabilities: np.ndarray, y_true, n_bins: int = 15) -> float:
    """|accuracy − confidence| averaged over equal-width confidence bins, weighted by their
    share of samples (the confidence is the top class's probability)."""
    prob = np.asarray(probabilities, dtype=np.float64)
    t = np.asarray(y_true, dtype=np.int64)
    if prob.ndim != 2 or prob.shape[0] != t.size:
        raise InputError(f"probabilities {prob.shape} do not match {t.size} labels")
    conf = prob.max(axis=1)
    correct = prob.argmax(axis=1) == t
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        sel = bins == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


@dataclass(frozen=True)
class ClassificationScores:
    accuracy: float
    balanced_accuracy: float
    ece: float
    confusion: list[list[int]]
    n: int

    def as_dict(self) -> dict:
        return asdict(self)


def score_classes(probabilities: np.ndarray, y_true) -> ClassificationScores:
    """All scores of predicted class probabilities against true class indices."""
    prob = np.asarray(probabilities)
    pred = prob.argmax(axis=1)
    return ClassificationScores(
        accuracy=accuracy(y_true, pred),
        balanced_accuracy=balanced_accuracy(y_true, pred),
        ece=expected_calibration_error(prob, y_true),
        confusion=confusion_matrix(y_true, pred, prob.shape[1]).tolist(),
        n=int(prob.shape[0]),
    )
