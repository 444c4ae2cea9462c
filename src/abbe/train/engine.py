"""The one training engine (PyTorch Lightning) under every learned method in abbe.

It gives each method: checkpoints after every epoch (safetensors, never pickle), ``resume`` after an
interruption that continues exactly where the last checkpoint left off, a time budget, a warm-up +
cosine (or plateau) learning-rate schedule, early stopping, a progress bar, ``history.csv``, seeded
batches, and data-parallel training (Lightning's DDP: ``training.strategy: ddp`` with
``training.devices: N``) on N GPUs or N CPU processes (gloo).

Under DDP every process takes the same number of steps per epoch and draws its own batches:
process ``r`` of ``N`` trains on batch ``i·N + r`` where one process trains on batch ``i`` (batches
depend only on (seed, epoch, index)), so a step sees ``N × batch_size`` patches, the same seed
gives the same model for the same N, and a resumed run continues with exactly the batches it
would have drawn. Validation batches are the same on every process. Rank 0 writes checkpoints
and ``history.csv``. On a CPU each process gets ``cores / N`` threads (``training.threads``, when
set, per process).
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint

from abbe.compute import torch_threads
from abbe.data.patches import N2VMasking, PatchPool, augment_dihedral, batch_rng, n2v_mask
from abbe.errors import InputError, Interrupted
from abbe.io.tables import write_rows
from abbe.train.checkpoint import SafeCheckpointIO
from abbe.train.config import TrainingConfig

CHECKPOINT_DIR = "checkpoints"
LAST = "last.ckpt"
BEST = "best.ckpt"


# ----------------------------------------------------------------------------------------- data
class PatchBatches(torch.utils.data.Dataset):
    """Batch ``i`` of epoch ``e``: patches drawn with a generator seeded by ``(seed, e, i)``.

    With ``masking`` (Noise2Void) the target is the unmasked patch and the loss weight is the mask;
    otherwise the weight is empty (all pixels count).
    """

    def __init__(
        self,
        pool: PatchPool,
        cfg: TrainingConfig,
        *,
        n_batches: int,
        masking: N2VMasking | None = None,
        validation: bool = False,
    ) -> None:
        self.pool, self.cfg, self.n_batches, self.masking = pool, cfg, n_batches, masking
        self.stream = 1 if validation else 0  # validation: the same batches at every epoch
        self.epoch = 0

    def __len__(self) -> int:
        return self.n_batches

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = batch_rng(self.cfg.seed, self.epoch, i, self.stream)
        fg = self.cfg.foreground_fraction
        x, y = self.pool.sample(self.cfg.batch_size, rng, foreground_fraction=fg)
        if self.cfg.augment:
            x, y = augment_dihedral([x, y], rng)
        if self.masking is not None:
            y = x
            x, weight = n2v_mask(x, self.masking, rng)
        else:
            weight = np.zeros(0, dtype=np.float32)
        return (
            torch.from_numpy(np.ascontiguousarray(x)),
            torch.from_numpy(np.ascontiguousarray(y)),
            torch.from_numpy(weight),
        )


# ----------------------------------------------------------------------------------------- loss
def restoration_loss(
    kind: str, out: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """Pixel loss, averaged over ``weight`` (all pixels when it is empty).

    ``laplace`` expects ``out`` to hold the mean then the log scale (probabilistic U-Net) and is
    the negative log-likelihood ``|μ − y|/b + log b`` (Weigert et al. 2018).
    """
    c = target.shape[1]
    mean = out[:, :c]
    if kind == "mse":
        per_pixel = (mean - target) ** 2
    elif kind == "l1":
        per_pixel = (mean - target).abs()
    elif kind == "laplace":
        log_b = out[:, c : 2 * c].clamp(-10, 10)
        per_pixel = (mean - target).abs() * torch.exp(-log_b) + log_b
    else:
        raise InputError(f"unknown loss {kind!r}")
    if weight.numel() == 0:
        return per_pixel.mean()
    return (per_pixel * weight).sum() / weight.sum().clamp_min(1.0)


class RestorationTask(L.LightningModule):
    """A network, its loss and its optimizer, as Lightning trains them."""

    def __init__(
        self,
        network: torch.nn.Module,
        cfg: TrainingConfig,
        loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.network, self.cfg, self.loss_fn = network, cfg, loss_fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def _step(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x, y, w = batch
        if self.loss_fn is not None:
            return self.loss_fn(self.network(x), y, w)
        return restoration_loss(self.cfg.loss, self.network(x), y, w)

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        loss = self._step(batch)
        self.log(
            "train_loss",
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=batch[0].shape[0],
            sync_dist=True,  # DDP: the epoch's mean over all processes
        )
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self.log(
            "val_loss",
            self._step(batch),
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=batch[0].shape[0],
            sync_dist=True,  # DDP: the mean over processes (they validate on the same batches)
        )

    def configure_optimizers(self) -> Any:
        opt = torch.optim.Adam(
            self.network.parameters(), lr=self.cfg.learning_rate, weight_decay=self.cfg.weight_decay
        )
        if self.cfg.schedule != "plateau":
            return opt
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, factor=0.5, patience=10, min_lr=self.cfg.final_learning_rate
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": plateau, "monitor": "val_loss"}}


class GANTask(RestorationTask):
    """Adversarial training (pix2pix / DFGAN): the generator minimizes its content loss plus
    ``adversarial_weight`` × the least-squares GAN loss of a conditional discriminator, which
    learns to tell targets from outputs. Validation scores the content loss alone, so runs with
    and without the adversary compare; the generator is usable on its own.

    Mao et al., "Least squares generative adversarial networks", ICCV 2017.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        cfg: TrainingConfig,
        loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
        discriminator: torch.nn.Module,
        adversarial_weight: float,
    ) -> None:
        super().__init__(network, cfg, loss_fn)
        self.discriminator = discriminator
        self.adversarial_weight = adversarial_weight
        self.automatic_optimization = False

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        x, y, w = batch
        opt_g, opt_d = self.optimizers()
        fake = self.network(x)
        real_score = self.discriminator(x, y)
        fake_score = self.discriminator(x, fake.detach())
        d_loss = 0.5 * ((real_score - 1) ** 2).mean() + 0.5 * (fake_score**2).mean()
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        assert self.loss_fn is not None
        content = self.loss_fn(fake, y, w)
        adversarial = ((self.discriminator(x, fake) - 1) ** 2).mean()
        opt_g.zero_grad()
        self.manual_backward(content + self.adversarial_weight * adversarial)
        opt_g.step()
        size = x.shape[0]
        self.log(
            "train_loss", content, on_step=False, on_epoch=True, prog_bar=True, batch_size=size
        )
        self.log("d_loss", d_loss, on_step=False, on_epoch=True, batch_size=size)
        return content.detach()

    def configure_optimizers(self) -> Any:
        # β1 = 0.5 keeps the two players' momentum from overshooting each other (pix2pix).
        lr, betas = self.cfg.learning_rate, (0.5, 0.999)
        return [
            torch.optim.Adam(self.network.parameters(), lr=lr, betas=betas),
            torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=betas),
        ]


