"""Out-of-distribution warnings: is this image like the ones the model learned from?

A network is only trustworthy on data like its training data. Each model stores the range of a few
properties of its training inputs that anyone can read off a single image: the signal-to-noise
ratio, how much of the intensity range the noise occupies, and the effective resolution in pixels.
Before predicting, the same properties are measured on the input; values outside the training
range (with a margin) produce a warning in plain words.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from abbe.errors import AbbeWarning

#: Factor by which a property may leave the training range before a warning.
MARGIN = 1.5


class OutOfDistributionWarning(AbbeWarning):
    """The input differs from the model's training data; the result may contain artifacts."""


@dataclass(frozen=True)
class ImageStats:
    """Properties of one image that a model's training data constrains.

    Attributes
    ----------
    snr : (99.8th percentile − median) / noise SD: how far the brightest structures rise above
        the noise.
    noise_fraction : noise SD / (99.8th − 1st percentile).
    resolution_px : effective resolution in pixels (decorrelation analysis); NaN when the image
        is too noisy to tell.
    """

    snr: float
    noise_fraction: float
    resolution_px: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def noise_sd(image: np.ndarray) -> float:
    """Noise standard deviation from the finest diagonal Haar wavelet coefficients (robust MAD).

    The diagonal detail of 2×2 blocks, (a − b − c + d)/2, removes smooth structure and keeps
    pixel noise with its full variance; the median absolute value over the image estimates it
    (Donoho & Johnstone 1994), dominated by the typical (often background) pixels.
    """
    x = np.asarray(image, dtype=np.float64)
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :h, :w]
    d = (x[..., 0::2, 0::2] - x[..., 0::2, 1::2] - x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) / 2
    return float(np.median(np.abs(d)) / 0.6745)


def measure(image: np.ndarray, *, max_size: int = 1024) -> ImageStats:
    """Measure :class:`ImageStats` of a 2D image (a centred crop of at most ``max_size``²)."""
    from abbe.metrics.resolution import decorrelation

    if image.ndim != 2:
        raise ValueError("measure takes a 2D image")
    h, w = image.shape
    y0, x0 = max(0, (h - max_size) // 2), max(0, (w - max_size) // 2)
    crop = image[y0 : y0 + max_size, x0 : x0 + max_size]  # read only the crop of lazy arrays
    x = np.asarray(crop.compute() if hasattr(crop, "compute") else crop, dtype=np.float64)
    lo, med, hi = np.percentile(x, [1, 50, 99.8])
    sd = max(noise_sd(x), 1e-12 * max(abs(hi), 1.0))
    try:
        res = decorrelation(x, pixel_size_nm=1.0).resolution_nm if min(x.shape) >= 64 else math.nan
    except Exception:  # a constant or tiny image has no measurable resolution
        res = math.nan
    if res > min(x.shape) / 8:  # a peak near zero frequency: noise, not a resolution
        res = math.nan
    return ImageStats(
        snr=float((hi - med) / sd),
        noise_fraction=float(sd / max(hi - lo, 1e-12)),
        resolution_px=float(res),
    )


def training_ranges(images: Sequence[np.ndarray], *, max_images: int = 60) -> dict[str, Any]:
    """Range of each property over (up to ``max_images`` of) the training inputs."""
    step = max(1, len(images) // max_images)
    stats = [measure(img) for img in list(images)[::step]]
    out: dict[str, Any] = {"n_images": len(stats)}
    for key in ("snr", "noise_fraction", "resolution_px"):
        values = np.array([getattr(s, key) for s in stats], dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size:
            out[key] = {
                "min": float(values.min()),
                "max": float(values.max()),
                "p5": float(np.percentile(values, 5)),
                "p95": float(np.percentile(values, 95)),
            }
    return out


_WORDS = {
    "snr": ("signal-to-noise ratio", "noisier", "cleaner", "{:.3g}"),
    "noise_fraction": ("noise (fraction of the intensity range)", "cleaner", "noisier", "{:.2%}"),
    "resolution_px": ("blur (resolution in pixels)", "sharper", "blurrier", "{:.2f} px"),
}


def check(stats: ImageStats, ranges: dict[str, Any], *, margin: float = MARGIN) -> list[str]:
    """Sentences describing how ``stats`` fall outside ``ranges`` (empty when they do not)."""
    messages = []
    for key, (name, below, above, fmt) in _WORDS.items():
        value = getattr(stats, key)
        rng = ranges.get(key)
        if rng is None or not math.isfinite(value):
            continue
        lo, hi = rng["min"], rng["max"]
        if value < lo / margin or value > hi * margin:
            direction = below if value < lo else above
            messages.append(
                f"this image is {direction} than the model's training data ({name} "
                f"{fmt.format(value)}; training {fmt.format(lo)} to {fmt.format(hi)}): the result "
                "may contain artifacts; check it with 'abbe verify'"
            )
    return messages


def warn_if_unusual(image: np.ndarray, ranges: dict[str, Any] | None) -> list[str]:
    """Measure a 2D image, compare with ``ranges`` and emit :class:`OutOfDistributionWarning`."""
    if not ranges:
        return []
    messages = check(measure(image), ranges)
    for m in messages:
        warnings.warn(m, OutOfDistributionWarning, stacklevel=3)
    return messages
