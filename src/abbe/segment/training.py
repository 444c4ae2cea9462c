"""Training data and loss of the segmenter: batches of simulated nuclei (mixed with crops of
a user's pairs) and the per-pixel loss on its maps."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

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
