"""The training engine: losses, pickle-free checkpoints, schedule, time budget, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from abbe.data import PatchPool
from abbe.nn import UNet, UNetConfig
from abbe.train import TrainingConfig, fit, restoration_loss
from abbe.train import checkpoint as ckpt
from abbe.train.engine import Budget


def test_laplace_loss_is_the_negative_log_likelihood():
    mean, log_b, y = torch.tensor([1.0]), torch.tensor([0.5]), torch.tensor([2.5])
    out = torch.stack([mean, log_b], dim=1)[..., None, None]
    target = y.reshape(1, 1, 1, 1)
    loss = restoration_loss("laplace", out, target, torch.zeros(0))
    expected = abs(1.0 - 2.5) / math.exp(0.5) + 0.5
    assert float(loss) == pytest.approx(expected)


def test_masked_loss_counts_only_masked_pixels():
    out = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[[1.0, 100.0], [100.0, 100.0]]]])
    weight = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    assert float(restoration_loss("mse", out, target, weight)) == pytest.approx(1.0)


def test_checkpoint_round_trip_keeps_nested_state_without_pickle(tmp_path):
    state = {
        "state_dict": {"w": torch.randn(3, 3)},
        "optimizer_states": [
            {
                "state": {0: {"step": torch.tensor(5.0)}},
                "param_groups": [{"betas": (0.9, 0.999), "lr": 1e-3}],
            }
        ],
        "epoch": 4,
        "flag": None,
        "name": "x",
        "inf": float("inf"),
    }
    ckpt.save(state, tmp_path / "c.ckpt")
    back = ckpt.load(tmp_path / "c.ckpt")
    torch.testing.assert_close(back["state_dict"]["w"], state["state_dict"]["w"])
    assert back["optimizer_states"][0]["state"][0]["step"].item() == 5.0
    assert back["optimizer_states"][0]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert back["epoch"] == 4 and back["flag"] is None and back["inf"] == float("inf")
    # It is a safetensors file, not a pickle.
    assert (tmp_path / "c.ckpt").read_bytes()[8:9] == b"{"


def test_cosine_schedule_warms_up_then_decays_to_the_final_rate():
    cfg = TrainingConfig(learning_rate=1e-3, final_learning_rate=1e-5, warmup_steps=10)
    budget = Budget(cfg, total_steps=100)
    assert budget.learning_rate(0) == pytest.approx(1e-4)
    assert budget.learning_rate(9) == pytest.approx(1e-3)
    assert budget.learning_rate(50) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))
    assert budget.learning_rate(100) == pytest.approx(1e-5)
    # With a time budget, time used counts as progress too.
    timed = Budget(cfg.model_copy(update={"max_time_s": 10.0}), total_steps=10_000)
    timed.elapsed = 10.0
    assert timed.learning_rate(20) == pytest.approx(1e-5)


def _pools(filament_pairs):
    from abbe.data import PercentileNorm, normalize_pair

    noisy, clean = filament_pairs
    xs, ys = zip(
        *(normalize_pair(a, b, PercentileNorm()) for a, b in zip(noisy, clean, strict=True)),
        strict=True,
    )
    xs = [x[None] for x in xs]
    ys = [y[None] for y in ys]
    return PatchPool(xs[:7], ys[:7], (32, 32)), PatchPool(xs[7:], ys[7:], (32, 32))


SMALL = {"patch_size": 32, "batch_size": 8, "steps_per_epoch": 15, "threads": 1}


def test_training_lowers_the_validation_loss(filament_pairs, tmp_path):
    train, val = _pools(filament_pairs)
    torch.manual_seed(0)
    cfg = TrainingConfig(**SMALL, max_epochs=4)
    result = fit(UNet(UNetConfig(width=8)), train, val, cfg, work_dir=tmp_path, quiet=True)
    losses = [row["val_loss"] for row in result.history]
    assert len(losses) == 4 and result.steps == 60
    assert losses[-1] < 0.5 * losses[0]
    assert (tmp_path / "history.csv").read_text().count("\n") == 5
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()


def test_time_budget_stops_training(filament_pairs, tmp_path):
    train, val = _pools(filament_pairs)
    cfg = TrainingConfig(**SMALL, max_epochs=1000, max_time_s=1.5)
    result = fit(UNet(UNetConfig(width=8)), train, val, cfg, work_dir=tmp_path, quiet=True)
    assert result.stopped_by == "time"
    assert 1.5 <= result.elapsed_s < 3.0


def test_same_seed_gives_the_same_weights(filament_pairs, tmp_path):
    train, val = _pools(filament_pairs)
    cfg = TrainingConfig(**SMALL, max_epochs=2)
    weights = []
    for run in range(2):
        torch.manual_seed(0)
        net = fit(
            UNet(UNetConfig(width=8)), train, val, cfg, work_dir=tmp_path / str(run), quiet=True
        ).network
        weights.append(torch.cat([p.detach().flatten() for p in net.parameters()]))
    torch.testing.assert_close(weights[0], weights[1], rtol=0, atol=0)


def test_resume_without_a_checkpoint_is_refused(tmp_path, filament_pairs):
    from abbe.errors import InputError

    train, val = _pools(filament_pairs)
    with pytest.raises(InputError, match="no checkpoint"):
        fit(
            UNet(UNetConfig(width=8)),
            train,
            val,
            TrainingConfig(**SMALL),
            work_dir=tmp_path,
            resume=True,
            quiet=True,
        )


def test_history_continues_across_resume(filament_pairs, tmp_path):
    train, val = _pools(filament_pairs)
    torch.manual_seed(0)
    cfg = TrainingConfig(**SMALL, max_epochs=2)
    fit(UNet(UNetConfig(width=8)), train, val, cfg, work_dir=tmp_path, quiet=True)
    longer = cfg.model_copy(update={"max_epochs": 3})
    result = fit(
        UNet(UNetConfig(width=8)), train, val, longer, work_dir=tmp_path, resume=True, quiet=True
    )
    assert [r["epoch"] for r in result.history] == [0, 1, 2]
    assert result.steps == 45
    assert np.all(np.diff([r["step"] for r in result.history]) == 15)


class _GradNorms(Callback):
    """Global gradient norm after each step (gradients persist until the next zero_grad)."""

    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        grads = [p.grad.flatten() for p in module.parameters() if p.grad is not None]
        self.norms.append(float(torch.cat(grads).norm()))


@pytest.mark.parametrize("clip", [None, 1e-3])
def test_gradient_clip_norm_bounds_every_step(filament_pairs, tmp_path, clip):
    train, val = _pools(filament_pairs)
    torch.manual_seed(0)
    cfg = TrainingConfig(**{**SMALL, "steps_per_epoch": 3}, max_epochs=1, gradient_clip_norm=clip)
    seen = _GradNorms()
    fit(
        UNet(UNetConfig(width=8)),
        train,
        val,
        cfg,
        work_dir=tmp_path,
        quiet=True,
        extra_callbacks=[seen],
    )
    assert len(seen.norms) == 3
    if clip is None:  # unclipped gradients of a fresh network are far above 1e-3
        assert min(seen.norms) > 100 * 1e-3
    else:
        assert max(seen.norms) <= clip * 1.001
