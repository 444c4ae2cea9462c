"""A configurable U-Net for image restoration, its N2V2 variant and a probabilistic (Laplace) head.

References
----------
Ronneberger, Fischer & Brox, MICCAI 2015 (U-Net).
Weigert et al., Nat Methods 15:1090 (2018) (CARE: residual U-Net, Laplace likelihood).
Höck et al., ECCV Workshops 2022 (N2V2: blur-pool downsampling, no top skip connection).
Zhang, ICML 2019 (anti-aliased max-blur-pool).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn
from torch.nn import functional as F


class UNetConfig(BaseModel):
    """Architecture of a restoration U-Net; stored in each model's config.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dims: Literal[2, 3] = 2
    in_channels: int = Field(1, ge=1)
    out_channels: int = Field(1, ge=1)
    depth: int = Field(2, ge=1, le=5, description="Number of downsampling steps.")
    width: int = Field(32, ge=4, description="Channels at the first level; doubled per level.")
    kernel_size: int = Field(3, ge=1, description="Odd convolution kernel size.")
    convs_per_level: int = Field(2, ge=1)
    residual: bool = Field(True, description="Predict a correction added to the input.")
    batch_norm: bool = False
    n2v2: bool = Field(False, description="Blur-pool downsampling and no top skip (N2V2).")
    probabilistic: bool = Field(False, description="Also predict a Laplace scale per pixel.")
    pool_z: bool = Field(True, description="3D only: downsample Z as well as Y and X.")
    taper: bool = Field(
        False,
        description="The last convolution of the bottom and of each decoder block outputs the "
        "next level's width (CSBDeep/CAREamics style): fewer parameters and operations.",
    )

    @model_validator(mode="after")
    def _odd_kernel(self) -> UNetConfig:
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")
        if self.residual and self.in_channels != self.out_channels:
            raise ValueError("a residual U-Net needs as many input as output channels")
        if self.residual and self.n2v2:
            # Without the top skip, full-resolution layers never see the input: a residual
            # connection would add the per-pixel noise back, uncorrectable.
            raise ValueError(
                "N2V2 (no top skip connection) cannot be residual; set residual: false"
            )
        return self

    @property
    def multiple(self) -> tuple[int, ...]:
        """Each spatial size must be a multiple of these (Z first for 3D)."""
        m = 2**self.depth
        if self.dims == 2:
            return (m, m)
        return (m if self.pool_z else 1, m, m)

    @property
    def receptive_radius(self) -> int:
        """Pixels of context on each side that influence one output pixel (an upper bound).

        Each k×k convolution at level l (scale 2^l) reaches (k−1)/2·2^l further; each pooling
        step adds up to 2^l more (blur-pool an extra 2^l for its blur).
        """
        half = (self.kernel_size - 1) // 2
        radius = 0
        for level in range(self.depth):
            scale = 2**level
            radius += 2 * self.convs_per_level * half * scale  # encoder and decoder convs
            radius += scale * (2 if self.n2v2 else 1)  # pooling window
        radius += self.convs_per_level * half * 2**self.depth  # bottom
        return radius

    def n_parameters(self) -> int:
        return sum(p.numel() for p in UNet(self).parameters())


def _conv(dims: int) -> type[nn.Module]:
    return nn.Conv2d if dims == 2 else nn.Conv3d


def _norm(dims: int) -> type[nn.Module]:
    return nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d


class _Block(nn.Sequential):
    """``n`` convolutions, each followed by optional batch norm and a ReLU.

    ``last`` sets the output width of the final convolution (default ``cout``).
    """

    def __init__(self, cin: int, cout: int, cfg: UNetConfig, last: int | None = None) -> None:
        layers: list[nn.Module] = []
        n = cfg.convs_per_level
        for i in range(n):
            width = last if (last is not None and i == n - 1) else cout
            layers.append(
                _conv(cfg.dims)(
                    cin if i == 0 else cout,
                    width,
                    cfg.kernel_size,
                    padding=cfg.kernel_size // 2,
                    bias=not cfg.batch_norm,
                )
            )
            if cfg.batch_norm:
                layers.append(_norm(cfg.dims)(width))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class BlurPool(nn.Module):
    """Max-blur-pool: dense max over 2×2, then a [1, 2, 1] binomial blur with stride 2."""

    def __init__(self, channels: int, dims: int, pool_z: bool = True) -> None:
        super().__init__()
        k1 = torch.tensor([1.0, 2.0, 1.0])
        if dims == 2:
            kernel = torch.outer(k1, k1)
        else:
            kz = k1 if pool_z else torch.tensor([0.0, 1.0, 0.0])
            kernel = kz[:, None, None] * torch.outer(k1, k1)[None]
        kernel = kernel / kernel.sum()
        self.register_buffer("kernel", kernel.expand(channels, 1, *kernel.shape).contiguous())
        self.dims, self.channels, self.pool_z = dims, channels, pool_z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dims == 2:
            x = F.max_pool2d(F.pad(x, (0, 1, 0, 1), mode="replicate"), 2, stride=1)
            return F.conv2d(
                F.pad(x, (1, 1, 1, 1), mode="reflect"), self.kernel, stride=2, groups=self.channels
            )
        window = (2 if self.pool_z else 1, 2, 2)
        pad = (0, 1, 0, 1, 0, 1 if self.pool_z else 0)
        x = F.max_pool3d(F.pad(x, pad, mode="replicate"), window, stride=1)
        stride = (2 if self.pool_z else 1, 2, 2)
        return F.conv3d(
            F.pad(x, (1, 1, 1, 1, 1, 1), mode="reflect"),
            self.kernel,
            stride=stride,
            groups=self.channels,
        )


