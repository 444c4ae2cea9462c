"""Training prints nothing of Lightning's own, and a network handed over in eval mode (a loaded
model being fine-tuned) is trained as a network in training, not frozen in eval mode."""

from __future__ import annotations

import warnings

from lightning.pytorch.callbacks import Callback

from abbe.data import PatchPool, PercentileNorm, normalize_pair
from abbe.nn import UNet, UNetConfig
from abbe.train import TrainingConfig, fit


class _Mode(Callback):
    def __init__(self) -> None:
        self.training: list[bool] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.training.append(module.network.training)


def test_a_network_in_eval_mode_trains_in_train_mode_without_lightning_warnings(
    filament_pairs, tmp_path
):
    noisy, clean = filament_pairs
    x, y = normalize_pair(noisy[0], clean[0], PercentileNorm())
    pool = PatchPool([x[None]], [y[None]], (32, 32))
    net = UNet(UNetConfig(width=8)).eval()  # as models.load returns it
    mode = _Mode()
    cfg = TrainingConfig(patch_size=32, batch_size=4, steps_per_epoch=3, max_epochs=1, threads=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(net, pool, pool, cfg, work_dir=tmp_path, quiet=True, extra_callbacks=[mode])
    assert mode.training == [True, True, True]
    lightning = [str(w.message) for w in caught if "lightning" in w.filename]
    assert lightning == []
