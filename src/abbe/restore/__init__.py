"""Restoration: CARE, Noise2Void and super-resolution on one training engine, and classical
baselines."""

from abbe.restore.care import CARE
from abbe.restore.model import RestorationConfig, RestorationModel
from abbe.restore.n2v import N2V, default_n2v_config
from abbe.restore.superres import SuperResConfig, SuperResolution, default_config

__all__ = [
    "CARE",
    "N2V",
    "RestorationConfig",
    "RestorationModel",
    "SuperResConfig",
    "SuperResolution",
    "default_config",
    "default_n2v_config",
]
