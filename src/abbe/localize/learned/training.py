"""Training data and loss of the learned localizers: simulated frames drawn on the fly,
seeded by (seed, epoch, batch, stream), and the per-pixel localization loss."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from abbe.localize.learned.config import SimulationMatch, camera_for
from abbe.localize.learned.targets import normalize_frames, targets


class SimulatedBatches(torch.utils.data.Dataset):
    """Batches of simulated frames and targets, seeded by (seed, epoch, batch, stream).

    ``make_targets(truth, n_frames, shape, cfg)`` turns the truth table into the network's
    target maps (default: the per-pixel localizer targets).
    """

    def __init__(
        self,
        cfg: SimulationMatch,
        n_batches: int,
        *,
        validation: bool = False,
        make_targets: Any = None,
    ) -> None:
        self.cfg, self.n_batches = cfg, n_batches
        self.make_targets = make_targets or targets
        self.stream = 1 if validation else 0
        self.epoch = 0

    def __len__(self) -> int:
        return self.n_batches

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        from abbe.data import batch_rng
        from abbe.localize.fit import to_electrons
        from abbe.simulate.smlm import smlm

        cfg, tr = self.cfg, self.cfg.training
        epoch = 0 if self.stream else self.epoch
        rng = batch_rng(tr.seed, epoch, i, self.stream)
        seed = int(rng.integers(2**31))
        size = tr.patch_size
        camera = camera_for(cfg.camera, (size, size), seed)
        on_structure = bool(rng.random() < cfg.structured)
        sim = smlm(
            structure="filaments" if on_structure else None,
            frames=tr.batch_size,
            size=size,
            pixel_size_nm=cfg.pixel_size_nm,
            density=float(rng.uniform(*cfg.density)),
            photons=cfg.photons,
            background=cfg.background,
            psf_sigma_nm=cfg.psf_sigma_nm,
            camera=camera,
            seed=seed,
        )
        x = normalize_frames(to_electrons(sim.stack, sim.camera).data, cfg)[:, None]
        y = self.make_targets(sim.truth, tr.batch_size, (size, size), cfg)
        return torch.from_numpy(x), torch.from_numpy(y), torch.zeros(0)


def localization_loss(
    out: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, offset_range: float = 0.75
) -> torch.Tensor:
    """BCE on the detection map; where an emitter is near (``y[:, 4]``), Gaussian NLL of its
    offsets (within ±``offset_range`` pixels) and L1 on its photons."""
    present = y[:, 0]
    near = y[:, 4]
    bce = F.binary_cross_entropy_with_logits(out[:, 0], present)
    n_near = near.sum().clamp_min(1.0)
    mu = torch.tanh(out[:, 1:3]) * offset_range
    log_s = out[:, 3:5].clamp(-6, 3)
    nll = (0.5 * ((y[:, 1:3] - mu) / torch.exp(log_s)) ** 2 + log_s).sum(1)
    photons = (out[:, 5] - y[:, 3]).abs()
    return bce + ((nll + photons) * near).sum() / n_near
