"""Spectroscopic SMLM, the learned way: a small ResNet reads each localization's spectral crop
and returns calibrated dye probabilities and the spectral centroid.

Gaire et al., "Accelerating multicolor spectroscopic single-molecule localization microscopy
using deep learning", Biomed Opt Express 11:2705 (2020), classified dyes and regressed the
spectral centroid from dim sSMLM spectra with a customized ResNet; here the ResNet of
:mod:`abbe.nn.resnet` (He et al., CVPR 2016) has ``n_dyes + 1`` outputs: the dyes' logits and
the centroid's column in the crop. It is trained on crops simulated for the user's dyes,
grating (nm per pixel), PSF, photons and background
(:func:`abbe.simulate.spectral.simulate_crops`), by a fixed number of steps through the one
engine, loss = cross-entropy + ``centroid_weight`` × squared centroid error (pixels²).

Two input channels: the crop standardized by its own mean and spread (the photon level is then
read from the noise, not the scale), and the wavelength of each column, scaled to 0…1 over the
pass band, as seen from the localization (a coordinate channel, Liu et al., NeurIPS 2018: the
global average pooling of a ResNet would otherwise forget where the spectrum lies, and the
localization's sub-pixel x moves the whole spectrum). No flips or rotations: wavelength runs
one way.

After training the logits are calibrated by temperature scaling on a held-out simulated set
(Guo et al., ICML 2017), and a localization whose top probability is below ``reject_below`` is
``unassigned`` (Chow's reject rule, IEEE Trans Inf Theory 16:41 (1970)).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from abbe.compute import network_on, torch_threads
from abbe.errors import ModelError
from abbe.models.base import ExportInfo, Model, ModelConfig
from abbe.nn.resnet import ResNetConfig
from abbe.simulate.spectral import (
    Dye,
    SpectralSetup,
    Spectrometer,
    load_dye,
    simulate_crops,
)
from abbe.train.config import TrainingConfig

DEFAULT_DYES = ("AF647", "CF660C", "CF680")


class DyeTable(BaseModel):
    """A dye's emission spectrum, kept in the model so that it is self-contained."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    wavelength_nm: tuple[float, ...]
    intensity: tuple[float, ...]

    @classmethod
    def of(cls, dye: Dye) -> DyeTable:
        return cls(
            name=dye.name,
            wavelength_nm=tuple(float(v) for v in dye.wavelength_nm),
            intensity=tuple(round(float(v), 6) for v in dye.intensity),
        )

    def dye(self) -> Dye:
        return Dye(self.name, np.asarray(self.wavelength_nm), np.asarray(self.intensity))


