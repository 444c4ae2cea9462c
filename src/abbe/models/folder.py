"""A model is a folder: ``config.yaml``, ``weights.safetensors``, ``metrics.json``, ``history.csv``.

Weights are read with safetensors only (no pickle); the config is validated before anything is
built from it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ValidationError

from abbe.errors import ConfigError, ModelError
from abbe.io.atomic import atomic_path

CONFIG = "config.yaml"
WEIGHTS = "weights.safetensors"
METRICS = "metrics.json"
HISTORY = "history.csv"


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, with errors naming the file."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError("file not found", path) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {str(exc).splitlines()[0]}", path) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping of settings at the top level", path)
    return data


def merge_config(base: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    """A config dict with a user's YAML laid over it: sections (dicts) merged key by key one
    level deep, any other value replaced.

    Parameters
    ----------
    base : the defaults, e.g. ``Config().model_dump()``.
    user : what the user's file holds (:func:`read_yaml`).

    Returns
    -------
    A new dict; neither argument is changed.
    """
    merged = dict(base)
    for key, value in user.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def validate(model: type[BaseModel], data: dict[str, Any], path: Path | str) -> Any:
    """Build a pydantic config, turning validation errors into one line naming the file."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(exc), path) from None


def validation_message(exc: ValidationError) -> str:
    """The first validation error as one line: the setting's dotted name and what is wrong."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"setting {where}: {first['msg']}{more}"


def write_config(folder: Path, config: BaseModel) -> None:
    with atomic_path(folder / CONFIG, overwrite=True) as tmp:
        tmp.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))


def write_weights(folder: Path, state: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    with atomic_path(folder / WEIGHTS, overwrite=True) as tmp:
        save_file(tensors, str(tmp))


def read_weights(folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    path = Path(folder) / WEIGHTS
    if not path.exists():
        raise ModelError(f"has no {WEIGHTS}; is it a trained abbe model folder?", folder)
    try:
        return load_file(str(path))
    except Exception as exc:
        raise ModelError(f"weights cannot be read ({exc})", path) from None


def load_weights_into(network: Any, folder: Path) -> None:
    """Load the folder's safetensors weights into ``network`` (then in eval mode), with an
    error naming the folder when they do not fit its architecture."""
    try:
        network.load_state_dict(read_weights(folder))
    except RuntimeError as exc:
        raise ModelError(
            f"weights do not match config.yaml ({str(exc).splitlines()[0]})", folder
        ) from None
    network.eval()


def write_metrics(folder: Path, metrics: dict[str, Any]) -> None:
    """Write metrics.json; a NaN or infinite number is written as null (JSON has no NaN, and
    most readers refuse the ``NaN`` that Python would write)."""
    with atomic_path(folder / METRICS, overwrite=True) as tmp:
        text = json.dumps(_finite(metrics), indent=2, default=_number, allow_nan=False)
        tmp.write_text(text + "\n")


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float (in dicts, lists and tuples) replaced by None."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


def _number(value: Any) -> float | None:
    """Other numbers (numpy integers, 0-d tensors) as floats, non-finite ones as None."""
    return _finite(float(value))


def write_history(folder: Path, rows: list[dict[str, Any]]) -> None:
    """One row per epoch (the engine writes the same file while training)."""
    from abbe.io.tables import write_rows

    write_rows(folder / HISTORY, rows)


def read_metrics(folder: Path) -> dict[str, Any]:
    path = Path(folder) / METRICS
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise ModelError("metrics.json is not valid JSON", path) from None


def save_model(
    path: str | Path,
    *,
    config: Any,
    network: Any,
    metrics: dict[str, Any],
    history: list[dict[str, Any]] | None = None,
    overwrite: bool = False,
    own_folder: Path | None = None,
) -> Path:
    """Write a model folder (config, weights, metrics, history), refusing to replace another
    model there unless ``overwrite`` (a model may always rewrite ``own_folder``)."""
    from abbe.errors import OutputExistsError

    folder = Path(path)
    if (folder / WEIGHTS).exists() and not overwrite and folder != own_folder:
        raise OutputExistsError("already holds a model; pass --overwrite to replace it", folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_config(folder, config)
    write_weights(folder, network.state_dict())
    write_metrics(folder, metrics)
    if history:
        write_history(folder, history)
    return folder
