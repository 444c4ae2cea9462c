"""Super-resolution networks: DFCAN, RCAN and Res-UNet with pixel-shuffle upsampling, and a
PatchGAN discriminator for adversarial training.

Every generator maps a normalized ``(N, 1, Y, X)`` image to ``(N, 1, Y·s, X·s)`` (s = 1, 2 or 4)
and learns a correction to the bilinear upsampling of its input, so an untrained network starts
from interpolation rather than from zero.

References
----------
Qiao et al., "Evaluation and development of deep neural networks for image super-resolution in
optical microscopy", Nat Methods 18:194 (2021) (DFCAN: Fourier channel attention; DFGAN).
Zhang et al., "Image super-resolution using very deep residual channel attention networks",
ECCV 2018 (RCAN); Chen et al., Nat Methods 18:678 (2021) (3D-RCAN for microscopy).
Fang et al., "Deep learning-based point-scanning super-resolution imaging", Nat Methods 18:406
(2021) (PSSR: Res-UNet trained on crappified pairs).
Shi et al., CVPR 2016 (sub-pixel convolution, pixel shuffle).
Isola et al., CVPR 2017 (pix2pix: U-Net generator, PatchGAN discriminator).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.nn import functional as F

Architecture = Literal["dfcan", "rcan", "resunet"]


class SRNetConfig(BaseModel):
    """Architecture of a super-resolution generator; stored in the model's config.yaml.

    The attributes ``dims``, ``out_channels``, ``probabilistic``, ``multiple`` and
    ``receptive_radius`` let the restoration model's tiled prediction use it unchanged.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    arch: Architecture = "rcan"
    scale: Literal[1, 2, 4] = 2
    width: int = Field(32, ge=4, description="Feature channels.")
    groups: int = Field(2, ge=1, description="Residual groups (DFCAN, RCAN).")
    blocks: int = Field(3, ge=1, description="Attention blocks per group (DFCAN, RCAN).")
    reduction: int = Field(4, ge=1, description="Channel squeeze ratio of the attention.")
    fft_power: float = Field(0.8, gt=0, description="DFCAN: attention from |FFT|^power.")
    depth: int = Field(2, ge=1, le=4, description="Res-UNet: downsampling steps.")

    dims: Literal[2] = 2
    in_channels: Literal[1] = 1
    out_channels: Literal[1] = 1
    probabilistic: Literal[False] = False

    @property
    def multiple(self) -> tuple[int, int]:
        m = 2**self.depth if self.arch == "resunet" else 1
        return (m, m)

    @property
    def receptive_radius(self) -> int:
        """Context (input pixels per side) for tiled prediction.

        The convolutions reach a few dozen pixels; the channel attention pools over the whole
        window, so the margin is generous: windows then see enough of their surroundings that
        the pooled statistics barely change between tiles.
        """
        if self.arch == "resunet":
            convs = sum(4 * 2**level for level in range(self.depth)) + 2 * 2**self.depth
            return max(32, convs + 4)
        convs = 2 + self.groups * (2 * self.blocks + 1) + 2
        return max(32, convs)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in build_generator(self).parameters())


# ------------------------------------------------------------------------------------ blocks
class ChannelAttention(nn.Module):
    """Squeeze-and-excitation: pool each channel to one number, weigh channels by an MLP."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1)
        )

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(-2, -1), keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.mlp(self.pooled(x)))


class FourierChannelAttention(ChannelAttention):
    """DFCAN's attention: the weights come from each channel's power spectrum, which separates
    channels carrying high-frequency detail from those carrying smooth background."""

    def __init__(self, channels: int, reduction: int, power: float) -> None:
        super().__init__(channels, reduction)
        self.power = power
        self.spectrum = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        # |FFT|^γ compresses the dominant low frequencies so detail channels get a say.
        if torch.onnx.is_in_onnx_export():
            # ONNX (opset 17, legacy exporter) has no fft2: the same spectrum by DFT matrices.
            spectrum = shifted_dft_amplitude(x.float())
        else:
            spectrum = torch.fft.fftshift(
                torch.fft.fft2(x.float(), norm="ortho").abs(), dim=(-2, -1)
            )
        amplitude = (spectrum.clamp_min(1e-8) ** self.power).to(x.dtype)
        return self.spectrum(amplitude).mean(dim=(-2, -1), keepdim=True)


def _shifted_dft(ones: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine and sine parts of the orthonormal DFT matrix, rows in fftshift order, for the
    length of ``ones`` (built from tensors only, so an ONNX graph keeps that length dynamic)."""
    n = ones.sum()
    j = torch.cumsum(ones, 0) - 1
    k = j - torch.div(n, 2, rounding_mode="floor")  # fftshift: frequencies −n/2 … n/2 − 1
    # k·j mod n is exact in float32 for n < 4096 and keeps the angle small.
    angle = (2 * torch.pi / n) * torch.remainder(k[:, None] * j[None, :], n)
    scale = torch.rsqrt(n)
    return torch.cos(angle) * scale, torch.sin(angle) * scale


