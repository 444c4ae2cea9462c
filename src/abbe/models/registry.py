"""Bundled models (small safetensors files shipped in the package) and loading by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from abbe.errors import ModelError
from abbe.models import folder as mf

BUNDLED_DIR = Path(__file__).parent / "weights"


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
    raise ModelError(f"is neither a bundled model ({names}) nor a model folder", name_or_path)


def load(name_or_path: str | Path) -> Any:
    """Load a bundled model by name or a trained model from its folder."""
    folder = resolve(name_or_path)
    config = mf.read_yaml(folder / mf.CONFIG) if (folder / mf.CONFIG).exists() else {}
    method = config.get("method")
    if method in ("care", "n2v", "superres"):
        from abbe.restore.model import RestorationModel

        return RestorationModel.load(folder)
    if method == "classify":
        from abbe.classify import Classifier

        return Classifier.load(folder)
    if method == "segment":
        from abbe.segment import Segmenter

        return Segmenter.load(folder)
    raise ModelError(f"unknown or missing method {method!r} in config.yaml", folder)


def available() -> list[dict[str, Any]]:
    """Name, method, description, training data and validation scores of each bundled model."""
    rows = []
    for name, folder in _bundled().items():
        config = mf.read_yaml(folder / mf.CONFIG)
        rows.append(
            {
                "name": name,
                "method": config.get("method"),
                "axes": config.get("axes"),
                "description": config.get("description", ""),
                "training_data": config.get("training_data", {}),
                "metrics": mf.read_metrics(folder),
                "size_kb": round((folder / mf.WEIGHTS).stat().st_size / 1024, 1),
            }
        )
    return rows
