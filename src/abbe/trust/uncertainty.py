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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Calibration:
    """How a probabilistic model's Laplace scales b become calibrated ones, per image.

    ``b' = √((factor·b)² + floor² + (noise_floor·σ)²)``, all in the image's normalized units,
    where σ is the image's own noise SD (:func:`normalized_noise`), measured on the input.

    Attributes
    ----------
    factor : multiplies the predicted scales.
    floor : constant error floor (models calibrated before the noise floor existed).
    noise_floor : error floor in units of the image's noise SD.
    """

    factor: float
    floor: float = 0.0
    noise_floor: float = 0.0

    def scale(self, b: np.ndarray, noise: float) -> np.ndarray:
        """Calibrated Laplace scales of an image whose normalized noise SD is ``noise``."""
        b = np.asarray(b)
        floor2 = self.floor**2 + (self.noise_floor * noise) ** 2
        return np.sqrt((self.factor * b) ** 2 + floor2)


def normalized_noise(image: Any, low: float, high: float, *, max_size: int = 1024) -> float:
    """Noise SD of an image in the units of its percentile normalization, σ/(high − low).

    σ is the robust wavelet estimate of :func:`abbe.trust.ood.noise_sd` on a centred crop of
    the last two axes (at most ``max_size``² pixels, so large or lazy arrays are read once);
    ``low`` and ``high`` are the image's normalization percentiles' values. Dim images have a
    small range above the same photon noise, so their σ/(high − low) is large.
    """
    from abbe.trust.ood import noise_sd

    h, w = image.shape[-2:]
    y0, x0 = max(0, (h - max_size) // 2), max(0, (w - max_size) // 2)
    crop = image[..., y0 : y0 + max_size, x0 : x0 + max_size]
    crop = np.asarray(crop.compute() if hasattr(crop, "compute") else crop, dtype=np.float64)
    return noise_sd(crop) / max(float(high - low), 1e-12)


def calibrate_per_image(
    errors: Sequence[np.ndarray],
    scales: Sequence[np.ndarray],
    noise: Sequence[float],
    coverage: float = 0.9,
    n_floors: int = 24,
) -> Calibration:
    """Factor a and noise floor g making ``b' = √((a·b)² + (g·σᵢ)²)`` calibrated in each image.

    Recalibration (Kuleshov, Fenner & Ermon, ICML 2018) conditioned on one statistic of each
    image, its noise SD σᵢ in normalized units (:func:`normalized_noise`), in the spirit of
    per-sample σ-scaling (Laves et al., MIDL 2020). Why the noise: in flat background, where
    most pixels are, the network predicts a tiny b but errs by a fraction of the input noise it
    could not remove; a dim image has the same photon noise under a smaller normalization range,
    so its errors are larger in normalized units. A constant floor fitted on typical images is
    then too tight for dim ones (benchmarks/resolution.py: held-out images with 0.7× the usual
    range were covered 51 % and 71 %); a floor proportional to σᵢ follows them, and σᵢ is
    measured on the input, so no truth is needed at prediction time.

    a is set by bisection so that ``coverage`` of all pixels is covered; g is the candidate
    that brings each image's lower and upper halves of b closest to ``coverage`` on average.

    Parameters
    ----------
    errors : per image, |truth − mean| in normalized units.
    scales : per image, the predicted Laplace scales b in the same units.
    noise : per image, its normalized noise SD σᵢ.

    Returns
    -------
    Calibration with ``factor`` a and ``noise_floor`` g (``floor`` 0).
    """
    if not (len(errors) == len(scales) == len(noise)) or not errors:
        raise InputError("calibration needs errors, scales and a noise level for each image")
    err = np.concatenate([np.ravel(e) for e in errors]).astype(np.float64)
    b = np.maximum(np.concatenate([np.ravel(s) for s in scales]).astype(np.float64), 1e-12)
    sizes = [np.size(e) for e in errors]
    sigma = np.repeat(np.asarray(noise, dtype=np.float64), sizes)
    image = np.repeat(np.arange(len(sizes)), sizes)
    k = math.log(1 / (1 - coverage))
    # The halves of b within each image: background and structure, calibrated alike.
    low = np.concatenate(
        [np.ravel(s) <= np.median(s) for s in scales]  # per image, not pooled
    )
    groups = [(image == i) & half for i in range(len(sizes)) for half in (low, ~low)]

    def width(a: float, g: float) -> np.ndarray:
        return np.sqrt((a * b) ** 2 + (g * sigma) ** 2) * k

    def factor_for(g: float) -> float:
        lo_a, hi_a = 0.0, 1.0
        while _cov(err, width(hi_a, g)) < coverage and hi_a < 1e6:
            hi_a *= 2
        for _ in range(40):
            mid = (lo_a + hi_a) / 2
            if _cov(err, width(mid, g)) < coverage:
                lo_a = mid
            else:
                hi_a = mid
        return hi_a

    ratio = err[low] / sigma[low] / k
    candidates = np.concatenate([[0.0], np.quantile(ratio, np.linspace(0.05, 0.95, n_floors))])
    best = (math.inf, 1.0, 0.0)
    for g in candidates:
        a = factor_for(float(g))
        w = width(a, float(g))
        miss = float(np.mean([abs(_cov(err[m], w[m]) - coverage) for m in groups if m.any()]))
        if miss < best[0]:
            best = (miss, a, float(g))
    return Calibration(factor=best[1], noise_floor=best[2])


def ensemble_predict(
    models: Sequence[Any], image: np.ndarray, axes: str = "YX", **predict_options: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of several models' predictions (a deep ensemble)."""
    if len(models) < 2:
        raise InputError("an ensemble needs at least two models")
    preds = np.stack([m.predict(image, axes, **predict_options) for m in models])
    return preds.mean(axis=0), preds.std(axis=0, ddof=1)
