"""CARE: supervised content-aware restoration from pairs of low- and high-quality images.

Weigert et al., "Content-aware image restoration: pushing the limits of fluorescence
microscopy", Nat Methods 15:1090 (2018).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from abbe.models.base import UNET_2015, Citation
from abbe.restore.model import RestorationConfig, RestorationModel
from abbe.restore.training import train_model

CARE_2018 = Citation(
    "Weigert et al. Content-aware image restoration: pushing the limits of fluorescence "
    "microscopy. Nat Methods 15:1090 (2018).",
    doi="10.1038/s41592-018-0216-7",
)


class CARE(RestorationModel):
    """Supervised restoration U-Net (CARE).

    Examples
    --------
    >>> care = CARE(RestorationConfig(training=TrainingConfig(max_time_s=120)))  # doctest: +SKIP
    >>> care.fit(noisy_stack, clean_stack, axes="SYX")                           # doctest: +SKIP
    >>> restored = care.predict(image, axes="YX")                                # doctest: +SKIP
    """

    method = "care"
    citations = (CARE_2018, UNET_2015)

    def __init__(self, config: RestorationConfig | None = None) -> None:
        super().__init__(config or RestorationConfig(method="care"))

    def fit(
        self,
        inputs: np.ndarray | list[np.ndarray],
        targets: np.ndarray | list[np.ndarray],
        *,
        axes: str = "YX",
        validation: tuple[Any, Any] | None = None,
        work_dir: str | Path | None = None,
        resume: bool = False,
        quiet: bool = True,
        training_data: dict[str, Any] | None = None,
    ) -> CARE:
        """Train on input/target pairs.

        Parameters
        ----------
        inputs, targets : arrays (or lists of arrays) of the same shapes, with ``axes`` (for a
            super-resolution model, targets ``scale``× larger in Y and X).
        axes : e.g. ``YX``, ``SYX`` (a stack of samples), ``ZYX``.
        validation : (inputs, targets) held out; default a fraction of the training images.
        work_dir : model folder for checkpoints and history (a temporary folder when None).
        resume : continue from ``work_dir``'s last checkpoint.
        training_data : provenance recorded in the model's config.
        """
        train_model(
            self,
            inputs,
            targets,
            axes=axes,
            validation=validation,
            work_dir=work_dir,
            resume=resume,
            quiet=quiet,
            masking=None,
            training_data=training_data,
        )
        return self