# ------------------------------------------------------------------------------------ callbacks
class Budget(Callback):
    """Counts training time, stops at ``max_time_s`` of this run, and sets the learning rate.

    The cosine runs over the fraction of the budget used: ``max(step/total_steps,
    elapsed/max_time)``, so a time-limited run still ends at a low learning rate. A resumed run
    spends its own ``max_time_s`` (the time already spent does not count against it) and
    continues the schedule where the interrupted run left it, so the learning rate never jumps.
    """

    def __init__(self, cfg: TrainingConfig, total_steps: int) -> None:
        self.cfg, self.total_steps = cfg, total_steps
        self.elapsed = 0.0  # all runs together: history and metrics report it
        self.resumed_at = 0.0  # ``elapsed`` when this run started
        self.resumed_progress = 0.0  # the schedule's time progress when this run started
        self._t0: float | None = None
        self.stopped_by = "epochs"

    @property
    def state_key(self) -> str:
        return "abbe.Budget"

    @property
    def run_elapsed(self) -> float:
        """Training time of this run alone (since the start or the resume)."""
        return self.elapsed - self.resumed_at

    def state_dict(self) -> dict[str, Any]:
        return {"elapsed": self.elapsed, "time_progress": self._time_progress()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.elapsed = self.resumed_at = float(state["elapsed"])
        saved = state.get("time_progress")
        if saved is None:  # checkpoints written before the progress was stored
            limit = self.cfg.max_time_s
            saved = min(self.elapsed / limit, 1.0) if limit else 0.0
        self.resumed_progress = float(saved)

    def _time_progress(self) -> float:
        if not self.cfg.max_time_s:
            return 0.0
        run = min(self.run_elapsed / self.cfg.max_time_s, 1.0)
        return self.resumed_progress + (1.0 - self.resumed_progress) * run

    def progress(self, step: int) -> float:
        p = max(step / max(self.total_steps, 1), self._time_progress())
        return min(p, 1.0)

    def learning_rate(self, step: int) -> float:
        cfg = self.cfg
        if cfg.schedule != "cosine":
            return cfg.learning_rate
        if step < cfg.warmup_steps:
            return cfg.learning_rate * (step + 1) / cfg.warmup_steps
        p = self.progress(step)
        return cfg.final_learning_rate + 0.5 * (cfg.learning_rate - cfg.final_learning_rate) * (
            1 + math.cos(math.pi * p)
        )

    def on_train_batch_start(
        self, trainer: L.Trainer, module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._t0 = time.perf_counter()
        if self.cfg.schedule == "cosine":
            # With manual optimization every optimizer's step counts as a global step.
            lr = self.learning_rate(trainer.global_step // max(1, len(trainer.optimizers)))
            for optimizer in trainer.optimizers:
                for group in optimizer.param_groups:
                    group["lr"] = lr

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self._t0 is not None:
            self.elapsed += time.perf_counter() - self._t0
        if self.cfg.max_time_s and getattr(trainer, "world_size", 1) > 1:
            # DDP: every process follows rank 0's clock, so all set the same learning rate and
            # stop at the same step (one stopping alone would leave the others waiting forever).
            self.elapsed = float(trainer.strategy.broadcast(self.elapsed, src=0))
        if self.cfg.max_time_s and self.run_elapsed >= self.cfg.max_time_s:
            self.stopped_by = "time"
            trainer.should_stop = True


class History(Callback):
    """One row per epoch in ``history.csv``; the rows live in the checkpoint, so a resumed run
    continues the same history."""

    columns = ("epoch", "step", "elapsed_s", "lr", "train_loss", "val_loss")

    def __init__(self, path: Path, budget: Budget) -> None:
        self.path, self.budget = path, budget
        self.rows: list[dict[str, float]] = []
        self._losses: list[float] = []

    @property
    def state_key(self) -> str:
        return "abbe.History"

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = list(state["rows"])

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._losses = []

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self._losses.append(_scalar(outputs["loss"] if isinstance(outputs, dict) else outputs))

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        row = {
            "epoch": trainer.current_epoch,
            "step": trainer.global_step,
            "elapsed_s": round(self.budget.elapsed, 3),
            "lr": trainer.optimizers[0].param_groups[0]["lr"],
            "train_loss": float(np.mean(self._losses)) if self._losses else float("nan"),
            "val_loss": _scalar(trainer.callback_metrics.get("val_loss")),
        }
        self.rows = [r for r in self.rows if r["epoch"] != row["epoch"]] + [row]
        self.write()

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._writer = trainer.is_global_zero  # under DDP, rank 0 alone writes the file

    def write(self) -> None:
        if getattr(self, "_writer", True):
            write_rows(self.path, self.rows, columns=self.columns)


class _EpochBatches(torch.utils.data.Dataset):
    """The training batches of one epoch, able to start part-way through it.

    Batches depend only on ``(seed, epoch, index)``; after an interrupted epoch the resumed run
    asks for the batches it has not seen yet (Lightning counts the ones already done), so an
    interrupted and resumed run trains on exactly the batches of an uninterrupted one.
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset
        self.skip = 0
        # Data parallel: this process's place among all of them (see the module docstring).
        self.rank, self.world = 0, 1

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> Any:
        return self.dataset[(i + self.skip) * self.world + self.rank]

    @property
    def epoch(self) -> int:
        return self.dataset.epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        self.dataset.epoch = value


class _EpochSeed(Callback):
    """Tells the batches which epoch it is, and where a resumed epoch starts."""

    def __init__(self, batches: _EpochBatches) -> None:
        self.batches = batches
        self._trainer: L.Trainer | None = None
        self._mid_epoch = False

    @property
    def state_key(self) -> str:
        return "abbe.EpochSeed"

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer
        self.batches.rank, self.batches.world = trainer.global_rank, trainer.world_size

    def state_dict(self) -> dict[str, Any]:
        # Lightning's own count of finished batches: a resumed epoch asks for exactly the ones
        # after it, wherever Ctrl-C landed.
        done = 0
        if self._trainer is not None:
            done = int(self._trainer.fit_loop.epoch_loop.batch_progress.current.completed)
        return {"epoch": self.batches.epoch, "done": done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        done = int(state.get("done", 0))
        if 0 < done < len(self.batches):  # a checkpoint written part-way through an epoch
            self.batches.epoch, self.batches.skip = int(state["epoch"]), done
            self._mid_epoch = True

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # Lightning may or may not call this for the epoch it resumes part-way: keep that
        # epoch's place, start every other epoch from its first batch.
        resumed = self._mid_epoch and trainer.current_epoch == self.batches.epoch
        self._mid_epoch = False
        if not resumed:
            self.batches.epoch, self.batches.skip = trainer.current_epoch, 0


class _ProcessThreads(Callback):
    """Under DDP on a CPU, each process's torch threads: ``training.threads`` or cores / N
    (N processes each using every core would fight over them)."""

    def __init__(self, threads: int | None) -> None:
        self.threads = threads

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        if trainer.world_size <= 1:
            return
        # A spawned process starts with Lightning's chatter and warnings back on.
        _quiet_lightning().__enter__()
        if not isinstance(trainer.accelerator, _gpu_accelerators()):
            torch.set_num_threads(self.threads or max(1, _cores() // trainer.world_size))


def _gpu_accelerators() -> tuple[type, ...]:
    from lightning.pytorch.accelerators import CUDAAccelerator

    return (CUDAAccelerator,)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def strategy_for(cfg: TrainingConfig) -> Any:
    """Lightning's strategy for ``cfg``: plain for one device; DDP started by spawn (gloo on
    CPU) for ``strategy: ddp`` or for several devices.

    Spawn rather than Lightning's default for ``ddp`` (which re-runs the command line in each
    process): the same code then works from Python, pytest, a notebook or the CLI.
    """
    n = cfg.devices if isinstance(cfg.devices, int) else None
    if (cfg.strategy == "auto" and n is None) or (n is not None and n <= 1):
        return "auto"  # one process: DDP would only add the cost of starting it
    from lightning.pytorch.strategies import DDPStrategy

    gpu = cfg.accelerator.lower() in ("gpu", "cuda") or (
        cfg.accelerator.lower() == "auto" and torch.cuda.is_available()
    )
    return DDPStrategy(start_method="spawn", process_group_backend=None if gpu else "gloo")


class _SaveOnInterrupt(Callback):
    """Ctrl-C: write the state reached as the last checkpoint, so ``--resume`` loses nothing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.saved = False

    def on_exception(
        self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, KeyboardInterrupt) or trainer.global_step == 0:
            return
        try:
            trainer.save_checkpoint(self.path)
            self.saved = True
        except Exception:  # an earlier checkpoint, if any, is still there
            self.saved = False


def _scalar(value: Any) -> float:
    if value is None:
        return float("nan")
    return float(value.item() if hasattr(value, "item") else value)


# -------------------------------------------------------------------------------------------- fit
@dataclass
class FitResult:
    """What training produced."""

    network: torch.nn.Module
    history: list[dict[str, float]] = field(default_factory=list)
    val_loss: float = float("nan")
    steps: int = 0
    elapsed_s: float = 0.0
    stopped_by: str = "epochs"
    resumed: bool = False

    def summary(self) -> dict[str, Any]:
        """How training went, for a model's ``metrics.json``."""
        return {
            "val_loss": self.val_loss,
            "steps": self.steps,
            "training_seconds": round(self.elapsed_s, 2),
            "stopped_by": self.stopped_by,
        }


def fit(
    network: torch.nn.Module,
    train_pool: PatchPool | None,
    val_pool: PatchPool | None,
    cfg: TrainingConfig,
    *,
    work_dir: Path,
    masking: N2VMasking | None = None,
    resume: bool = False,
    quiet: bool = False,
    extra_callbacks: list[Callback] | None = None,
    on_export: Callable[[torch.nn.Module], None] | None = None,
    datasets: tuple[Any, Any] | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    discriminator: torch.nn.Module | None = None,
    adversarial_weight: float = 0.0,
) -> FitResult:
    """Train ``network`` on patches from ``train_pool`` and return it with its history.

    Parameters
    ----------
    network : the model to train (modified in place).
    train_pool, val_pool : normalized training and validation images (validation may be None).
    cfg : training settings.
    work_dir : model folder; ``checkpoints/`` and ``history.csv`` are written there.
    masking : Noise2Void masking (self-supervised) or None (supervised pairs).
    resume : continue from ``work_dir/checkpoints/last.ckpt``.
    quiet : no progress bar.
    datasets : (train, validation) datasets of ready batches ``(x, y, weight)`` that replace the
        patch pools (e.g. simulations drawn on the fly); each needs an ``epoch`` attribute, set
        at the start of every epoch so that batches depend only on (seed, epoch, index).
    loss_fn : ``loss(output, y, weight)`` instead of the restoration loss ``cfg.loss``.
    discriminator : train adversarially against it (:class:`GANTask`; needs ``loss_fn``).
    adversarial_weight : weight of the generator's GAN term.
    """
    _check_accelerator(cfg.accelerator)
    work_dir = Path(work_dir)
    ckpt_dir = work_dir / CHECKPOINT_DIR
    last = ckpt_dir / LAST
    if resume and not last.exists():
        raise InputError("no checkpoint to resume from; start without --resume", ckpt_dir)
    total_steps = cfg.max_epochs * cfg.steps_per_epoch
    if datasets is not None:
        train_data, val_data = datasets
    else:
        if train_pool is None:
            raise InputError("training needs images (a patch pool) or ready datasets")
        train_data = PatchBatches(train_pool, cfg, n_batches=cfg.steps_per_epoch, masking=masking)
        val_data = PatchBatches(
            val_pool or train_pool,
            cfg,
            n_batches=cfg.validation_batches,
            masking=masking,
            validation=True,
        )
    train_batches = _EpochBatches(train_data)
    loader = _loader(train_batches)
    val_loader = _loader(val_data)
    budget = Budget(cfg, total_steps)
    history = History(work_dir / "history.csv", budget)
    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best",
        monitor="val_loss",
        mode="min",
        save_top_k=1,
        save_last=True,
    )
    on_interrupt = _SaveOnInterrupt(last)
    callbacks: list[Callback] = [
        budget,
        history,
        checkpoint,
        _EpochSeed(train_batches),
        on_interrupt,
        _ProcessThreads(cfg.threads),
    ]
    if cfg.early_stopping_patience:
        callbacks.append(EarlyStopping("val_loss", patience=cfg.early_stopping_patience))
    callbacks += extra_callbacks or []
    if not quiet:
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks.append(RichProgressBar(leave=False))
    # A network loaded for fine-tuning is in eval mode: train it as a network in training
    # (batch statistics, dropout), not as the frozen one it was.
    network.train()
    if discriminator is not None:
        if loss_fn is None:
            raise InputError("adversarial training needs a content loss (loss_fn)")
        task: RestorationTask = GANTask(network, cfg, loss_fn, discriminator, adversarial_weight)
    else:
        task = RestorationTask(network, cfg, loss_fn)
    strategy = strategy_for(cfg)
    with _quiet_lightning(), torch_threads(cfg.threads):
        trainer = L.Trainer(
            accelerator=cfg.accelerator,
            devices=cfg.devices,
            strategy=strategy,
            # Each process picks its own batches (_EpochBatches): no sampler splits them.
            use_distributed_sampler=False,
            precision=cfg.precision,
            max_epochs=cfg.max_epochs,
            logger=False,
            callbacks=callbacks,
            plugins=[SafeCheckpointIO()],
            enable_model_summary=False,
            enable_progress_bar=not quiet,
            num_sanity_val_steps=0,
            # Lightning clips only under automatic optimization (not the GAN's manual steps).
            gradient_clip_val=cfg.gradient_clip_norm if discriminator is None else None,
            gradient_clip_algorithm="norm",
            log_every_n_steps=min(50, cfg.steps_per_epoch),
            default_root_dir=str(work_dir),
        )
        try:
            trainer.fit(task, loader, val_loader, ckpt_path=str(last) if resume else None)
        except SystemExit:
            # Lightning answers Ctrl-C by saving nothing and calling sys.exit(1), after
            # ignoring further Ctrl-C for the rest of the process: undo that, and say where
            # the run can be resumed from.
            if not trainer.interrupted:
                raise
            _restore_sigint()
            raise _interrupted(work_dir, last, budget, trainer) from None
        stopped_by = budget.stopped_by
        if any(isinstance(c, EarlyStopping) and c.stopped_epoch > 0 for c in callbacks):
            stopped_by = "early_stopping"
        if not isinstance(strategy, str):
            # DDP by spawn: the processes are gone; this one holds rank 0's weights, and rank 0
            # wrote the history. Validating here needs no new processes.
            return _after_spawn(task, val_loader, history, ckpt_dir / BEST, resume)
        final = trainer.validate(task, val_loader, verbose=False)[0]["val_loss"]
    val_loss = float(final)
    best = ckpt_dir / BEST
    best_score = checkpoint.best_model_score
    if best.exists() and best_score is not None and float(best_score) < val_loss:
        from abbe.train.checkpoint import load as load_checkpoint

        state = load_checkpoint(best)["state_dict"]
        task.load_state_dict(state)
        val_loss = float(best_score)
    network = task.network.cpu().eval()
    return FitResult(
        network=network,
        history=list(history.rows),
        val_loss=val_loss,
        steps=trainer.global_step // max(1, len(trainer.optimizers)),
        elapsed_s=budget.elapsed,
        stopped_by=stopped_by,
        resumed=resume,
    )


