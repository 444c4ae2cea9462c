"""Settings of the learned SMLM models: the simulations matched to the user's data, the
network and the detection threshold (``config.yaml``)."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field

from abbe.models.base import ModelConfig
from abbe.nn import UNetConfig
from abbe.simulate.camera import Camera
from abbe.train import TrainingConfig

N_OUT = 6  # logit p, dx, dy, log σx, log σy, photons / scale


class SimulationMatch(ModelConfig):
    """What a learned SMLM model is trained for: the simulations that match the user's data."""

    pixel_size_nm: float = Field(100.0, gt=0)
    psf_sigma_nm: float = Field(130.0, gt=0)
    photons: tuple[float, float] = (1000.0, 5000.0)
    background: tuple[float, float] = (20.0, 100.0)
    density: tuple[float, float] = Field(
        (0.0, 2.0), description="Range of active emitters per µm² per frame in training."
    )
    camera: dict[str, Any] = Field(default_factory=lambda: {"kind": "ideal"})
    structured: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Fraction of training batches whose emitters sit on filaments (blinking), "
        "for data where molecules crowd along structures; the rest are placed at random.",
    )
    training: TrainingConfig = TrainingConfig(
        patch_size=64, batch_size=16, steps_per_epoch=50, max_epochs=200, learning_rate=1e-3
    )
    name: str = "localizer"

    @property
    def signal_scale(self) -> float:
        """Peak photo-electrons of a mid-range emitter: divides the input."""
        sigma_px = self.psf_sigma_nm / self.pixel_size_nm
        return float(np.mean(self.photons)) / (2 * math.pi * sigma_px**2)

    @property
    def photon_scale(self) -> float:
        return float(np.mean(self.photons))


class LocalizerConfig(SimulationMatch):
    """A DECODE-style localizer: network and detection threshold, validated before training."""

    version: Literal[1] = 1
    method: Literal["localizer"] = "localizer"

    network: UNetConfig = UNetConfig(
        in_channels=1, out_channels=N_OUT, width=24, depth=3, residual=False
    )
    threshold: float = Field(
        0.1,
        gt=0,
        lt=9,
        description="Detection threshold on the 3×3 probability mass (set by "
        "calibration on simulated frames after training).",
    )
    reach: int = Field(
        1,
        ge=0,
        le=2,
        description="Pixels (Chebyshev) around an emitter's own pixel whose offset and photon "
        "heads learn that emitter. 0: only its own pixel, whose offsets then shrink toward "
        "the pixel centre wherever the position is uncertain (pixel-locking).",
    )

    @property
    def offset_range(self) -> float:
        """Largest offset the head can give, in pixels from the pixel centre."""
        return self.reach + 0.75


def camera_for(record: dict[str, Any], shape: tuple[int, int], seed: int) -> Camera | str:
    kind = record.get("kind", "ideal")
    if kind in ("scmos", "emccd", "ccd", "ideal") and len(record) == 1:
        return Camera.from_name(kind, shape, seed=seed)
    from abbe.localize.calibration import CameraFile

    cfg = CameraFile.model_validate(record)

    def scalar(v: Any) -> float:
        return float(np.mean(v)) if isinstance(v, list) else float(v)

    return Camera(
        kind=cfg.kind if cfg.kind in ("ideal", "ccd", "scmos", "emccd") else "ccd",
        qe=cfg.qe,
        gain=cfg.gain,
        offset=scalar(cfg.offset),
        read_noise=scalar(cfg.read_noise),
        em_gain=cfg.em_gain,
        bits=None,
    )
