"""Super-resolution models (DFCAN, RCAN, Res-UNet, and GAN-trained generators): from a
diffraction-limited image to one with ``scale``× smaller pixels and finer resolution.

A :class:`SuperResolution` is a restoration model whose network enlarges its input: tiled
prediction, normalization, the out-of-distribution check, save and load are shared with CARE.
It trains on pairs (input, target ``scale``× larger) given by the user, made by the crappifier
from high-resolution images, or simulated (:mod:`abbe.simulate.superres`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from abbe.data.normalize import PercentileNorm
from abbe.models.base import UNET_2015, Citation, ExportInfo, ModelConfig, revalidated
from abbe.nn.losses import SRLoss, content_loss
from abbe.nn.superres import SRNetConfig
from abbe.restore.care import CARE
from abbe.restore.model import RestorationModel
from abbe.simulate.superres import SRPairConfig
from abbe.train.config import TrainingConfig

QIAO_2021 = Citation(
    "Qiao et al. Evaluation and development of deep neural networks for image "
    "super-resolution in optical microscopy (DFCAN). Nat Methods 18:194 (2021).",
    doi="10.1038/s41592-020-01048-5",
)
RCAN_2018 = Citation(
    "Zhang et al. Image super-resolution using very deep residual channel attention "
    "networks (RCAN). ECCV 2018.",
    doi="10.1007/978-3-030-01234-2_18",
)
#: The papers behind each generator architecture (cited by exported packages).
ARCH_CITATIONS: dict[str, tuple[Citation, ...]] = {
    "dfcan": (QIAO_2021,),
    "rcan": (RCAN_2018, QIAO_2021),
    "resunet": (UNET_2015, QIAO_2021),
}


class SuperResConfig(ModelConfig):
    """Everything needed to rebuild, use and retrain a super-resolution model (config.yaml)."""

    version: Literal[1] = 1
    method: Literal["superres"] = "superres"
    axes: Literal["YX"] = "YX"
    network: SRNetConfig = SRNetConfig()
    loss: SRLoss = SRLoss()
    gan: bool = Field(False, description="Train against a PatchGAN discriminator.")
    normalization: PercentileNorm = PercentileNorm(low=0.5, high=99.9)
    training: TrainingConfig = TrainingConfig(patch_size=32, batch_size=8, learning_rate=5e-4)
    simulation: SRPairConfig | None = Field(
        None, description="How the training pairs were simulated (None: user pairs)."
    )
    pixel_size_nm: float | None = Field(None, gt=0, description="Input pixel size trained for.")
    uncertainty_scale: float = 1.0
    uncertainty_floor: float = 0.0
    uncertainty_noisier: float = 0.0
    uncertainty_cleaner: float = 0.0
    uncertainty_noise_reference: float = 1.0

    @model_validator(mode="after")
    def _consistent(self) -> SuperResConfig:
        if self.gan and self.loss.adversarial <= 0:
            raise ValueError("GAN training needs loss.adversarial > 0")
        if self.simulation is not None and self.simulation.scale != self.network.scale:
            raise ValueError(
                f"simulation.scale {self.simulation.scale} differs from network.scale "
                f"{self.network.scale}"
            )
        return self

    def with_training(self, **changes: Any) -> SuperResConfig:
        """A copy with some training settings changed (validated)."""
        return self.updated(training=changes)


def default_config(arch: str, *, scale: int = 2, gan: bool = False) -> SuperResConfig:
    """The settings abbe trains each architecture with on a CPU budget.

    DFCAN's loss is MSE + 0.1·(1 − SSIM) (Qiao et al. 2021); RCAN's is L1 (Chen et al. 2021);
    the Res-UNet and the GAN generator (a Res-UNet, as pix2pix uses a U-Net) add a Fourier term.
    """
    net = SRNetConfig(arch=arch, scale=scale)  # type: ignore[arg-type]
    losses = {
        "dfcan": SRLoss(mse=1.0, ssim=0.1),
        "rcan": SRLoss(mse=0.0, l1=1.0, ssim=0.0),
        "resunet": SRLoss(mse=1.0, ssim=0.1, fourier=0.05),
    }
    loss = losses[arch]
    if gan:
        loss = revalidated(loss, {"adversarial": 0.01})
    return SuperResConfig(network=net, loss=loss, gan=gan)


class SuperResolution(CARE):
    """A super-resolution network with its normalization, trained like CARE on pairs whose
    targets have ``scale``× the pixels (:meth:`fit`), or on simulated pairs
    (:meth:`fit_simulated`).

    Examples
    --------
    >>> sr = SuperResolution(default_config("dfcan"))                      # doctest: +SKIP
    >>> sr.fit_simulated(SRPairConfig(), n_pairs=256)                      # doctest: +SKIP
    >>> big = sr.predict(widefield_image, axes="YX")  # 2× the pixels      # doctest: +SKIP
    """

    method = "superres"
    config_class = SuperResConfig  # type: ignore[assignment]
    tags = ("super-resolution", "restoration")

    def __init__(self, config: SuperResConfig | None = None) -> None:
        RestorationModel.__init__(self, config or SuperResConfig())  # type: ignore[arg-type]

    def build_network(self) -> Any:
        from abbe.nn.superres import build_generator

        return build_generator(self.config.network)

    @property
    def bytes_per_pixel(self) -> float:
        """Peak activation memory per *input* pixel: features at the input size plus the
        upsampled ones (s² times more pixels)."""
        cfg = self.config.network
        return 4.0 * cfg.width * (8 + 6 * cfg.scale**2)

    def export_info(self) -> ExportInfo:
        """As a restoration model's, with ``scale``× the pixels out and its architecture's
        papers."""
        info = super().export_info()
        return dataclasses.replace(info, citations=ARCH_CITATIONS[self.config.network.arch])

    def training_extras(self) -> dict[str, Any]:
        extras: dict[str, Any] = {"loss_fn": content_loss(self.config.loss)}
        if self.config.gan:
            from abbe.nn.superres import PatchDiscriminator

            extras["discriminator"] = PatchDiscriminator()
            extras["adversarial_weight"] = self.config.loss.adversarial
        return extras

    def fit_simulated(
        self,
        simulation: SRPairConfig | None = None,
        *,
        n_pairs: int = 256,
        n_validation: int = 16,
        work_dir: str | Path | None = None,
        resume: bool = False,
        quiet: bool = True,
    ) -> SuperResolution:
        """Simulate ``n_pairs`` training pairs (and held-out ones) and train on them.

        Parameters
        ----------
        simulation : pair settings (default: the config's, else :class:`SRPairConfig`()).
        n_pairs, n_validation : fields simulated for training and validation (seeds from
            ``training.seed``; validation seeds differ from training seeds).
        """
        from abbe.simulate.superres import simulate_pairs

        sim = simulation or self.config.simulation or SRPairConfig(scale=self.scale)
        seed = self.config.training.seed
        xs, ys = simulate_pairs(sim, n_pairs, seed=seed)
        vx, vy = simulate_pairs(sim, n_validation, seed=seed + 1_000_003)
        self.config = self.config.updated(simulation=sim, pixel_size_nm=sim.pixel_size_nm)
        provenance = {
            "simulated": "abbe.simulate.superres.sr_pair",
            "pairs": n_pairs,
            "validation_pairs": n_validation,
            "seed": seed,
        }
        return self.fit(
            xs,
            ys,
            axes="YX",
            validation=(vx, vy),
            work_dir=work_dir,
            resume=resume,
            quiet=quiet,
            training_data=provenance,
        )

    def __repr__(self) -> str:
        n = self.config.network
        return f"SuperResolution(name={self.config.name!r}, arch={n.arch!r}, scale={n.scale})"