def _after_spawn(
    task: RestorationTask, val_loader: Any, history: History, best: Path, resume: bool
) -> FitResult:
    """The result of a DDP run in spawned processes, from what they left: the final weights
    (given back to this process by Lightning), ``history.csv`` and the best checkpoint."""
    import csv

    with open(history.path, newline="") as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    task.network.eval()
    with torch.no_grad():
        losses = [float(task._step(batch)) for batch in val_loader]
    val_loss = float(np.mean(losses))
    scores = [r["val_loss"] for r in rows if math.isfinite(r.get("val_loss", float("nan")))]
    if best.exists() and scores and min(scores) < val_loss:
        from abbe.train.checkpoint import load as load_checkpoint

        task.load_state_dict(load_checkpoint(best)["state_dict"])
        val_loss = min(scores)
    last = rows[-1] if rows else {}
    return FitResult(
        network=task.network.cpu().eval(),
        history=rows,
        val_loss=val_loss,
        steps=int(last.get("step", 0)),
        elapsed_s=float(last.get("elapsed_s", 0.0)),
        stopped_by="epochs",
        resumed=resume,
    )


def _interrupted(work_dir: Path, last: Path, budget: Budget, trainer: L.Trainer) -> Interrupted:
    steps = trainer.global_step // max(1, len(trainer.optimizers))
    done = f"training interrupted after {steps} steps ({budget.elapsed:.0f} s)"
    if last.exists():
        return Interrupted(
            f"{done}; checkpoint saved: run the same command with --resume to continue", work_dir
        )
    return Interrupted(f"{done}; no checkpoint yet, so there is nothing to resume", work_dir)


