"""The segmentation model's settings (``config.yaml``): network, training simulations,
post-processing and scale."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from abbe.models.base import ModelConfig
from abbe.nn import UNetConfig
from abbe.simulate.cells import NucleiImageConfig
from abbe.train import TrainingConfig


class SegmenterConfig(ModelConfig):
    """A segmentation model: network, training simulations, post-processing, scale."""

    version: Literal[1] = 1
    method: Literal["segment"] = "segment"
    name: str = "segmenter"
    network: UNetConfig = UNetConfig(
        in_channels=1, out_channels=2, width=16, depth=3, residual=False
    )
    simulation: NucleiImageConfig = NucleiImageConfig()
    training: TrainingConfig = TrainingConfig(
        patch_size=128, batch_size=8, steps_per_epoch=50, max_epochs=200, learning_rate=2e-3
    )
    real_fraction: float = Field(
        0.5, ge=0, le=1, description="With user pairs: fraction of each batch from them."
    )
    typical_radius_px: float | None = Field(
        None, gt=0, description="estimate_radius of the training images (set by fit)."
    )
    trained_radius_px: tuple[float, float] | None = Field(
        None,
        description="Smallest and largest estimate_radius over those training images (set by "
        "fit): the nucleus sizes the network has seen before rescaling.",
    )
    foreground_threshold: float = Field(0.5, gt=0, lt=1)
    seed_threshold: float = Field(0.5, gt=0, lt=1)
    min_area_fraction: float = Field(
        0.1, ge=0, description="Objects smaller than this × π·typical radius² are dropped."
    )
    min_contrast: float = Field(
        0.35,
        ge=0,
        lt=1,
        description="Objects whose mean intensity rises above the background by less than "
        "this fraction of the typical (area-weighted median) object's rise are dropped "
        "(0: keep all).",
    )
    merge_solidity: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Touching instances whose union has at least this solidity (area over "
        "convex hull area) are joined into one (None: off).",
    )
    contact_weight: float = Field(
        0.0,
        ge=0,
        description="Training: extra loss weight w0 on pixels between and at the contacts of "
        "touching nuclei, w0·exp(−(d1 + d2)²/2σ²) (Ronneberger et al. 2015); 0: off.",
    )
    contact_sigma_px: float = Field(3.0, gt=0, description="σ of that weight, pixels.")
    contact_px: float = Field(
        2.0,
        gt=0,
        description="Networks with 3 outputs: the third marks pixels within this distance of "
        "two nuclei (contacts); seeds and watershed lines avoid them.",
    )
    validation_images: int = Field(
        0,
        ge=0,
        description="Training: after every epoch, score AP@0.5 on this many held-out "
        "simulated images and keep the best epoch's network (0: the engine's choice, by "
        "validation loss).",
    )
    validation_image_px: int = Field(192, ge=64, description="Edge of those images, pixels.")
    percentiles: tuple[float, float] = (1.0, 99.0)
    gamma: tuple[float, float] = Field(
        (0.75, 1.5),
        description="Training: each normalized patch is raised to a power drawn from this "
        "range (log-uniform), so the model does not learn the simulator's intensity profile.",
    )

    @model_validator(mode="after")
    def _two_or_three_maps(self) -> SegmenterConfig:
        if self.network.out_channels not in (2, 3):
            raise ValueError(
                "network.out_channels must be 2 (foreground, distance) or 3 (and contacts), "
                f"not {self.network.out_channels}"
            )
        return self
