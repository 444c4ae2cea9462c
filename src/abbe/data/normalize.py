"""Percentile normalization: part of every model, applied before and undone after prediction.

Percentiles of images larger than memory are taken on an evenly strided subsample, so that
normalizing a 20000² OME-Zarr reads it once and holds only a few million values.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from abbe.errors import InputError

#: Most values a percentile is computed from; larger images are subsampled on a regular grid.
MAX_PERCENTILE_SAMPLES = 4_000_000


class PercentileNorm(BaseModel):
    """Map the ``low`` and ``high`` percentiles of each input image to 0 and 1.

    ``target="input"`` normalizes training targets with their input's percentiles, so the
    network keeps the physical scale (output in the input's units, offset included).
    ``target="own"`` normalizes each target by its own percentiles (CSBDeep's choice, for real
    pairs whose brightness differs, e.g. longer exposures).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float = Field(1.0, ge=0, lt=100)
    high: float = Field(99.8, gt=0, le=100)
    target: Literal["input", "own"] = "input"

    @model_validator(mode="after")
    def _ordered(self) -> PercentileNorm:
        if self.low >= self.high:
            raise ValueError(f"low percentile {self.low} must be below high {self.high}")
        return self


def _subsample(x: Any, max_samples: int) -> np.ndarray:
    size = int(np.prod(x.shape))
    if size <= max_samples:
        return np.asarray(x)
    step = int(np.ceil((size / max_samples) ** (1 / min(2, x.ndim))))
    index = tuple(
        slice(None, None, step) if i >= x.ndim - 2 else slice(None) for i in range(x.ndim)
    )
    sample = x[index]
    # Dask and Zarr arrays compute lazily; numpy arrays pass through.
    return np.asarray(sample.compute() if hasattr(sample, "compute") else sample)


def percentile_range(
    x: Any, low: float, high: float, *, max_samples: int = MAX_PERCENTILE_SAMPLES
) -> tuple[float, float]:
    """The ``low`` and ``high`` percentiles of ``x`` (numpy, dask or zarr array).

    Raises
    ------
    InputError
        If the image is constant (the range would be zero).
    """
    sample = _subsample(x, max_samples).astype(np.float32, copy=False)
    lo, hi = np.percentile(sample, [low, high])
    if not hi > lo:
        lo, hi = float(sample.min()), float(sample.max())
        if not hi > lo:
            raise InputError("image is constant; there is nothing to restore")
    return float(lo), float(hi)


def normalize(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``(x − lo)/(hi − lo)`` in float32."""
    return ((np.asarray(x, dtype=np.float32) - np.float32(lo)) / np.float32(hi - lo)).astype(
        np.float32, copy=False
    )


def denormalize(y: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Inverse of :func:`normalize`."""
    return (np.asarray(y, dtype=np.float32) * np.float32(hi - lo) + np.float32(lo)).astype(
        np.float32, copy=False
    )


def normalize_pair(
    x: np.ndarray, y: np.ndarray, norm: PercentileNorm
) -> tuple[np.ndarray, np.ndarray]:
    """Normalize an input and its target as ``norm`` says."""
    lo, hi = percentile_range(x, norm.low, norm.high)
    if norm.target == "input":
        return normalize(x, lo, hi), normalize(y, lo, hi)
    tlo, thi = percentile_range(y, norm.low, norm.high)
    return normalize(x, lo, hi), normalize(y, tlo, thi)
