"""How far to trust a result: error maps, uncertainty and out-of-distribution warnings."""

from abbe.trust.error_map import ErrorMap, error_map, local_contrast
from abbe.trust.ood import ImageStats, OutOfDistributionWarning, measure, training_ranges
from abbe.trust.uncertainty import (
    calibration_factor,
    empirical_coverage,
    ensemble_predict,
    laplace_half_width,
    laplace_sd,
)

__all__ = [
    "ErrorMap",
    "ImageStats",
    "OutOfDistributionWarning",
    "calibration_factor",
    "empirical_coverage",
    "ensemble_predict",
    "error_map",
    "laplace_half_width",
    "laplace_sd",
    "local_contrast",
    "measure",
    "training_ranges",
]
