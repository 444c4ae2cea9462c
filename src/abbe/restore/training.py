"""Turning users' arrays into training pools, and the fit that CARE and N2V share."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from abbe.data.normalize import normalize, normalize_pair, percentile_range
from abbe.data.patches import N2VMasking, PatchPool
from abbe.errors import InputError
from abbe.io.meta import check_axes


def as_list(data: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    if isinstance(data, np.ndarray):
        return [data]
    return [np.asarray(d) for d in data]


def split_images(image: np.ndarray, axes: str, spatial: str) -> list[np.ndarray]:
    """Cut an image into ``(*spatial)`` samples along every other axis (S, T, C, or Z for 2D)."""
    axes = check_axes(axes, image.ndim)
    if not set(spatial) <= set(axes):
        raise InputError(f"training images need axes {spatial}; got {axes}")
    loop = [a for a in axes if a not in spatial]
    order = [axes.index(a) for a in loop + list(spatial)]
    arr = np.transpose(image, order)
    return list(arr.reshape(-1, *arr.shape[len(loop) :]))


def pairs(
    inputs: np.ndarray | Sequence[np.ndarray],
    targets: np.ndarray | Sequence[np.ndarray] | None,
    axes: str,
    spatial: str,
    scale: int = 1,
) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """Check input/target pairs (targets ``scale`` times larger along Y and X) and split them
    into spatial samples."""
    xs = as_list(inputs)
    ys = None if targets is None else as_list(targets)
    if ys is not None and len(xs) != len(ys):
        raise InputError(f"{len(xs)} inputs but {len(ys)} targets; give one target per input")
    out_x: list[np.ndarray] = []
    out_y: list[np.ndarray] | None = None if ys is None else []
    for i, x in enumerate(xs):
        if ys is not None and ys[i].shape != _scaled_shape(x.shape, axes, scale):
            want = "the same size" if scale == 1 else f"{scale}× the input's size in Y and X"
            raise InputError(
                f"input {i} has shape {x.shape} but its target has shape {ys[i].shape}; "
                f"pairs must show the same field at {want}"
            )
        out_x += split_images(x, axes, spatial)
        if ys is not None and out_y is not None:
            out_y += split_images(ys[i], axes, spatial)
    for i, x in enumerate(out_x):
        if not np.all(np.isfinite(x)):
            raise InputError(f"training image {i} contains NaN or infinite values")
    return out_x, out_y


def _scaled_shape(shape: tuple[int, ...], axes: str, scale: int) -> tuple[int, ...]:
    axes = check_axes(axes, len(shape))
    return tuple(n * scale if a in "YX" else n for a, n in zip(axes, shape, strict=True))


def normalized(xs: list[np.ndarray], ys: list[np.ndarray] | None, norm: Any):
    """Normalize each sample (and its target) and add the channel axis."""
    nx, ny = [], []
    for i, x in enumerate(xs):
        if ys is None:
            lo, hi = percentile_range(x, norm.low, norm.high)
            nx.append(normalize(x, lo, hi)[None])
        else:
            a, b = normalize_pair(x, ys[i], norm)
            nx.append(a[None])
            ny.append(b[None])
    return nx, (ny if ys is not None else None)


def split_validation(
    xs: list[np.ndarray],
    ys: list[np.ndarray] | None,
    fraction: float,
    patch: int,
    scale: int = 1,
) -> tuple[tuple[list, list | None], tuple[list, list | None] | None]:
    """Hold out whole images, or (for one image) its last rows, for validation (a target
    ``scale`` times larger is cut at the same place of the field)."""
    if fraction <= 0:
        return (xs, ys), None
    if len(xs) >= 2:
        n_val = max(1, math.ceil(fraction * len(xs)))
        n_val = min(n_val, len(xs) - 1)
        tr = (xs[:-n_val], ys[:-n_val] if ys is not None else None)
        va = (xs[-n_val:], ys[-n_val:] if ys is not None else None)
        return tr, va
    rows = xs[0].shape[-2]
    cut = rows - max(patch, round(fraction * rows))
    if cut < patch:
        return (xs, ys), None  # too small to split: validate on training patches

    def top(a: np.ndarray, s: int = 1) -> np.ndarray:
        return a[..., : cut * s, :]

    def bottom(a: np.ndarray, s: int = 1) -> np.ndarray:
        return a[..., cut * s :, :]

    tr = ([top(xs[0])], [top(ys[0], scale)] if ys is not None else None)
    va = ([bottom(xs[0])], [bottom(ys[0], scale)] if ys is not None else None)
    return tr, va


def train_model(
    model: Any,
    inputs: Any,
    targets: Any,
    *,
    axes: str,
    validation: tuple[Any, Any] | None,
    work_dir: str | Path | None,
    resume: bool,
    quiet: bool,
    masking: N2VMasking | None,
    training_data: dict[str, Any] | None = None,
) -> Any:
    """Prepare pools from arrays and run the training engine; fills ``model``'s network."""
    import torch

    cfg = model.config
    spatial = cfg.axes
    scale = int(getattr(cfg.network, "scale", 1))
    raw_x, raw_y = pairs(inputs, targets, axes, spatial, scale)
    patch = cfg.training.patch_size
    shape = (patch,) * len(spatial)
    if validation is not None:
        raw_train = (raw_x, raw_y)
        raw_val: tuple | None = pairs(validation[0], validation[1], axes, spatial, scale)
    else:
        raw_train, raw_val = split_validation(
            raw_x, raw_y, cfg.training.validation_fraction, patch, scale
        )
    train_part = normalized(*raw_train, cfg.normalization)
    val_part = normalized(*raw_val, cfg.normalization) if raw_val is not None else None
    pool = PatchPool(train_part[0], train_part[1], shape, scale=scale)
    val_pool = (
        PatchPool(val_part[0], val_part[1], shape, scale=scale) if val_part is not None else None
    )
    torch.manual_seed(cfg.training.seed)
    if not resume or model._network is None:
        model.network = model.build_network()  # right after the seed, before the extras draw
    result = model._train(
        work_dir=work_dir,
        resume=resume,
        quiet=quiet,
        train_pool=pool,
        val_pool=val_pool,
        masking=masking,
        **model.training_extras(),
    )
    model.metrics = {
        **result.summary(),
        "n_training_images": len(train_part[0]),
        "n_validation_images": 0 if val_part is None else len(val_part[0]),
    }
    record = dict(training_data or cfg.training_data)
    record["stats"] = training_stats(raw_train[0], spatial)
    model.config = model.config.updated(training_data=record)
    if cfg.network.probabilistic and raw_val is not None and raw_val[1] is not None:
        calibrate(model, raw_val[0], raw_val[1])
    return result


