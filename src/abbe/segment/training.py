"""Training data and loss of the segmenter: batches of simulated nuclei (mixed with crops of
a user's pairs) and the per-pixel loss on its maps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback

from abbe.segment.config import SegmenterConfig
from abbe.segment.targets import (
    contact_px_of,
    contact_weights,
    normalize_image,
    segmentation_targets,
)
from abbe.simulate.cells import nuclei_image


def segmentation_loss(out: torch.Tensor, y: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """BCE on the foreground plus 5 × MSE of the sigmoid distance map (plus BCE on the contact
    map when there are 3 channels), averaged with per-pixel ``weight`` (N, Y, X) when it is
    not empty."""
    bce = F.binary_cross_entropy_with_logits(out[:, 0], y[:, 0], reduction="none")
    se = (torch.sigmoid(out[:, 1]) - y[:, 1]) ** 2
    per_pixel = bce + 5.0 * se
    if y.shape[1] > 2:
        per_pixel = per_pixel + F.binary_cross_entropy_with_logits(
            out[:, 2], y[:, 2], reduction="none"
        )
    if weight.numel() == 0:
        return per_pixel.mean()
    return (per_pixel * weight).sum() / weight.sum()


class NucleiBatches(torch.utils.data.Dataset):
    """Batches of simulated nuclei patches (and, when given, crops of user pairs)."""

    def __init__(
        self,
        cfg: SegmenterConfig,
        n_batches: int,
        *,
        validation: bool = False,
        pairs: list[tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        self.cfg, self.n_batches = cfg, n_batches
        self.stream = 1 if validation else 0
        self.epoch = 0
        self.pairs = pairs or []

    def __len__(self) -> int:
        return self.n_batches

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        from abbe.data import batch_rng
        from abbe.data.patches import augment_dihedral

        cfg, tr = self.cfg, self.cfg.training
        rng = batch_rng(tr.seed, 0 if self.stream else self.epoch, i, self.stream)
        size = tr.patch_size
        xs, ys, ws = [], [], []
        for _ in range(tr.batch_size):
            if self.pairs and rng.random() < cfg.real_fraction:
                img, lab = self.pairs[int(rng.integers(len(self.pairs)))]
                y0 = int(rng.integers(img.shape[0] - size + 1))
                x0 = int(rng.integers(img.shape[1] - size + 1))
                img = img[y0 : y0 + size, x0 : x0 + size]
                lab = lab[y0 : y0 + size, x0 : x0 + size]
            else:
                sim = nuclei_image((size, size), cfg.simulation, seed=int(rng.integers(2**31)))
                img, lab = sim.image, sim.labels
            x = normalize_image(img, cfg.percentiles)
            g = float(np.exp(rng.uniform(*np.log(cfg.gamma))))
            xs.append((np.clip(x, 0, None) ** g)[None].astype(np.float32))
            ys.append(segmentation_targets(lab, contact_px=contact_px_of(cfg)))
            if cfg.contact_weight > 0:
                ws.append(contact_weights(lab, cfg.contact_weight, cfg.contact_sigma_px))
        w = np.stack(ws) if ws else None
        x, y, w = augment_dihedral([np.stack(xs), np.stack(ys), w], rng)
        weight = torch.zeros(0) if w is None else torch.from_numpy(np.ascontiguousarray(w))
        return torch.from_numpy(x), torch.from_numpy(y), weight


class BestByValidationAP(Callback):
    """Keeps the network of the epoch whose held-out simulated images score the best AP@0.5.

    The validation loss is a per-pixel average: a network can lower it while its watershed
    still merges or splits nuclei, and a run's last epoch need not be its best. After every
    epoch (from ``start_epoch`` on) ``score`` is called on the network being trained; the
    weights of the best-scoring epoch are kept (in the checkpoint too, so a resumed run keeps
    them) and :meth:`restore` puts them back at the end.
    """

    def __init__(self, score: Callable[[], float], start_epoch: int = 0) -> None:
        self.score, self.start_epoch = score, start_epoch
        self.best_ap = -1.0
        self.best_epoch = -1
        self.scores: list[tuple[int, float]] = []
        self.best_state: dict[str, torch.Tensor] | None = None

    @property
    def state_key(self) -> str:
        return "abbe.BestByValidationAP"

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_ap": self.best_ap,
            "best_epoch": self.best_epoch,
            "scores": [list(s) for s in self.scores],
            "state": self.best_state or {},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_ap = float(state["best_ap"])
        self.best_epoch = int(state["best_epoch"])
        self.scores = [(int(e), float(s)) for e, s in state["scores"]]
        self.best_state = dict(state["state"]) or None

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        epoch = trainer.current_epoch
        if epoch < self.start_epoch:
            return
        network = module.network
        was_training = network.training
        try:
            ap = float(self.score())
        finally:
            network.train(was_training)
        self.scores = [s for s in self.scores if s[0] != epoch] + [(epoch, ap)]
        if ap > self.best_ap:  # ties keep the earlier epoch
            self.best_ap, self.best_epoch = ap, epoch
            self.best_state = {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}

    def restore(self, network: torch.nn.Module) -> None:
        """Load the best epoch's weights into ``network`` (nothing when none was scored)."""
        if self.best_state is not None:
            network.load_state_dict(self.best_state)


def simulated_ap50(
    predict: Callable[[np.ndarray], np.ndarray],
    cfg: SegmenterConfig,
    n: int,
    size: int,
    seed: int,
) -> float:
    """Mean AP@0.5 of ``predict`` (image → labels) on ``n`` simulated ``size``² images of
    seeds ``seed``, ``seed + 1``, …: held out from training, whose images come from random
    seeds drawn by the batch generator."""
    from abbe.metrics.segmentation import score_labels

    scores = []
    for k in range(n):
        sim = nuclei_image((size, size), cfg.simulation, seed=seed + k)
        scores.append(score_labels(predict(sim.image), sim.labels).ap50)
    return float(np.mean(scores))
