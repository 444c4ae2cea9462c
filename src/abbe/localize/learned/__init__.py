"""Learned localization for dense SMLM frames: a U-Net that outputs localizations (DECODE-style
per-pixel heads) and Deep-STORM (:mod:`abbe.localize.deepstorm`), trained on simulations matched
to the user's camera, PSF, brightness and density.

By concern: ``config`` (settings), ``targets`` (network input and per-pixel targets),
``training`` (simulated batches, loss), ``model`` (:class:`Localizer`), ``decoding`` (maps to
localizations, threshold calibration); what to simulate is read off a stack by
:mod:`abbe.localize.matching`.
"""

from abbe.localize.learned.config import N_OUT, LocalizerConfig, SimulationMatch, camera_for
from abbe.localize.learned.decoding import calibrate_threshold, detections, positions
from abbe.localize.learned.model import Localizer, load_model
from abbe.localize.learned.targets import normalize_frames, targets
from abbe.localize.learned.training import SimulatedBatches, localization_loss
from abbe.localize.matching import dense_background, estimate_conditions, matched_settings

__all__ = [
    "N_OUT",
    "Localizer",
    "LocalizerConfig",
    "SimulatedBatches",
    "SimulationMatch",
    "calibrate_threshold",
    "camera_for",
    "dense_background",
    "detections",
    "estimate_conditions",
    "load_model",
    "localization_loss",
    "matched_settings",
    "normalize_frames",
    "positions",
    "targets",
]
