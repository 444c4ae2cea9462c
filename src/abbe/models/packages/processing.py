"""The pre- and postprocessing steps of bioimage.io spec 0.5, on numpy arrays.

Each step works on a whole tensor whose axes are named (``batch``, ``channel``, ``y``, ``x``),
before tiling (preprocessing) or after it (postprocessing): per-image statistics such as
percentiles are those of the whole image, never of one tile, so tiles share one normalization
and show no seams. Statistics with ``batch`` among their ``axes`` (the spec's "per dataset")
are taken over all the frames given in one call.

Formulas follow the spec's descriptions (and ``bioimageio.core`` 0.11, whose results abbe
matches): ``eps`` is added to the spread, percentiles are linear interpolations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from abbe.errors import InputError
from abbe.models.packages.spec import Op

Named = tuple[np.ndarray, tuple[str, ...]]  # an array and the ids of its axes


def supported() -> tuple[str, ...]:
    """The step ids abbe runs."""
    return tuple(sorted(_OPS))


def check_ops(ops: Sequence[Op], label: str, where: Path) -> None:
    """Refuse, before any work, a step abbe does not run (one line naming package and step)."""
    for op in ops:
        if op.id not in _OPS:
            raise InputError(
                f"{label} step {op.id!r} is not supported; abbe runs {', '.join(supported())}",
                where,
            )


def apply(
    ops: Sequence[Op], x: np.ndarray, axes: tuple[str, ...], refs: dict[str, Named]
) -> np.ndarray:
    """Apply ``ops`` in order to ``x`` (axes named by ``axes``); ``refs`` holds the tensors a
    step may name as ``reference_tensor`` (the raw input, by its id)."""
    for op in ops:
        x = _OPS[op.id](x, axes, op.kwargs, refs)
    return x


# ----------------------------------------------------------------------------- helpers
def _reduce_axes(kwargs: dict[str, Any], axes: tuple[str, ...]) -> tuple[int, ...]:
    """Indices of the axes to reduce over (all when ``axes`` is not given)."""
    names = kwargs.get("axes")
    if names is None:
        return tuple(range(len(axes)))
    return tuple(axes.index(str(n)) for n in names if str(n) in axes)


def _along(value: Any, kwargs: dict[str, Any], axes: tuple[str, ...]) -> Any:
    """A scalar, or a list of values along ``kwargs['axis']`` shaped to broadcast."""
    if not isinstance(value, list | tuple):
        return np.float32(value)
    arr = np.asarray(value, dtype=np.float32)
    if "axis" not in kwargs or arr.size == 1:
        return arr.reshape(-1)[0]
    shape = [1] * len(axes)
    shape[axes.index(str(kwargs["axis"]))] = arr.size
    return arr.reshape(shape)


def _reference(kwargs: dict[str, Any], x: np.ndarray, axes: tuple[str, ...], refs: dict) -> Named:
    name = kwargs.get("reference_tensor")
    return (x, axes) if name is None else refs[str(name)]


# ----------------------------------------------------------------------------- steps
def _scale_range(x: np.ndarray, axes: tuple[str, ...], kw: dict, refs: dict) -> np.ndarray:
    ref, ref_axes = _reference(kw, x, axes, refs)
    over = _reduce_axes(kw, ref_axes)
    data = np.asarray(ref, dtype=np.float64)
    lo = np.percentile(data, float(kw.get("min_percentile", 0.0)), axis=over, keepdims=True)
    hi = np.percentile(data, float(kw.get("max_percentile", 100.0)), axis=over, keepdims=True)
    eps = float(kw.get("eps", 1e-6))
    return ((x - lo) / (hi - lo + eps)).astype(np.float32)


def _zero_mean_unit_variance(
    x: np.ndarray, axes: tuple[str, ...], kw: dict, refs: dict
) -> np.ndarray:
    over = _reduce_axes(kw, axes)
    data = np.asarray(x, dtype=np.float64)
    mean = data.mean(axis=over, keepdims=True)
    std = data.std(axis=over, keepdims=True)
    return ((x - mean) / (std + float(kw.get("eps", 1e-6)))).astype(np.float32)


def _fixed_zero_mean_unit_variance(
    x: np.ndarray, axes: tuple[str, ...], kw: dict, refs: dict
) -> np.ndarray:
    mean, std = _along(kw["mean"], kw, axes), _along(kw["std"], kw, axes)
    return ((x - mean) / (std + np.float32(kw.get("eps", 1e-6)))).astype(np.float32)


def _scale_linear(x: np.ndarray, axes: tuple[str, ...], kw: dict, refs: dict) -> np.ndarray:
    gain = _along(kw.get("gain", 1.0), kw, axes)
    offset = _along(kw.get("offset", 0.0), kw, axes)
    return (x * gain + offset).astype(np.float32)


def _scale_mean_variance(x: np.ndarray, axes: tuple[str, ...], kw: dict, refs: dict) -> np.ndarray:
    ref, ref_axes = _reference(kw, x, axes, refs)
    eps = float(kw.get("eps", 1e-6))
    data = np.asarray(x, dtype=np.float64)
    rdata = np.asarray(ref, dtype=np.float64)
    over, rover = _reduce_axes(kw, axes), _reduce_axes(kw, ref_axes)
    mean, std = data.mean(axis=over, keepdims=True), data.std(axis=over, keepdims=True) + eps
    rmean = rdata.mean(axis=rover, keepdims=True)
    rstd = rdata.std(axis=rover, keepdims=True) + eps
    return ((data - mean) / std * rstd + rmean).astype(np.float32)


def _clip(x: np.ndarray, axes: tuple[str, ...], kw: dict, refs: dict) -> np.ndarray:
    return np.clip(x, kw.get("min"), kw.get("max"))


def _sigmoid(x: np.ndarray, axes: tuple[str, ...], kw: dict, refs: dict) -> np.ndarray:
    # exp of a large negative number overflows harmlessly to inf → 0; silence numpy's note.
    with np.errstate(over="ignore"):
        return (1.0 / (1.0 + np.exp(-x.astype(np.float32)))).astype(np.float32)


def _softmax(x: np.ndarray, axes: tuple[str, ...], kw: dict, refs: dict) -> np.ndarray:
    # Spec 0.5: along ``axis`` (default ``channel``); the maximum is subtracted first so that
    # large scores do not overflow exp.
    along = axes.index(str(kw.get("axis", "channel")))
    z = np.asarray(x, dtype=np.float64)
    z = np.exp(z - z.max(axis=along, keepdims=True))
    return (z / z.sum(axis=along, keepdims=True)).astype(np.float32)


def _binarize(x: np.ndarray, axes: tuple[str, ...], kw: dict, refs: dict) -> np.ndarray:
    return x > _along(kw["threshold"], kw, axes)


def _ensure_dtype(x: np.ndarray, axes: tuple[str, ...], kw: dict, refs: dict) -> np.ndarray:
    return x.astype(np.dtype(str(kw["dtype"])))


_OPS: dict[str, Callable[[np.ndarray, tuple[str, ...], dict, dict], np.ndarray]] = {
    "binarize": _binarize,
    "clip": _clip,
    "ensure_dtype": _ensure_dtype,
    "fixed_zero_mean_unit_variance": _fixed_zero_mean_unit_variance,
    "scale_linear": _scale_linear,
    "scale_mean_variance": _scale_mean_variance,
    "scale_range": _scale_range,
    "sigmoid": _sigmoid,
    "softmax": _softmax,
    "zero_mean_unit_variance": _zero_mean_unit_variance,
}
