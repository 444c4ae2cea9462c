"""Single-molecule localization: detection, MLE fitting at the Cramér–Rao bound, rendering."""

from abbe.localize.detect import detect
from abbe.localize.fit import LOC_COLUMNS, fit, fit_rois, to_electrons
from abbe.localize.matching import estimate_conditions, match_config, matched_settings

__all__ = [
    "LOC_COLUMNS",
    "detect",
    "estimate_conditions",
    "fit",
    "fit_rois",
    "match_config",
    "matched_settings",
    "to_electrons",
]
