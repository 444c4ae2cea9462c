"""The one training engine (PyTorch Lightning) used by every learned method in abbe."""

from abbe.train.config import TrainingConfig
from abbe.train.engine import FitResult, RestorationTask, fit, restoration_loss

__all__ = ["FitResult", "RestorationTask", "TrainingConfig", "fit", "restoration_loss"]