class UNet(nn.Module):
    """U-Net for restoration (2D or 3D).

    With ``probabilistic``, the output has ``2·out_channels`` channels: the mean, then the log of
    the Laplace scale b (so that ``|μ − y|/b + log b`` is the negative log-likelihood).
    """

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = cfg = config
        conv = _conv(cfg.dims)
        widths = [cfg.width * 2**level for level in range(cfg.depth + 1)]
        self.down = nn.ModuleList()
        self.pool = nn.ModuleList()
        cin = cfg.in_channels
        for level in range(cfg.depth):
            self.down.append(_Block(cin, widths[level], cfg))
            if cfg.n2v2:
                self.pool.append(BlurPool(widths[level], cfg.dims, cfg.pool_z))
            else:
                window = 2 if cfg.dims == 2 or cfg.pool_z else (1, 2, 2)
                pool = nn.MaxPool2d(2) if cfg.dims == 2 else nn.MaxPool3d(window)
                self.pool.append(pool)
            cin = widths[level]
        below = widths[cfg.depth - 1] if cfg.taper else None
        self.bottom = _Block(cin, widths[cfg.depth], cfg, last=below)
        self.up = nn.ModuleList()
        for level in reversed(range(cfg.depth)):
            skip = 0 if (cfg.n2v2 and level == 0) else widths[level]
            incoming = widths[level] if cfg.taper else widths[level + 1]
            last = widths[max(level - 1, 0)] if cfg.taper else None
            self.up.append(_Block(incoming + skip, widths[level], cfg, last=last))
        n_out = cfg.out_channels * (2 if cfg.probabilistic else 1)
        self.head = conv(widths[0], n_out, 1)
        self._scale = (2.0, 2.0) if cfg.dims == 2 else ((2.0 if cfg.pool_z else 1.0), 2.0, 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        skips = []
        h = x
        for block, pool in zip(self.down, self.pool, strict=True):
            h = block(h)
            skips.append(h)
            h = pool(h)
        h = self.bottom(h)
        for i, block in enumerate(self.up):
            level = cfg.depth - 1 - i
            h = F.interpolate(h, scale_factor=self._scale, mode="nearest")
            if not (cfg.n2v2 and level == 0):
                h = torch.cat([h, skips[level]], dim=1)
            h = block(h)
        out = self.head(h)
        if cfg.residual:
            n = cfg.out_channels
            mean = out[:, :n] + x
            out = torch.cat([mean, out[:, n:]], dim=1) if cfg.probabilistic else mean
        return out


def fuse_batch_norm(model: nn.Module) -> nn.Module:
    """Fold each eval-mode batch norm into the convolution before it (inference only).

    Saves a pass over every activation; the result is numerically the same network.
    """
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        layers = list(module)
        fused: list[nn.Module] = []
        i = 0
        while i < len(layers):
            layer = layers[i]
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if isinstance(layer, nn.Conv2d | nn.Conv3d) and isinstance(
                nxt, nn.BatchNorm2d | nn.BatchNorm3d
            ):
                fused.append(_fold(layer, nxt))
                i += 2
            else:
                fused.append(layer)
                i += 1
        for name in list(module._modules):
            del module._modules[name]
        for j, layer in enumerate(fused):
            module.add_module(str(j), layer)
    return model


def _fold(conv: nn.Module, bn: nn.Module) -> nn.Module:
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    new = type(conv)(
        conv.in_channels, conv.out_channels, conv.kernel_size, padding=conv.padding, bias=True
    )
    shape = (-1,) + (1,) * (conv.weight.dim() - 1)
    new.weight.data = conv.weight.detach() * scale.reshape(shape)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    new.bias.data = (bias - bn.running_mean) * scale + bn.bias.detach()
    return new
