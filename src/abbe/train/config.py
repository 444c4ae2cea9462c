"""How a network is trained: validated before any work starts, stored with the model."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: Training steps of an SMLM model matched on the fly (``abbe localize --method deepstorm``):
#: about what the former 300 s budget gave where benchmarks/results/smlm.json was made
#: (Deep-STORM 1331 steps, the localizer 2163; J 52.5–54.3 % on the dense stack), now fixed so
#: that the same seed gives the same model on a busy or an idle machine. Their time depends on
#: the machine: a Deep-STORM step took 0.23 s on 2 idle threads here, about 1 s on one thread
#: beside another job (1500 steps in 1720 s).
LOCALIZE_STEPS = 1500
#: Training steps of ``abbe train deepstorm|localizer`` (about its former 600 s budget).
TRAIN_STEPS = 3000


class TrainingConfig(BaseModel):
    """Settings of the one training engine shared by every learned method.

    A short budget is the common case on a CPU: the default schedule warms up, then decays the
    learning rate by a cosine over whichever ends first, ``max_epochs`` or ``max_time_s``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    patch_size: int = Field(64, ge=8, description="Edge of training patches in pixels.")
    batch_size: int = Field(16, ge=1)
    steps_per_epoch: int = Field(50, ge=1, description="Batches between validations.")
    max_epochs: int = Field(100, ge=1)
    max_time_s: float | None = Field(None, gt=0, description="Stop after this much training.")
    learning_rate: float = Field(1e-3, gt=0, description="Peak learning rate (Adam).")
    final_learning_rate: float = Field(1e-5, ge=0, description="Learning rate at the end.")
    warmup_steps: int = Field(20, ge=0)
    schedule: Literal["cosine", "plateau", "constant"] = "cosine"
    loss: Literal["mse", "l1", "laplace"] = "mse"
    weight_decay: float = Field(0.0, ge=0)
    gradient_clip_norm: float | None = Field(
        None,
        gt=0,
        description="Scale each step's gradients down to at most this global L2 norm (None: "
        "off); a rare huge gradient then cannot throw the network out of a good region.",
    )
    early_stopping_patience: int | None = Field(
        None, ge=1, description="Stop when validation loss has not improved for this many epochs."
    )
    validation_fraction: float = Field(0.1, ge=0, lt=1)
    validation_batches: int = Field(4, ge=1)
    foreground_fraction: float = Field(0.5, ge=0, le=1)
    augment: bool = True
    seed: int = 0
    accelerator: str = Field("auto", description="cpu, gpu/cuda, mps or auto (Lightning).")
    devices: int | str = Field(
        "auto", description="Device count (CPU: processes) or 'auto'; more than one uses DDP."
    )
    strategy: Literal["auto", "ddp", "ddp_spawn"] = Field(
        "auto",
        description="auto (one device: plain; several: ddp) or ddp: data-parallel training, one "
        "process per device (gloo on CPU, NCCL on GPUs), started by spawn so that it runs the "
        "same from Python, the CLI or a notebook (ddp_spawn: the same). Each of N processes "
        "draws its own batch_size patches per step: N x batch_size per step in all.",
    )
    precision: str = Field("32-true", description="Lightning precision, e.g. 'bf16-mixed'.")
    threads: int | None = Field(
        None,
        ge=1,
        description="CPU threads (default: all cores; under DDP on CPU, per process: cores / N).",
    )
