"""Single-molecule localization: detection, MLE fitting at the Cramér–Rao bound, rendering."""

from abbe.localize.detect import detect
from abbe.localize.fit import LOC_COLUMNS, fit, fit_rois, to_electrons

__all__ = ["LOC_COLUMNS", "detect", "fit", "fit_rois", "to_electrons"]
