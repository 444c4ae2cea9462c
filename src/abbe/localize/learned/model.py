"""Learned localization for dense SMLM frames: a U-Net that outputs localizations, trained on
simulations matched to the user's camera, PSF, brightness and density.

For every camera pixel the network predicts the probability that an emitter's centre lies in
it, the emitter's sub-pixel offset (x, y) with its standard deviation, and its photon count.
This is the output head of DECODE (Speiser et al., Nat Methods 18:1082 (2021)), trained here on
single frames with a per-pixel loss: binary cross-entropy on the probability, and on pixels that
hold an emitter a Gaussian negative log-likelihood of the offsets and an L1 loss on the photons.
Where emitters overlap, the network separates what a single-emitter fit merges (Nehme et al.,
Deep-STORM, Optica 5:458 (2018), showed the gain on dense frames with a density output).

Training data are drawn on the fly from :func:`abbe.simulate.smlm.smlm` through the project's
one training engine (:func:`abbe.train.engine.fit`); every batch is seeded by (seed, epoch, batch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from abbe.compute import network_on, torch_threads
from abbe.errors import InputError, ModelError
from abbe.localize.learned.config import LocalizerConfig
from abbe.localize.learned.decoding import calibrate_threshold, detections, positions
from abbe.localize.learned.targets import normalize_frames, targets
from abbe.localize.learned.training import SimulatedBatches, localization_loss
from abbe.models.base import DEFAULT_MEMORY_MB, ExportInfo, Model, ModelConfig
from abbe.simulate.camera import Camera


class Localizer(Model):
    """A trained learned localizer: ``fit`` on simulations, ``predict`` localizations.

    Examples
    --------
    >>> cfg = LocalizerConfig(psf_sigma_nm=130, density=(0, 3))  # doctest: +SKIP
    >>> model = Localizer(cfg).fit(work_dir="runs/loc")  # doctest: +SKIP
    >>> locs = model.predict(stack, camera=camera)  # doctest: +SKIP
    """

    method = "localizer"
    config_class: type[ModelConfig] = LocalizerConfig
    usage = "abbe localize STACK --method"
    thresholds: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7)
    scale = 1  # output pixels per camera pixel

    def __init__(self, config: Any = None, network: torch.nn.Module | None = None) -> None:
        super().__init__(config, network)
        if network is None:  # built now: the same seed gives the same initial weights
            self.network = self.build_network()

    def build_network(self) -> torch.nn.Module:
        torch.manual_seed(self.config.training.seed)
        return self._new_network()

    def export_info(self) -> ExportInfo:
        """Not exportable: its output is a table decoded from six sparse maps."""
        raise ModelError(
            "a learned localizer cannot be exported: its output is a table of localizations "
            "decoded from six sparse maps (presence, offsets, their spread, photons), which no "
            "bioimage.io or ONNX tool reads; export a Deep-STORM model (a density image) instead"
        )

    def _new_network(self) -> torch.nn.Module:
        from abbe.nn import UNet

        network = UNet(self.config.network)
        with torch.no_grad():  # emitters are rare per pixel: start near p ≈ 2 %
            network.head.bias[0] = -4.0
        return network

    @staticmethod
    def make_targets(truth: pd.DataFrame, n_frames: int, shape: tuple[int, int], cfg: Any):
        return targets(truth, n_frames, shape, cfg)

    def loss(self, out: torch.Tensor, y: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return localization_loss(out, y, weight, self.config.offset_range)

    def fit(self, *, work_dir: str | Path, resume: bool = False, quiet: bool = True) -> Localizer:
        """Train on simulations drawn on the fly (bounded by ``training.max_time_s``)."""
        tr = self.config.training
        make = self.make_targets
        train = SimulatedBatches(self.config, tr.steps_per_epoch, make_targets=make)
        val = SimulatedBatches(
            self.config, tr.validation_batches, validation=True, make_targets=make
        )
        result = self._train(
            work_dir=work_dir,
            resume=resume,
            quiet=quiet,
            datasets=(train, val),
            loss_fn=self.loss,
        )
        self.metrics.update(
            {
                "val_loss": round(result.val_loss, 5),
                "steps": result.steps,
                "training_seconds": round(result.elapsed_s, 1),
            }
        )
        detection = calibrate_threshold(self)
        # A weak or untrained model says so in metrics.json (and warned while calibrating).
        self.metrics["warnings"] = detection.pop("warnings")
        self.metrics["detection"] = detection
        return self

    @property
    def bytes_per_pixel(self) -> float:
        """Peak memory per camera pixel of a forward pass: the U-Net's activations and the
        ``scale²`` finer outputs of every channel."""
        out = self.config.network.out_channels * self.scale**2
        return super().bytes_per_pixel + 8.0 * out

    def predict_maps(
        self,
        electrons: np.ndarray,
        batch: int = 32,
        *,
        tile: int | str | None = "auto",
        memory_mb: float = DEFAULT_MEMORY_MB,
        device: str | None = "auto",
        threads: int | None = None,
    ) -> np.ndarray:
        """Raw output maps (T, C, Y·s, X·s) for frames in photo-electrons (s: ``scale``).

        Frames go through the network ``batch`` at a time, fewer when the memory budget
        ``memory_mb`` holds fewer; a frame too large for the budget on its own (or any frame,
        with ``tile`` in pixels) is predicted tile by tile with the network's whole context
        (:meth:`abbe.models.base.Model.windowed`), which gives the same maps.
        """
        x = normalize_frames(electrons, self.config)
        if len(x) == 0:
            raise InputError("no frames to localize")
        net = self.network.eval()
        with network_on(net, device) as dev, torch_threads(threads), torch.inference_mode():
            if tile in (None, 0, "none") or (tile == "auto" and self._fits(x.shape[1:], memory_mb)):
                return self._maps_batched(net, x, batch, memory_mb, dev)
            return self._maps_tiled(net, x, tile, memory_mb, dev)

    def _fits(self, shape: tuple[int, ...], memory_mb: float) -> bool:
        """Whether one whole frame fits the memory budget."""
        return int(np.prod(shape)) * self.bytes_per_pixel <= memory_mb * 2**20

    def _maps_batched(
        self, net: torch.nn.Module, x: np.ndarray, batch: int, memory_mb: float, dev: Any
    ) -> np.ndarray:
        t, h, w = x.shape
        m = 2**self.config.network.depth
        ph, pw = (-h) % m, (-w) % m
        per_frame = (h + ph) * (w + pw) * self.bytes_per_pixel
        batch = int(max(1, min(batch, memory_mb * 2**20 // per_frame)))
        hs, ws = h * self.scale, w * self.scale  # output grid (finer for Deep-STORM)
        outs = []
        for s in range(0, t, batch):
            xb = torch.from_numpy(x[s : s + batch, None]).to(dev)
            if ph or pw:
                xb = F.pad(xb, (0, pw, 0, ph))
            outs.append(net(xb)[:, :, :hs, :ws].cpu().numpy())
        return np.concatenate(outs)

    def _maps_tiled(
        self, net: torch.nn.Module, x: np.ndarray, tile: Any, memory_mb: float, dev: Any
    ) -> np.ndarray:
        def run(window: np.ndarray) -> np.ndarray:
            return net(torch.from_numpy(window[None]).to(dev))[0].cpu().numpy()

        t, h, w = x.shape
        s = self.scale
        out = np.empty((t, self.config.network.out_channels, h * s, w * s), np.float32)
        for k in range(t):
            self.windowed(run, x[k : k + 1], tile=tile, memory_mb=memory_mb, out=out[k], scale=s)
        return out

    def predict(
        self,
        stack: np.ndarray,
        *,
        camera: Camera | None = None,
        threshold: float | None = None,
        **compute: Any,
    ) -> pd.DataFrame:
        """Localizations (abbe's columns) of a (T, Y, X) stack in ADU (with ``camera``) or
        photons. ``compute``: ``tile``, ``memory_mb``, ``device``, ``threads`` (see
        :meth:`predict_maps`)."""
        from abbe.localize.fit import to_electrons

        frames = np.asarray(stack)
        if frames.ndim == 2:
            frames = frames[None]
        if frames.ndim != 3:
            raise InputError(f"localization needs (T, Y, X) frames, got {frames.shape}")
        e = to_electrons(frames, camera)
        maps = self.predict_maps(e.data, **compute)
        return self._locs_from_maps(maps, threshold or self.config.threshold, e.qe)

    def _locs_from_maps(self, maps: np.ndarray, threshold: float, qe: float) -> pd.DataFrame:
        from abbe.localize.fit import LOC_COLUMNS

        p = 1 / (1 + np.exp(-maps[:, 0]))
        t, iy, ix = detections(p, threshold)
        a = self.config.pixel_size_nm
        x, y = positions(maps, t, iy, ix, self.config.offset_range, pool=self.config.reach > 0)
        sx = np.exp(np.clip(maps[t, 3, iy, ix], -6, 3)) * a
        sy = np.exp(np.clip(maps[t, 4, iy, ix], -6, 3)) * a
        photons = maps[t, 5, iy, ix] * self.config.photon_scale / qe
        locs = pd.DataFrame(
            {
                "frame": t + 1,
                "x_nm": x * a,
                "y_nm": y * a,
                "photons": photons,
                "background": np.nan,
                "sigma_nm": self.config.psf_sigma_nm,
                "uncertainty_nm": np.sqrt((sx**2 + sy**2) / 2),
                "crlb_x_nm": sx,
                "crlb_y_nm": sy,
                "probability": p[t, iy, ix],
            }
        )
        return locs[[*LOC_COLUMNS, "probability"]].reset_index(drop=True)


def load_model(folder: str | Path) -> Localizer:
    """A saved learned localizer or Deep-STORM model (any folder format abbe wrote)."""
    from abbe.models.registry import load

    model = load(folder)
    if not isinstance(model, Localizer):
        raise InputError(
            f"not an SMLM model (method {model.config.method!r}; expected localizer or deepstorm)",
            folder,
        )
    return model