def training_stats(images: list[np.ndarray], spatial: str) -> dict[str, Any]:
    """Ranges of the training inputs' properties, for out-of-distribution warnings."""
    from abbe.trust.ood import training_ranges

    planes = [img if img.ndim == 2 else img[img.shape[0] // 2] for img in images]
    return training_ranges(planes)


def calibrate(model: Any, inputs: list[np.ndarray], targets: list[np.ndarray]) -> float:
    """Fit the calibration that makes a probabilistic model's 90 % intervals hold 90 % of the
    truth in each held-out image (over flat and structured pixels alike), and store it in the
    model's config: a factor on the predicted scales that follows each image's own noise, and an
    error floor (:func:`abbe.trust.uncertainty.calibrate_per_image`). Errors and scales
    are compared in each image's normalized units, so the calibration carries over to images of
    other brightness; the noise is measured on the input, so it needs no truth when used."""
    from abbe.data.normalize import percentile_range
    from abbe.trust.uncertainty import calibrate_per_image, laplace_half_width, normalized_noise

    errors, scales, noise = [], [], []
    axes = model.config.axes
    norm = model.config.normalization
    for x, y in zip(inputs, targets, strict=True):
        mean, scale = model.predict(x, axes, uncertainty="scale", warn=False)
        lo, hi = percentile_range(x, norm.low, norm.high)
        span = max(float(hi - lo), 1e-12)
        errors.append(np.abs(np.asarray(y, np.float64) - mean).ravel() / span)
        scales.append(scale.ravel() / span)
        plane = x if x.ndim == 2 else x[x.shape[0] // 2]  # as predict measures it
        noise.append(normalized_noise(plane, lo, hi))
    pairs_ = zip(errors, scales, strict=True)
    before = [float(np.mean(e <= laplace_half_width(b))) for e, b in pairs_]
    cal = calibrate_per_image(errors, scales, noise, 0.9)
    after = [
        float(np.mean(e <= laplace_half_width(cal.scale(b, n))))
        for e, b, n in zip(errors, scales, noise, strict=True)
    ]
    update = {
        "uncertainty_scale": cal.factor,
        "uncertainty_floor": cal.floor,
        "uncertainty_noisier": cal.noisier,
        "uncertainty_cleaner": cal.cleaner,
        "uncertainty_noise_reference": cal.noise_reference,
    }
    model.config = model.config.updated(**update)
    sizes = np.array([e.size for e in errors])
    model.metrics["uncertainty"] = {
        "calibration_factor": round(cal.factor, 4),
        "error_floor": round(cal.floor, 6),
        "noisier_exponent": round(cal.noisier, 4),
        "cleaner_exponent": round(cal.cleaner, 4),
        "noise_reference": round(cal.noise_reference, 6),
        "coverage_90_before": round(float(np.average(before, weights=sizes)), 4),
        "coverage_90_per_image": [round(v, 4) for v in after],
        "pixels": int(sizes.sum()),
    }
    return cal.factor
