"""Network architectures and losses (PyTorch)."""

from abbe.nn.losses import SRLoss, fourier_loss, ms_ssim, ssim
from abbe.nn.superres import PatchDiscriminator, SRNetConfig, build_generator
from abbe.nn.unet import BlurPool, UNet, UNetConfig, fuse_batch_norm

__all__ = [
    "BlurPool",
    "PatchDiscriminator",
    "SRLoss",
    "SRNetConfig",
    "UNet",
    "UNetConfig",
    "build_generator",
    "fourier_loss",
    "fuse_batch_norm",
    "ms_ssim",
    "ssim",
]
