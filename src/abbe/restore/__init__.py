"""Restoration: CARE and Noise2Void on one training engine, and classical baselines."""

from abbe.restore.care import CARE
from abbe.restore.model import RestorationConfig, RestorationModel
from abbe.restore.n2v import N2V, default_n2v_config

__all__ = ["CARE", "N2V", "RestorationConfig", "RestorationModel", "default_n2v_config"]
