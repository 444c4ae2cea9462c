"""One registry of learned methods (method name → model class, imported on first use), the
bundled models, and loading any model folder by the ``method`` in its ``config.yaml``.

Adding a method is one line in :data:`METHODS`; ``abbe.models.load``, ``abbe models`` and
export then know it, and the contract test asks for the method's entry in its ``CASES``.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from abbe.errors import ConfigError, ModelError
from abbe.models import folder as mf

BUNDLED_DIR = Path(__file__).parent / "weights"

#: method name → "module:Class". Classes are imported only when a model of that method is used.
METHODS: dict[str, str] = {
    "care": "abbe.restore.care:CARE",
    "n2v": "abbe.restore.n2v:N2V",
    "superres": "abbe.restore.superres:SuperResolution",
    "segment": "abbe.segment.model:Segmenter",
    "classify": "abbe.classify.model:Classifier",
    "localizer": "abbe.localize.learned:Localizer",
    "deepstorm": "abbe.localize.deepstorm:DeepStorm",
    "spectral": "abbe.localize.spectral_model:SpectralClassifier",
}

LEGACY_CONFIG = "config.json"  # SMLM models written before the model contract


def model_class(method: str) -> Any:
    """The model class registered for ``method``."""
    if method not in METHODS:
        known = ", ".join(sorted(METHODS))
        raise ModelError(f"unknown method {method!r}; abbe knows {known}")
    module, name = METHODS[method].split(":")
    return getattr(importlib.import_module(module), name)


def _bundled() -> dict[str, Path]:
    if not BUNDLED_DIR.is_dir():
        return {}
    return {p.name: p for p in sorted(BUNDLED_DIR.iterdir()) if (p / mf.CONFIG).exists()}


def resolve(name_or_path: str | Path) -> Path:
    """The folder of a bundled model name, or a model folder path."""
    bundled = _bundled()
    if str(name_or_path) in bundled:
        return bundled[str(name_or_path)]
    path = Path(name_or_path)
    if path.is_dir():
        return path
    names = ", ".join(bundled) or "none"
    raise ModelError(
        f"is neither a bundled model ({names}) nor a model folder nor a bioimage.io package (.zip)",
        name_or_path,
    )


def is_model_folder(folder: Path) -> bool:
    """Whether ``folder`` holds an abbe model: settings that name a registered method."""
    if not ((folder / mf.CONFIG).is_file() or (folder / LEGACY_CONFIG).is_file()):
        return False
    try:
        data, _ = read_settings(folder)
    except (ConfigError, ModelError):
        return False
    return data.get("method") in METHODS


def read_settings(folder: Path) -> tuple[dict[str, Any], Path]:
    """A model folder's settings and the file they came from.

    ``config.yaml`` with ``method``; folders of learned SMLM models written before the model
    contract (``config.json`` with ``kind``) read as the same settings, ``kind`` becoming
    ``method`` and the settings added since given their values of that time.
    """
    folder = Path(folder)
    path = folder / mf.CONFIG
    if path.is_file():
        return mf.read_yaml(path), path
    legacy = folder / LEGACY_CONFIG
    if legacy.is_file():
        try:
            data = json.loads(legacy.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"not valid JSON ({exc})", legacy) from None
        if not isinstance(data, dict) or "kind" not in data:
            raise ModelError("config.json names no model kind; not an abbe model", folder)
        data["method"] = data.pop("kind")
        if data["method"] == "localizer":
            data.setdefault("reach", 0)  # saved before neighbours learned offsets
        return data, legacy
    if folder.is_dir() and (folder / "checkpoints").is_dir():
        raise ModelError(
            "holds training checkpoints but no finished model (training was interrupted); "
            "resume it with the same 'abbe train … -o' command and --resume",
            folder,
        )
    raise ModelError("is not an abbe model folder (no config.yaml)", folder)


def load(name_or_path: str | Path, *, weights: str | None = None) -> Any:
    """Load a bundled model by name, a trained model from its folder, whatever its method, or a
    bioimage.io model package (``.zip`` or a folder with ``rdf.yaml``; see
    :mod:`abbe.models.packages`).

    Examples
    --------
    >>> model = abbe.models.load("denoise-widefield")  # doctest: +SKIP
    >>> model.predict(image, axes="YX")  # doctest: +SKIP
    """
    from abbe.models.packages import is_package, load_package

    if str(name_or_path) not in _bundled() and is_package(name_or_path):
        # A bioimage.io package (zip, or folder with rdf.yaml); ``weights`` picks its format.
        return load_package(name_or_path, weights=weights)
    if weights is not None:
        raise ModelError(
            f"weights={weights!r} chooses the weights of a bioimage.io package; an abbe model "
            "has one set of weights",
            name_or_path,
        )
    folder = resolve(name_or_path)
    data, path = read_settings(folder)
    method = data.get("method")
    if method not in METHODS:
        raise ModelError(f"unknown or missing method {method!r} in {path.name}", folder)
    return model_class(method).load(folder)


def describe(name: str, folder: Path) -> dict[str, Any]:
    """Name, method, axes, description, training data, scores, size and command-line use of a
    model folder."""
    data, _ = read_settings(folder)
    method = data.get("method")
    weights = folder / mf.WEIGHTS
    use = name if folder.parent == BUNDLED_DIR else str(folder)
    return {
        "name": name,
        "method": method,
        "axes": data.get("axes") if data.get("method") != "classify" else None,
        "description": data.get("description", ""),
        "training_data": data.get("training_data", {}),
        "metrics": mf.read_metrics(folder),
        "size_kb": round(weights.stat().st_size / 1024, 1) if weights.exists() else 0.0,
        "path": str(folder),
        "use": use,
        "usage": _usage(method, use),
    }


def available(folder: str | Path | None = None) -> list[dict[str, Any]]:
    """The bundled models (or the models in ``folder``: itself, or the model folders inside
    it), each described by :func:`describe`."""
    if folder is None:
        return [describe(name, path) for name, path in _bundled().items()]
    root = Path(folder)
    if not root.is_dir():
        raise ModelError("is not a folder", root)
    if (root / mf.CONFIG).is_file() or (root / LEGACY_CONFIG).is_file():
        load_settings = read_settings(root)[0]  # a model folder itself: its errors are the answer
        if load_settings.get("method") not in METHODS:
            raise ModelError(f"names no abbe method ({load_settings.get('method')!r})", root)
        return [describe(root.name, root)]
    return [
        describe(p.name, p) for p in sorted(root.iterdir()) if p.is_dir() and is_model_folder(p)
    ]


def _usage(method: str | None, use: str) -> str:
    """How a model is used: its class's command line, else through Python."""
    cls = model_class(method) if method in METHODS else None
    if cls is not None and cls.usage:
        return f"{cls.usage} {use}"
    return f"abbe.models.load({use!r})"
