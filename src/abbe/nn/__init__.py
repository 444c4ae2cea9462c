"""Network architectures and losses (PyTorch)."""

from abbe.nn.unet import BlurPool, UNet, UNetConfig, fuse_batch_norm

__all__ = ["BlurPool", "UNet", "UNetConfig", "fuse_batch_norm"]
