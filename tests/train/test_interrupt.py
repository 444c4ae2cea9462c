"""Ctrl-C and --resume in the training engine: a checkpoint is left, Ctrl-C works again after it,
a resumed run spends its own time budget and continues the learning-rate schedule."""

from __future__ import annotations

import signal
import time

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from abbe.errors import InputError, Interrupted
from abbe.nn import UNet, UNetConfig
from abbe.train import TrainingConfig, fit
from abbe.train.engine import Budget


class _Trainer:
    """What Budget.on_train_batch_end touches of a Lightning trainer."""

    should_stop = False


def _batch(budget: Budget, seconds: float) -> _Trainer:
    """One training batch that took ``seconds`` (the clock is not waited for)."""
    trainer = _Trainer()
    budget._t0 = time.perf_counter() - seconds
    budget.on_train_batch_end(trainer, None, None, None, 0)
    return trainer


def test_a_resumed_run_spends_its_own_time_budget():
    # The case: a run stopped by its 20 s budget after 50 s in all, resumed with
    # --max-time 20, trained one step. It now trains until 20 s of its own have passed.
    cfg = TrainingConfig(max_time_s=20.0)
    budget = Budget(cfg, total_steps=10_000)
    budget.load_state_dict({"elapsed": 50.0, "time_progress": 1.0})
    assert not _batch(budget, 5.0).should_stop
    assert budget.run_elapsed == pytest.approx(5.0, abs=0.01)
    assert budget.elapsed == pytest.approx(55.0, abs=0.01)  # history and metrics: all runs
    assert _batch(budget, 15.5).should_stop and budget.stopped_by == "time"


def test_the_schedule_goes_on_from_where_the_interrupted_run_left_it():
    cfg = TrainingConfig(max_time_s=20.0, warmup_steps=0)
    fresh = Budget(cfg, total_steps=10_000)
    fresh.elapsed = 8.0  # interrupted at 40 % of its time
    state = fresh.state_dict()
    assert state["time_progress"] == pytest.approx(0.4)
    resumed = Budget(cfg, total_steps=10_000)
    resumed.load_state_dict(state)
    # No jump of the learning rate at the resume...
    assert resumed.learning_rate(10) == pytest.approx(fresh.learning_rate(10))
    # ...and the rest of the cosine is spread over the new budget: halfway is 0.4 + 0.6 / 2.
    _batch(resumed, 10.0)
    assert resumed.progress(10) == pytest.approx(0.7, abs=1e-3)
    # Checkpoints written before the progress was stored: read off the elapsed time.
    old = Budget(cfg, total_steps=10_000)
    old.load_state_dict({"elapsed": 8.0})
    assert old.progress(10) == pytest.approx(0.4)


def _pools(filament_pairs):
    from abbe.data import PatchPool, PercentileNorm, normalize_pair

    noisy, clean = filament_pairs
    xs, ys = zip(
        *(normalize_pair(a, b, PercentileNorm()) for a, b in zip(noisy, clean, strict=True)),
        strict=True,
    )
    pool = PatchPool([x[None] for x in xs[:3]], [y[None] for y in ys[:3]], (32, 32))
    return pool, pool


class _CtrlC(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_before_backward(self, trainer, module, loss):
        if trainer.global_step == self.step:
            raise KeyboardInterrupt


def test_ctrl_c_raises_interrupted_with_a_checkpoint_and_ctrl_c_works_again(
    filament_pairs, tmp_path
):
    train, val = _pools(filament_pairs)
    cfg = TrainingConfig(
        patch_size=32, batch_size=4, steps_per_epoch=5, max_epochs=2, threads=1, warmup_steps=1
    )
    torch.manual_seed(0)
    with pytest.raises(Interrupted, match=r"interrupted after 3 steps.*--resume") as caught:
        fit(
            UNet(UNetConfig(width=8)),
            train,
            val,
            cfg,
            work_dir=tmp_path,
            quiet=True,
            extra_callbacks=[_CtrlC(3)],  # in the first epoch: no epoch checkpoint yet
        )
    assert isinstance(caught.value, KeyboardInterrupt)  # Python code stopping on Ctrl-C still does
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    # Lightning ignores SIGINT after catching one; the engine gives Ctrl-C back.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    result = fit(
        UNet(UNetConfig(width=8)), train, val, cfg, work_dir=tmp_path, quiet=True, resume=True
    )
    assert result.steps == 10 and [r["step"] for r in result.history] == [5, 10]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_a_missing_gpu_for_training_is_one_clear_error(filament_pairs, tmp_path):
    train, val = _pools(filament_pairs)
    cfg = TrainingConfig(patch_size=32, steps_per_epoch=1, max_epochs=1, accelerator="gpu")
    with pytest.raises(InputError, match="no CUDA GPU"):
        fit(UNet(UNetConfig(width=8)), train, val, cfg, work_dir=tmp_path / "m", quiet=True)
    assert not (tmp_path / "m").exists()
