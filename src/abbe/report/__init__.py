"""Reports: tables and figures (side-by-side panels, curves, error maps)."""

from abbe.report.figures import (
    display_range,
    grid,
    resolution_plot,
    side_by_side,
    verify_figure,
)

__all__ = ["display_range", "grid", "resolution_plot", "side_by_side", "verify_figure"]
