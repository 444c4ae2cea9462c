"""Per-pixel uncertainty of learned restorations: a calibrated Laplace head, or a deep ensemble.

A probabilistic U-Net predicts, per pixel, the centre μ and scale b of a Laplace distribution
(trained on its negative log-likelihood). Its interval μ ± b·ln(1/(1−p)) holds the truth with
probability p if the scales are right; a single factor fitted on held-out data makes them right
(calibration), and is stored with the model. A deep ensemble (several models trained from
different seeds) gives the spread of their predictions instead.

References
----------
Weigert et al., Nat Methods 15:1090 (2018) (probabilistic CARE, Laplace likelihood).
Lakshminarayanan, Pritzel & Blundell, NeurIPS 2017 (deep ensembles).
Kuleshov, Fenner & Ermon, ICML 2018 (recalibrating regression uncertainty).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from abbe.errors import InputError

SQRT2 = math.sqrt(2.0)


def laplace_half_width(scale: np.ndarray, coverage: float = 0.9) -> np.ndarray:
    """Half-width of the central ``coverage`` interval of a Laplace distribution of scale b."""
    if not 0 < coverage < 1:
        raise InputError(f"coverage must be between 0 and 1, got {coverage}")
    return np.asarray(scale) * math.log(1 / (1 - coverage))


def laplace_sd(scale: np.ndarray) -> np.ndarray:
    """Standard deviation of a Laplace distribution of scale b: √2·b."""
    return SQRT2 * np.asarray(scale)


def empirical_coverage(truth: np.ndarray, mean: np.ndarray, half_width: np.ndarray) -> float:
    """Fraction of pixels whose truth lies within ``mean ± half_width``."""
    return float(np.mean(np.abs(np.asarray(truth) - np.asarray(mean)) <= np.asarray(half_width)))


def calibration_factor(
    truth: np.ndarray, mean: np.ndarray, scale: np.ndarray, coverage: float = 0.9
) -> float:
    """Factor c making ``μ ± c·b·ln(1/(1−p))`` cover the truth for exactly ``coverage`` of pixels.

    c is the ``coverage`` quantile of ``|truth − μ|/b`` divided by ``ln(1/(1−p))``: 1 when the
    predicted scales are right, above 1 when the network is over-confident.
    """
    ratio = np.abs(np.asarray(truth) - np.asarray(mean)) / np.maximum(np.asarray(scale), 1e-12)
    return float(np.quantile(ratio, coverage) / math.log(1 / (1 - coverage)))


def calibrate_scale_and_floor(
    error: np.ndarray, scale: np.ndarray, coverage: float = 0.9, n_floors: int = 24
) -> tuple[float, float]:
    """Factor a and floor c making ``b' = √((a·b)² + c²)`` give calibrated Laplace intervals.

    One factor cannot serve both the structures, where the predicted scale b is large and
    roughly right, and flat background, where b is tiny but the network's small bias is not: a
    floor c (same units as ``error`` and ``scale``, e.g. fractions of the normalized range) covers
    the bias. a and c are chosen so that ``coverage`` of the pixels is covered overall and in
    the lower and upper halves of b alike (Kuleshov et al., ICML 2018, recalibration by group).

    Parameters
    ----------
    error : |truth − mean| per pixel.
    scale : predicted Laplace scale b per pixel.
    """
    err = np.asarray(error, dtype=np.float64).ravel()
    b = np.maximum(np.asarray(scale, dtype=np.float64).ravel(), 1e-12)
    k = math.log(1 / (1 - coverage))
    low = b <= np.median(b)

    def factor_for(c: float) -> float:
        lo_a, hi_a = 0.0, 1.0
        while _cov(err, np.sqrt((hi_a * b) ** 2 + c * c) * k) < coverage and hi_a < 1e6:
            hi_a *= 2
        for _ in range(40):
            mid = (lo_a + hi_a) / 2
            if _cov(err, np.sqrt((mid * b) ** 2 + c * c) * k) < coverage:
                lo_a = mid
            else:
                hi_a = mid
        return hi_a

    floors = np.concatenate([[0.0], np.quantile(err[low], np.linspace(0.05, 0.95, n_floors)) / k])
    best = (math.inf, 1.0, 0.0)
    for c in floors:
        a = factor_for(float(c))
        width = np.sqrt((a * b) ** 2 + c * c) * k
        miss = abs(_cov(err[low], width[low]) - coverage) + abs(
            _cov(err[~low], width[~low]) - coverage
        )
        if miss < best[0]:
            best = (miss, a, float(c))
    return best[1], best[2]


def _cov(err: np.ndarray, half_width: np.ndarray) -> float:
    return float(np.mean(err <= half_width))


def ensemble_predict(
    models: Sequence[Any], image: np.ndarray, axes: str = "YX", **predict_options: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of several models' predictions (a deep ensemble)."""
    if len(models) < 2:
        raise InputError("an ensemble needs at least two models")
    preds = np.stack([m.predict(image, axes, **predict_options) for m in models])
    return preds.mean(axis=0), preds.std(axis=0, ddof=1)
