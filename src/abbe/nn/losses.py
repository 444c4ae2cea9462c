"""Differentiable image losses for training (PyTorch): SSIM, MS-SSIM, a Fourier-domain loss and
their weighted sum with MSE and L1.

Wang et al., "Image quality assessment: from error visibility to structural similarity", IEEE TIP
13:600 (2004); Wang, Simoncelli & Bovik, "Multiscale structural similarity", Asilomar 2003.
Qiao et al., Nat Methods 18:194 (2021) (MSE + 0.1·(1 − SSIM) for DFCAN).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch.nn import functional as F

# MS-SSIM weights of the five scales (Wang, Simoncelli & Bovik 2003).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _gaussian_window(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    t = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def _ssim_terms(
    x: torch.Tensor, y: torch.Tensor, data_range: float, size: int = 11, sigma: float = 1.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image mean SSIM and mean contrast-structure term (valid windows only)."""
    size = min(size, x.shape[-1], x.shape[-2])
    win = _gaussian_window(size, sigma * size / 11, x.device).to(x.dtype)
    c = x.shape[1]
    win = win.expand(c, 1, size, size)

    def blur(a: torch.Tensor) -> torch.Tensor:
        return F.conv2d(a, win, groups=c)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cov = blur(x * y) - mx * my
    cs = (2 * cov + c2) / (vx + vy + c2)
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    return (lum * cs).mean(dim=(1, 2, 3)), cs.mean(dim=(1, 2, 3))


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM over a batch of ``(N, C, Y, X)`` images (Gaussian window σ 1.5, 11 px)."""
    return _ssim_terms(x, y, data_range)[0].mean()


def ms_ssim(
    x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, scales: int | None = None
) -> torch.Tensor:
    """Multi-scale SSIM; as many of the five scales as the patch size allows (≥ 16 px at the
    coarsest), with the weights renormalized."""
    edge = min(x.shape[-2:])
    n = scales or max(1, min(5, int(torch.log2(torch.tensor(edge / 16.0)).item()) + 1))
    weights = torch.tensor(MS_SSIM_WEIGHTS[:n], device=x.device)
    weights = weights / weights.sum()
    values = []
    for level in range(n):
        s, cs = _ssim_terms(x, y, data_range)
        # Negative contrast-structure would make the fractional power undefined.
        values.append((s if level == n - 1 else cs).clamp_min(1e-6))
        if level < n - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    stacked = torch.stack(values, dim=0)  # (scales, N)
    return torch.prod(stacked ** weights[:, None], dim=0).mean()


def fourier_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the (orthonormal) spectra: every spatial frequency counts
    alike, so the fine detail that pixel losses underweigh is trained for."""
    d = torch.fft.rfft2(x.float() - y.float(), norm="ortho")
    return d.abs().mean()


class SRLoss(BaseModel):
    """Weights of the terms of a super-resolution loss (adversarial: GAN training only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mse: float = Field(1.0, ge=0)
    l1: float = Field(0.0, ge=0)
    ssim: float = Field(0.1, ge=0, description="Weight of 1 − SSIM.")
    ms_ssim: float = Field(0.0, ge=0, description="Weight of 1 − MS-SSIM.")
    fourier: float = Field(0.0, ge=0)
    adversarial: float = Field(0.0, ge=0, description="Generator's GAN term (GAN training).")

    @model_validator(mode="after")
    def _something(self) -> SRLoss:
        if self.mse + self.l1 + self.ssim + self.ms_ssim + self.fourier == 0:
            raise ValueError("the loss needs at least one non-adversarial term with weight > 0")
        return self


def content_loss(
    weights: SRLoss,
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """``loss(output, target, weight)`` as the engine calls it (``weight`` unused)."""

    def loss(out: torch.Tensor, target: torch.Tensor, _weight: torch.Tensor) -> torch.Tensor:
        total = out.new_zeros(())
        if weights.mse:
            total = total + weights.mse * F.mse_loss(out, target)
        if weights.l1:
            total = total + weights.l1 * F.l1_loss(out, target)
        if weights.ssim:
            total = total + weights.ssim * (1 - ssim(out, target))
        if weights.ms_ssim:
            total = total + weights.ms_ssim * (1 - ms_ssim(out, target))
        if weights.fourier:
            total = total + weights.fourier * fourier_loss(out, target)
        return total

    return loss
