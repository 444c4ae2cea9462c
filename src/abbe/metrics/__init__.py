"""Measures of quality: image metrics now; resolution, SMLM and segmentation metrics join here."""

from abbe.metrics.image import (
    ImageScores,
    affine_fit,
    evaluate,
    ms_ssim,
    normalize_pair,
    nrmse,
    percentile_normalize,
    psnr,
    scale_mismatch,
    ssim,
)

__all__ = [
    "ImageScores",
    "affine_fit",
    "evaluate",
    "ms_ssim",
    "normalize_pair",
    "nrmse",
    "percentile_normalize",
    "psnr",
    "scale_mismatch",
    "ssim",
]
