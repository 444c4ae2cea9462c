"""Figures a user reads: side-by-side panels with shared contrast, scale bars and scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from abbe.io import atomic_path


def display_range(image: np.ndarray, low: float = 0.5, high: float = 99.8) -> tuple[float, float]:
    """Percentile display range of an image (robust to hot pixels)."""
    lo, hi = np.percentile(np.asarray(image, dtype=np.float64), [low, high])
    return float(lo), float(hi if hi > lo else lo + 1)


def side_by_side(
    panels: dict[str, np.ndarray],
    path: str | Path,
    *,
    pixel_size_nm: float | None = None,
    reference: str | None = None,
    captions: dict[str, str] | None = None,
    overwrite: bool = False,
    panel_inches: float = 3.6,
) -> Path:
    """Save images side by side as a PNG, each with the same contrast as ``reference``.

    Parameters
    ----------
    panels : title → 2D image, in display order.
    path : PNG to write (atomically).
    pixel_size_nm : draws a scale bar when given.
    reference : title of the panel whose percentiles set every panel's contrast (default: each
        panel its own). Use the truth, so that a dim or bright result is seen as such.
    captions : title → text shown under the panel (e.g. its scores).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(panel_inches * n, panel_inches + 0.6), squeeze=False)
    ref = display_range(panels[reference]) if reference else None
    for ax, (title, img) in zip(axes[0], panels.items(), strict=True):
        lo, hi = ref if ref else display_range(img)
        ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(title, fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
        if captions and title in captions:
            ax.set_xlabel(captions[title], fontsize=9)
        if pixel_size_nm:
            _scale_bar(ax, img.shape, pixel_size_nm)
    fig.tight_layout()
    with atomic_path(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(path)


def _scale_bar(ax, shape: tuple[int, ...], pixel_size_nm: float) -> None:
    """A bar of a round length near a fifth of the image width, bottom right."""
    width_nm = shape[-1] * pixel_size_nm
    target = width_nm / 5
    length = 10 ** np.floor(np.log10(target))
    for step in (5, 2, 1):
        if step * length <= target:
            length *= step
            break
    px = length / pixel_size_nm
    h, w = shape[-2], shape[-1]
    y, x0 = h * 0.93, w * 0.95 - px
    ax.plot([x0, x0 + px], [y, y], color="white", linewidth=3, solid_capstyle="butt")
    label = f"{length / 1e3:g} µm" if length >= 1000 else f"{length:g} nm"
    ax.text(x0 + px / 2, y - h * 0.03, label, color="white", ha="center", va="bottom", fontsize=9)