def shifted_dft_amplitude(x: torch.Tensor) -> torch.Tensor:
    """``fftshift(|fft2(x, norm="ortho")|)`` over the last two axes of a real ``x``, by matrix
    products (for ONNX export; the same values as the FFT to float32 rounding)."""
    ch, sh = _shifted_dft(torch.ones_like(x[0, 0, :, 0]))
    cw, sw = _shifted_dft(torch.ones_like(x[0, 0, 0, :]))
    # F = W_h X W_wᵀ with W = C − iS.
    a, b = ch @ x, sh @ x
    real = a @ cw.T - b @ sw.T
    imag = b @ cw.T + a @ sw.T
    return torch.sqrt(real * real + imag * imag)


class AttentionBlock(nn.Module):
    """conv–act–conv, reweighted by channel attention, plus the block's input."""

    def __init__(self, width: int, attention: nn.Module, act: type[nn.Module]) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1),
            act(),
            nn.Conv2d(width, width, 3, padding=1),
            act() if act is nn.GELU else nn.Identity(),
        )
        self.attention = attention

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.attention(self.body(x))


class ResidualGroup(nn.Sequential):
    """Attention blocks then a convolution, with a skip over the whole group."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + super().forward(x)


def _upsampler(width: int, scale: int) -> nn.Module:
    """Sub-pixel convolution: ×2 steps of conv to 4·width channels and pixel shuffle."""
    layers: list[nn.Module] = []
    for _ in range({1: 0, 2: 1, 4: 2}[scale]):
        layers += [nn.Conv2d(width, 4 * width, 3, padding=1), nn.PixelShuffle(2)]
    return nn.Sequential(*layers)


class _Generator(nn.Module):
    """Shared frame: output = bilinear ↑input + tail(upsample(features(input)))."""

    def __init__(self, config: SRNetConfig) -> None:
        super().__init__()
        self.config = config

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.config.scale
        base = x if s == 1 else F.interpolate(x, scale_factor=s, mode="bilinear")
        return base + self.tail(self.up(self.features(x)))


class AttentionSR(_Generator):
    """RCAN (squeeze-excitation attention, ReLU) or DFCAN (Fourier attention, GELU)."""

    def __init__(self, config: SRNetConfig) -> None:
        super().__init__(config)
        w = config.width
        fourier = config.arch == "dfcan"
        act: type[nn.Module] = nn.GELU if fourier else nn.ReLU

        def attention() -> nn.Module:
            if fourier:
                return FourierChannelAttention(w, config.reduction, config.fft_power)
            return ChannelAttention(w, config.reduction)

        self.head = nn.Sequential(nn.Conv2d(1, w, 3, padding=1), act())
        groups = []
        for _ in range(config.groups):
            blocks: list[nn.Module] = [
                AttentionBlock(w, attention(), act) for _ in range(config.blocks)
            ]
            groups.append(ResidualGroup(*blocks, nn.Conv2d(w, w, 3, padding=1)))
        self.body = nn.Sequential(*groups, nn.Conv2d(w, w, 3, padding=1))
        self.up = _upsampler(w, config.scale)
        self.tail = nn.Sequential(act(), nn.Conv2d(w, 1, 3, padding=1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        return h + self.body(h)


class _ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1),
        )
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.skip(x) + self.body(x))


class ResUNet(_Generator):
    """U-Net with residual blocks at each level (PSSR's Res-UNet, small), then pixel shuffle."""

    def __init__(self, config: SRNetConfig) -> None:
        super().__init__(config)
        w = config.width
        widths = [w * 2**level for level in range(config.depth + 1)]
        self.down = nn.ModuleList()
        cin = 1
        for level in range(config.depth):
            self.down.append(_ResBlock(cin, widths[level]))
            cin = widths[level]
        self.bottom = _ResBlock(cin, widths[-1])
        self.upconv = nn.ModuleList()
        for level in reversed(range(config.depth)):
            self.upconv.append(_ResBlock(widths[level + 1] + widths[level], widths[level]))
        self.up = _upsampler(w, config.scale)
        self.tail = nn.Sequential(nn.ReLU(), nn.Conv2d(w, 1, 3, padding=1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for block in self.down:
            h = block(h)
            skips.append(h)
            h = F.max_pool2d(h, 2)
        h = self.bottom(h)
        for block, skip in zip(self.upconv, reversed(skips), strict=True):
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = block(torch.cat([h, skip], dim=1))
        return h


def build_generator(config: SRNetConfig) -> nn.Module:
    """The generator named by ``config.arch``."""
    if config.arch == "resunet":
        return ResUNet(config)
    return AttentionSR(config)


class PatchDiscriminator(nn.Module):
    """PatchGAN: judges overlapping patches (≈ 34 px of the high-resolution image) as real or
    generated, given the bilinear-upsampled input as a condition (pix2pix)."""

    def __init__(self, width: int = 32, layers: int = 3) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        cin = 2
        for i in range(layers):
            cout = width * 2**i
            mods += [nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            cin = cout
        mods += [nn.Conv2d(cin, cin, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        mods.append(nn.Conv2d(cin, 1, 3, padding=1))
        self.net = nn.Sequential(*mods)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        cond = F.interpolate(condition, size=image.shape[-2:], mode="bilinear")
        return self.net(torch.cat([cond, image], dim=1))