def _check_accelerator(accelerator: str) -> None:
    """A GPU asked for and not there is one clear line, not Lightning's traceback."""
    if accelerator.lower() in ("gpu", "cuda") and not torch.cuda.is_available():
        raise InputError(
            f"training.accelerator {accelerator}: no CUDA GPU is available to this torch "
            "build; use cpu or auto"
        )


def _restore_sigint() -> None:
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _loader(dataset: Any) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=0)


class _quiet_lightning:
    """Silence Lightning's start-up chatter and hints that do not apply to abbe's data."""

    def __enter__(self) -> None:
        self._levels = {}
        for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.WARNING)
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        for pattern in (
            ".*does not have many workers.*",
            ".*number of training batches.*",
            ".*GPU available but not used.*",
            ".*LeafSpec.*",
            ".*Checkpoint directory.*exists and is not empty.*",
            # An interrupted epoch resumes exactly: _EpochSeed hands out the batches not yet seen.
            ".*resuming from a checkpoint that ended before the epoch ended.*",
        ):
            warnings.filterwarnings("ignore", message=pattern)
        # Lightning's hints about how a Lightning script might be written (workers, batch
        # counts, module modes) are for its developers; abbe's users cannot act on them.
        from lightning.fabric.utilities.warnings import PossibleUserWarning

        warnings.filterwarnings("ignore", category=PossibleUserWarning)
        os.environ.setdefault("PL_DISABLE_FORK", "1")

    def __exit__(self, *exc: Any) -> None:
        self._warnings.__exit__(*exc)
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
