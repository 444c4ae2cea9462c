"""Per-pixel uncertainty of learned restorations: a calibrated Laplace head, or a deep ensemble.

A probabilistic U-Net predicts, per pixel, the centre μ and scale b of a Laplace distribution
(trained on its negative log-likelihood). Its interval μ ± b·ln(1/(1−p)) holds the truth with
probability p if the scales are right. A calibration fitted on held-out pairs makes them right
in each image, not only on average: a factor that follows the image's own noise level, measured
on the input (:func:`calibrate_per_image`), and an error floor; it is stored with the model. A
deep ensemble (several models trained from different seeds) gives the spread of their
predictions instead.

References
----------
Weigert et al., Nat Methods 15:1090 (2018) (probabilistic CARE, Laplace likelihood).
Lakshminarayanan, Pritzel & Blundell, NeurIPS 2017 (deep ensembles).
Kuleshov, Fenner & Ermon, ICML 2018 (recalibrating regression uncertainty).
Laves, Ihler, Fast, Kahrs & Ortmaier, MIDL 2020 (well-calibrated regression uncertainty).
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

    ``b' = √((factor·g(σ)·b)² + floor²)`` in the image's normalized units, where σ is the
    image's own noise SD (:func:`normalized_noise`), measured on the input, σ₀ =
    ``noise_reference`` the calibration images' typical one, and g(σ) = (σ/σ₀)^``noisier``
    for noisier images, (σ₀/σ)^``cleaner`` for cleaner ones.

    Attributes
    ----------
    factor : multiplies the predicted scales (at σ = σ₀).
    floor : constant error floor, in fractions of the normalized range.
    noisier, cleaner : exponents of the factor's change above and below σ₀ (0: none; a
        negative ``cleaner`` narrows the intervals of cleaner images).
    noise_reference : σ₀.
    """

    factor: float
    floor: float = 0.0
    noisier: float = 0.0
    cleaner: float = 0.0
    noise_reference: float = 1.0

    def image_factor(self, noise: float) -> float:
        """The factor for an image whose normalized noise SD is ``noise``."""
        if self.noisier == 0 and self.cleaner == 0:
            return self.factor
        log_r = math.log(max(noise, 1e-12) / self.noise_reference)
        return self.factor * math.exp(self.noisier * max(log_r, 0) - self.cleaner * min(log_r, 0))

    def scale(self, b: np.ndarray, noise: float) -> np.ndarray:
        """Calibrated Laplace scales of an image whose normalized noise SD is ``noise``."""
        return np.sqrt((self.image_factor(noise) * np.asarray(b)) ** 2 + self.floor**2)


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
    max_exponent: float = 3.0,
) -> Calibration:
    """Calibration whose factor follows each image's noise level (:class:`Calibration`).

    Recalibration (Kuleshov, Fenner & Ermon, ICML 2018) conditioned on one statistic of each
    image, its noise SD σᵢ in normalized units (:func:`normalized_noise`, measured on the input,
    so no truth is needed when the model is used), in the spirit of per-sample scaling (Laves
    et al., MIDL 2020). Why the noise: the network errs more on noisier images, and on images
    unlike its training data, while the scale it predicts hardly changes. In
    benchmarks/resolution.py the two held-out images with 0.7–0.8× the usual normalization
    range (σᵢ 1.2–1.4× the usual) needed factors 1.1–1.3 where the others needed 0.7–0.9
    (∝ σᵢ^0.94 over 20 images), and the cleanest of 32 calibration images (σᵢ 0.7× the usual,
    a very bright field) needed 2.3: error grows on both sides of the usual noise level. Over
    a range of signal levels the network trained on (tests/trust: 12–200 photons), cleaner
    images need narrower intervals instead.

    Each image's own factor is the ``coverage`` quantile of |error|/b over ln(1/(1−p)); its log
    is fitted by least squares as log a + β₊·max(log σᵢ/σ₀, 0) + β₋·max(log σ₀/σᵢ, 0) (a line
    with a kink at σ₀, the geometric mean of σᵢ), β₊ clipped to [0, ``max_exponent``] (a
    noisier image never gets narrower intervals) and β₋ to ±``max_exponent``. This needs
    calibration images whose noise varies (draw enough to sample the tails); with fewer than
    three or one noise level both are 0 and this is :func:`calibrate_scale_and_floor`, which in
    any case sets a and the floor, on the scales times g(σᵢ).

    Parameters
    ----------
    errors : per image, |truth − mean| in normalized units.
    scales : per image, the predicted Laplace scales b in the same units.
    noise : per image, its normalized noise SD σᵢ.

    Returns
    -------
    Calibration with ``factor``, ``floor``, ``noisier``, ``cleaner`` and ``noise_reference``.
    """
    if not (len(errors) == len(scales) == len(noise)) or not errors:
        raise InputError("calibration needs errors, scales and a noise level for each image")
    k = math.log(1 / (1 - coverage))
    sigma = np.maximum(np.asarray(noise, dtype=np.float64), 1e-12)
    own = np.array(
        [
            np.quantile(np.ravel(e) / np.maximum(np.ravel(b), 1e-12), coverage) / k
            for e, b in zip(errors, scales, strict=True)
        ]
    )
    reference = float(np.exp(np.mean(np.log(sigma))))
    log_r = np.log(sigma / reference)
    above, below = np.maximum(log_r, 0), np.maximum(-log_r, 0)
    slopes = [0.0, 0.0]
    if len(sigma) >= 3 and np.ptp(log_r) > 0.05:  # noise levels differ by more than 5 %
        design = np.column_stack([np.ones_like(log_r), above, below])
        fit = np.linalg.lstsq(design, np.log(np.maximum(own, 1e-12)), rcond=None)[0]
        # Noisier never narrows the interval; cleaner may do either (a network is often
        # better on cleaner images, but worse on ones far brighter than its training data).
        slopes = [
            float(np.clip(fit[1], 0, max_exponent)),
            float(np.clip(fit[2], -max_exponent, max_exponent)),
        ]
    gain = np.exp(slopes[0] * above + slopes[1] * below)
    boosted = [np.ravel(b) * g for b, g in zip(scales, gain, strict=True)]
    err = np.concatenate([np.ravel(e) for e in errors])
    factor, floor = calibrate_scale_and_floor(err, np.concatenate(boosted), coverage)
    return Calibration(factor, floor, slopes[0], slopes[1], reference)


def ensemble_predict(
    models: Sequence[Any], image: np.ndarray, axes: str = "YX", **predict_options: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of several models' predictions (a deep ensemble)."""
    if len(models) < 2:
        raise InputError("an ensemble needs at least two models")
    preds = np.stack([m.predict(image, axes, **predict_options) for m in models])
    return preds.mean(axis=0), preds.std(axis=0, ddof=1)
