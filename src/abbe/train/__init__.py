"""The one training engine (PyTorch Lightning) used by every learned method in abbe.

The engine is imported on first use: the training config alone (which every model config
holds) must not pull in Lightning and torch, or every ``abbe`` command would start seconds late.
"""

from typing import Any

from abbe.train.config import TrainingConfig

__all__ = ["FitResult", "RestorationTask", "TrainingConfig", "fit", "restoration_loss"]

_ENGINE = {"FitResult", "RestorationTask", "fit", "restoration_loss"}


def __getattr__(name: str) -> Any:
    if name in _ENGINE:
        from abbe.train import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'abbe.train' has no attribute {name!r}")