class SpectrometerSettings(BaseModel):
    """:class:`~abbe.simulate.spectral.Spectrometer` as stored in ``config.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    region_x0: int = Field(32, ge=1)
    offset_x_px: float = 32.0
    offset_y_px: float = 0.0
    reference_nm: float = Field(640.0, gt=0)
    dispersion_nm_per_px: float = Field(5.0, gt=0)
    range_nm: tuple[float, float] = (640.0, 800.0)
    crop_height: int = Field(9, ge=3)
    margin_px: int = Field(3, ge=0)

    def spectrometer(self) -> Spectrometer:
        return Spectrometer(**self.model_dump())


def _default_dyes() -> tuple[DyeTable, ...]:
    return tuple(DyeTable.of(load_dye(d)) for d in DEFAULT_DYES)


class SpectralConfig(ModelConfig):
    """Everything needed to rebuild, use and retrain a spectral classifier (``config.yaml``)."""

    version: Literal[1] = 1
    method: Literal["spectral"] = "spectral"
    dyes: tuple[DyeTable, ...] = Field(default_factory=_default_dyes)
    spectral: SpectrometerSettings = SpectrometerSettings()
    pixel_size_nm: float | None = Field(100.0, gt=0)
    psf_sigma_nm: float = Field(130.0, gt=0, description="PSF σ of the spectral image.")
    photons: tuple[float, float] = Field(
        (100.0, 1500.0), description="Spectral photons per localization trained on (uniform)."
    )
    background: tuple[float, float] = Field(
        (1.0, 10.0), description="Background in the spectral region, photons per pixel."
    )
    position_error_px: float = Field(
        0.1, ge=0, description="Spatial localization error (σ, pixels) simulated in training."
    )
    read_noise: float = Field(0.0, ge=0, description="Read noise, photons rms.")
    network: ResNetConfig = ResNetConfig(in_channels=2, n_classes=4, width=16, stages=3)
    centroid_weight: float = Field(0.2, ge=0, description="Weight of the centroid loss.")
    training: TrainingConfig = TrainingConfig(
        batch_size=64, steps_per_epoch=100, max_epochs=20, augment=False, learning_rate=2e-3
    )
    temperature: float = Field(1.0, gt=0, description="Calibration: logits are divided by it.")
    reject_below: float = Field(
        0.5, ge=0, le=1, description="A top probability below it leaves the dye unassigned."
    )
    calibration_crops: int = Field(3000, ge=100, description="Held-out crops for calibration.")

    @model_validator(mode="after")
    def _consistent(self) -> SpectralConfig:
        names = [d.name for d in self.dyes]
        if len(names) < 2 or len(set(names)) != len(names):
            raise ValueError("dyes must be at least two distinct dyes")
        if self.network.n_classes != len(names) + 1:
            raise ValueError(
                f"network.n_classes must be {len(names) + 1} (the dyes and the centroid), "
                f"got {self.network.n_classes}"
            )
        if self.network.in_channels != 2:
            raise ValueError("network.in_channels must be 2 (crop and sub-pixel position)")
        return self

    @property
    def band_px(self) -> float:
        """Columns the pass band spans."""
        s = self.spectral
        return (s.range_nm[1] - s.range_nm[0]) / s.dispersion_nm_per_px

    def prepare(self, crops: np.ndarray, frac: np.ndarray) -> np.ndarray:
        """The network input for these crops (:func:`prepare`)."""
        return prepare(crops, frac, margin_px=self.spectral.margin_px, band_px=self.band_px)

    @property
    def sigma_px(self) -> float:
        return self.psf_sigma_nm / float(self.pixel_size_nm or 100.0)

    def setup(self) -> SpectralSetup:
        return SpectralSetup(tuple(d.dye() for d in self.dyes), self.spectral.spectrometer())


def config_for(setup: SpectralSetup, **settings: Any) -> SpectralConfig:
    """A config for the dyes and spectrometer of ``setup`` (``dyes.yaml``), other settings
    as given (validated)."""
    spec = setup.spectrometer
    cfg = SpectralConfig(
        dyes=tuple(DyeTable.of(d) for d in setup.dyes),
        spectral=SpectrometerSettings(**spec.describe()),
        network=ResNetConfig(in_channels=2, n_classes=len(setup.dyes) + 1, width=16, stages=3),
    )
    return cfg.updated(**settings) if settings else cfg


def prepare(crops: np.ndarray, frac: np.ndarray, *, margin_px: int, band_px: float) -> np.ndarray:
    """Network input ``(N, 2, H, W)`` float32: each crop standardized, and the wavelength of
    each column as a fraction of the pass band (``band_px`` columns from ``margin_px + frac``).
    """
    x = np.asarray(crops, np.float32)
    mean = x.mean(axis=(1, 2), keepdims=True)
    sd = x.std(axis=(1, 2), keepdims=True) + 1e-3
    z = (x - mean) / sd
    j = np.arange(x.shape[2], dtype=np.float32)[None, :] + 0.5 - margin_px
    coord = (j - np.asarray(frac, np.float32)[:, None]) / np.float32(band_px)
    c = np.broadcast_to(coord[:, None, :], x.shape)
    return np.ascontiguousarray(np.stack([z, c], axis=1))


def _centroid_column(cfg: SpectralConfig, centroid_nm: np.ndarray, frac: np.ndarray):
    """Where a centroid lies in the crop (columns, continuous), seen from the localization."""
    s = cfg.spectral
    return (centroid_nm - s.range_nm[0]) / s.dispersion_nm_per_px + s.margin_px + frac


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class _CropBatches:
    """Batch ``i`` of epoch ``e``: crops simulated with a generator seeded by
    ``(seed, stream, e, i)``; validation batches are the same at every epoch."""

    def __init__(self, cfg: SpectralConfig, n: int, stream: int) -> None:
        self.cfg, self.n, self.stream = cfg, n, stream
        self.setup = cfg.setup()
        self.epoch = 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        import torch

        from abbe.data.patches import batch_rng

        epoch = 0 if self.stream else self.epoch
        rng = batch_rng(self.cfg.training.seed, epoch, i, self.stream)
        return _batch(self.cfg, self.setup, self.cfg.training.batch_size, rng, torch)


def _batch(cfg: SpectralConfig, setup: SpectralSetup, n: int, rng: Any, torch: Any):
    sim = simulate_crops(
        setup,
        n,
        photons=cfg.photons,
        background=cfg.background,
        sigma_px=cfg.sigma_px,
        position_error_px=cfg.position_error_px,
        read_noise=cfg.read_noise,
        seed=rng,
    )
    x = cfg.prepare(sim.crops, sim.frac)
    col = _centroid_column(cfg, sim.centroid_nm, sim.frac)
    y = np.stack([sim.dye.astype(np.float32), col.astype(np.float32)], axis=1)
    return torch.from_numpy(x), torch.from_numpy(y), torch.zeros(0)


def _loss(n_dyes: int, centroid_weight: float):
    from torch.nn import functional as F

    def loss(out, y, _weight):
        ce = F.cross_entropy(out[:, :n_dyes], y[:, 0].long())
        return ce + centroid_weight * ((out[:, n_dyes] - y[:, 1]) ** 2).mean()

    return loss


class SpectralClassifier(Model):
    """Dye probabilities and spectral centroid per sSMLM localization (see module docstring).

    Examples
    --------
    >>> setup = abbe.simulate.spectral.load_setup("dyes.yaml")  # doctest: +SKIP
    >>> model = SpectralClassifier(config_for(setup)).fit(work_dir="runs/sp")  # doctest: +SKIP
    >>> out = model.predict(crops.crops, crops.frac)  # doctest: +SKIP
    """

    method = "spectral"
    config_class = SpectralConfig
    usage = "abbe localize STACK --spectral DYES.yaml --model"

    def __init__(self, config: Any = None, network: Any = None) -> None:
        super().__init__(config, network)
        if network is None:  # built now: the same seed gives the same initial weights
            self.network = self.build_network()

    def build_network(self) -> Any:
        import torch

        from abbe.nn.resnet import ResNet

        torch.manual_seed(self.config.training.seed)
        return ResNet(self.config.network)

    @property
    def bytes_per_pixel(self) -> float:
        return 4.0 * self.config.network.width * 12

    def example_input(self, size: int | None = None) -> np.ndarray:
        s = self.config.spectral
        rng = np.random.default_rng(0)
        width = self.config.spectral.spectrometer().crop_width
        return rng.random((1, 2, s.crop_height, width), dtype=np.float32)

    def export_info(self) -> ExportInfo:
        """Not exportable: the input is a standardized crop plus a sub-pixel plane."""
        raise ModelError(
            "a spectral model cannot be exported: its input is a spectral crop standardized by "
            "abbe with a sub-pixel position plane, and its output mixes dye scores with a "
            "centroid, which no bioimage.io or ONNX consumer reads; use it through abbe "
            "localize --spectral"
        )

    @property
    def dyes(self) -> list[str]:
        return [d.name for d in self.config.dyes]

    # ------------------------------------------------------------------ training
    def fit(
        self, *, work_dir: str | Path | None = None, resume: bool = False, quiet: bool = True
    ) -> SpectralClassifier:
        """Train on simulated crops (``training.max_epochs × steps_per_epoch`` steps), then
        calibrate the temperature on ``calibration_crops`` held-out simulated crops."""
        cfg = self.config
        tr = cfg.training
        train = _CropBatches(cfg, tr.steps_per_epoch, 0)
        val = _CropBatches(cfg, tr.validation_batches, 1)
        result = self._train(
            work_dir=work_dir,
            resume=resume,
            quiet=quiet,
            datasets=(train, val),
            loss_fn=_loss(len(cfg.dyes), cfg.centroid_weight),
        )
        self.metrics.update(
            {
                "val_loss": round(result.val_loss, 5),
                "steps": result.steps,
                "training_seconds": round(result.elapsed_s, 1),
                "training_data": {
                    "dyes": self.dyes,
                    "photons": list(cfg.photons),
                    "background": list(cfg.background),
                    "spectral": cfg.spectral.model_dump(),
                },
            }
        )
        self.calibrate()
        return self

    def calibrate(self, n: int | None = None, *, seed: int | None = None) -> float:
        """Fit the temperature on simulated held-out crops (minimum negative log-likelihood,
        Guo et al. 2017) and record accuracy and calibration before and after."""
        from scipy import optimize

        from abbe.metrics.classification import balanced_accuracy
        from abbe.metrics.classification import expected_calibration_error as ece

        cfg = self.config
        n = n or cfg.calibration_crops
        rng = np.random.default_rng([cfg.training.seed if seed is None else seed, 7])
        sim = simulate_crops(
            cfg.setup(),
            n,
            photons=cfg.photons,
            background=cfg.background,
            sigma_px=cfg.sigma_px,
            position_error_px=cfg.position_error_px,
            read_noise=cfg.read_noise,
            seed=rng,
        )
        z = self.logits(sim.crops, sim.frac)[:, : len(cfg.dyes)].astype(np.float64)
        y = sim.dye

        def nll(log_t: float) -> float:
            p = _softmax(z / np.exp(log_t))
            return float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-12)))

        t = float(np.exp(optimize.minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))
        self.metrics["calibration"] = {
            "temperature": round(t, 4),
            "ece_before": round(ece(_softmax(z), y), 4),
            "ece_after": round(ece(_softmax(z / t), y), 4),
            "balanced_accuracy": round(balanced_accuracy(y, z.argmax(1)), 4),
            "n": int(n),
        }
        self.config = self.config.updated(temperature=t)
        return t

    # ------------------------------------------------------------------ prediction
    def logits(
        self,
        crops: np.ndarray,
        frac: np.ndarray,
        batch: int = 1024,
        *,
        device: str | None = "auto",
        threads: int | None = None,
    ) -> np.ndarray:
        """Raw outputs ``(N, n_dyes + 1)``: dye logits, then the centroid's crop column."""
        import torch

        x = self.config.prepare(crops, frac)
        net = self.network.eval()
        out = []
        with network_on(net, device) as dev, torch_threads(threads), torch.inference_mode():
            for i in range(0, len(x), batch):
                out.append(net(torch.from_numpy(x[i : i + batch]).to(dev)).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.dyes) + 1), np.float32)

    def predict(self, crops: np.ndarray, frac: np.ndarray, **compute: Any) -> dict[str, Any]:
        """Calibrated dye probabilities, the assigned dye (``unassigned`` below
        ``reject_below``) and the centroid (nm) of each crop.

        Parameters
        ----------
        crops : (N, H, W) spectral crops in photons (:func:`abbe.localize.spectral.
            spectral_crops`).
        frac : (N,) where the pass band starts in each crop's first column.

        Returns
        -------
        dict with ``probabilities`` (N, n_dyes), ``dye`` (N,) names, ``centroid_nm`` (N,).
        """
        from abbe.localize.spectral import UNASSIGNED

        cfg = self.config
        out = self.logits(crops, frac, **compute).astype(np.float64)
        k = len(cfg.dyes)
        prob = _softmax(out[:, :k] / cfg.temperature)
        names = np.array(self.dyes, dtype=object)[prob.argmax(1)] if len(prob) else np.array([])
        names = np.where(prob.max(1) < cfg.reject_below, UNASSIGNED, names) if len(prob) else names
        s = cfg.spectral
        col = out[:, k]
        centroid = s.range_nm[0] + (col - s.margin_px - np.asarray(frac)) * s.dispersion_nm_per_px
        return {"probabilities": prob, "dye": names, "centroid_nm": centroid}

    def check_setup(self, setup: SpectralSetup, where: Any = None) -> None:
        """Refuse a ``dyes.yaml`` that differs from what the model was trained for."""
        from abbe.errors import InputError

        spec = self.config.spectral.spectrometer()
        if setup.names != self.dyes:
            raise InputError(
                f"the model was trained for dyes {', '.join(self.dyes)}, the dyes file lists "
                f"{', '.join(setup.names)}; train one for these (abbe train spectral --dyes …)",
                where,
            )
        if setup.spectrometer.describe() != spec.describe():
            raise InputError(
                "the model was trained for another spectrometer (spectral: "
                f"{spec.describe()}); train one for this dyes file (abbe train spectral)",
                where,
            )

    def __repr__(self) -> str:
        return f"SpectralClassifier(dyes={self.dyes})"


def train_for(
    setup: SpectralSetup,
    *,
    steps: int,
    seed: int = 0,
    work_dir: str | Path | None = None,
    quiet: bool = True,
    **settings: Any,
) -> SpectralClassifier:
    """A spectral model for ``setup`` trained by ``steps`` steps (``steps_per_epoch`` 100 or
    fewer), then calibrated."""
    per_epoch = min(100, steps)
    epochs = max(1, round(steps / per_epoch))
    training = {"seed": seed, "steps_per_epoch": per_epoch, "max_epochs": epochs}
    training.update(settings.pop("training", {}))
    cfg = config_for(setup, training=training, **settings)
    return SpectralClassifier(cfg).fit(work_dir=work_dir, quiet=quiet)


__all__: Sequence[str] = [
    "SpectralClassifier",
    "SpectralConfig",
    "config_for",
    "prepare",
    "train_for",
]
