"""A small ResNet for classifying images or object crops, with access to its last feature maps
for Grad-CAM saliency.

He et al., "Deep residual learning for image recognition", CVPR 2016.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.nn import functional as F


class ResNetConfig(BaseModel):
    """Architecture of the classifier; stored in the model's config.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    in_channels: int = Field(1, ge=1)
    n_classes: int = Field(2, ge=2)
    width: int = Field(16, ge=4, description="Channels of the first stage; doubled per stage.")
    stages: int = Field(3, ge=1, le=5, description="Stages; each after the first halves Y, X.")
    blocks: int = Field(1, ge=1, description="Residual blocks per stage.")


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with batch norm, added to a (projected) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResNet(nn.Module):
    """Stem, stages of residual blocks, global average pooling, a linear layer → logits."""

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        self.config = cfg = config
        w = cfg.width
        self.stem = nn.Sequential(
            nn.Conv2d(cfg.in_channels, w, 3, padding=1, bias=False),
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        cin = w
        for s in range(cfg.stages):
            cout = w * 2**s
            for b in range(cfg.blocks):
                layers.append(BasicBlock(cin, cout, stride=2 if (s > 0 and b == 0) else 1))
                cin = cout
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(cin, cfg.n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's feature maps (what Grad-CAM weighs)."""
        return self.body(self.stem(x))

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features.mean(dim=(-2, -1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.features(x)
        # Kept for losses that look at where the evidence lies (training only).
        self.last_features = feats if self.training else None
        return self.classify(feats)

    def class_maps(self, features: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Class activation maps ``(N, h, w)``: each class's linear weights applied to the
        feature maps at every position (with global average pooling and a linear head this
        is, up to a constant, Grad-CAM before its ReLU; Zhou et al., CVPR 2016)."""
        w = self.head.weight[classes]  # (N, C)
        return torch.einsum("nc,nchw->nhw", w, features)
