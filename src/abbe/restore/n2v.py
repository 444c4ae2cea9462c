"""Noise2Void: self-supervised denoising from noisy images alone.

Krull, Buchholz & Jug, "Noise2Void - learning denoising from single noisy images", CVPR 2019;
Höck et al., "N2V2 - fixing Noise2Void checkerboard artifacts with modified sampling strategies
and a tweaked network architecture", ECCV Workshops 2022.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from abbe.data.patches import N2VMasking
from abbe.models.base import UNET_2015, Citation
from abbe.nn.unet import UNetConfig
from abbe.restore.model import RestorationConfig, RestorationModel
from abbe.restore.training import train_model
from abbe.train.config import TrainingConfig

N2V_2019 = Citation(
    "Krull, Buchholz & Jug. Noise2Void - learning denoising from single noisy images. CVPR 2019.",
    doi="10.1109/CVPR.2019.00223",
)


def default_n2v_config() -> RestorationConfig:
    """N2V2 defaults: blur-pool, no top skip connection, median replacement of 5 % of pixels.

    Width 16 and depth 3 (a 51-pixel receptive radius) matched width 32, depth 2 in a fixed CPU
    budget while taking 2.5× the steps (measured with ``benchmarks/denoise.py``'s protocol).
    """
    return RestorationConfig(
        method="n2v",
        network=UNetConfig(width=16, depth=3, n2v2=True, residual=False),
        # The loss sees only the masked 5 %: a larger batch keeps its gradient steady.
        training=TrainingConfig(batch_size=16),
        masking=N2VMasking(strategy="median"),
    )


class N2V(RestorationModel):
    """Self-supervised denoising U-Net (Noise2Void / N2V2).

    The network never sees the pixels it is scored on: a spread of pixels is replaced by
    neighbours and the loss is taken only there, so with pixel-independent noise the best it can
    do is predict the clean signal.
    """

    method = "n2v"
    citations = (N2V_2019, UNET_2015)

    def __init__(self, config: RestorationConfig | None = None) -> None:
        config = config or default_n2v_config()
        if config.masking is None:
            config = config.updated(masking=N2VMasking())
        super().__init__(config)

    def fit(
        self,
        inputs: np.ndarray | list[np.ndarray],
        *,
        axes: str = "YX",
        validation: Any | None = None,
        work_dir: str | Path | None = None,
        resume: bool = False,
        quiet: bool = True,
        training_data: dict[str, Any] | None = None,
    ) -> N2V:
        """Train on noisy images (no targets); ``validation`` is a held-out noisy image set."""
        val = None if validation is None else (validation, None)
        train_model(
            self,
            inputs,
            None,
            axes=axes,
            validation=val,
            work_dir=work_dir,
            resume=resume,
            quiet=quiet,
            masking=self.config.masking,
            training_data=training_data,
        )
        return self
