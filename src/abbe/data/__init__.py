"""Training data: normalization, patch sampling, augmentation and N2V masking (numpy only)."""

from abbe.data.normalize import (
    PercentileNorm,
    denormalize,
    normalize,
    normalize_pair,
    percentile_range,
)
from abbe.data.patches import N2VMasking, PatchPool, augment_dihedral, batch_rng, n2v_mask

__all__ = [
    "N2VMasking",
    "PatchPool",
    "PercentileNorm",
    "augment_dihedral",
    "batch_rng",
    "denormalize",
    "n2v_mask",
    "normalize",
    "normalize_pair",
    "percentile_range",
]
