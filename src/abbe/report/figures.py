"""Figures a user reads: side-by-side panels with shared contrast, scale bars and scores."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from abbe.io import atomic_path

if TYPE_CHECKING:
    from abbe.trust.verify import VerifyReport


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
    return grid(
        [panels],
        path,
        pixel_size_nm=pixel_size_nm,
        references=[reference],
        captions=captions,
        overwrite=overwrite,
        panel_inches=panel_inches,
    )


def grid(
    rows: list[dict[str, np.ndarray]],
    path: str | Path,
    *,
    pixel_size_nm: float | list[float | None] | None = None,
    references: list[str | None] | None = None,
    captions: dict[str, str] | list[dict[str, str]] | None = None,
    row_titles: list[str] | None = None,
    overwrite: bool = False,
    panel_inches: float = 3.0,
) -> Path:
    """Save rows of images as one PNG; each row shares the contrast of its reference panel.

    ``captions`` maps panel titles to text, for all rows or (a list) row by row.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncol = max(len(r) for r in rows)
    fig, axes = plt.subplots(
        len(rows),
        ncol,
        figsize=(panel_inches * ncol, (panel_inches + 0.6) * len(rows)),
        squeeze=False,
    )
    sizes = pixel_size_nm if isinstance(pixel_size_nm, list) else [pixel_size_nm] * len(rows)
    refs = references or [None] * len(rows)
    row_captions = captions if isinstance(captions, list) else [captions or {}] * len(rows)
    for i, panels in enumerate(rows):
        ref = display_range(panels[refs[i]]) if refs[i] else None
        for j, ax in enumerate(axes[i]):
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(panels):
                ax.axis("off")
                continue
            title, img = list(panels.items())[j]
            lo, hi = ref if ref else display_range(img)
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
            ax.set_title(title, fontsize=10)
            if title in row_captions[i]:
                ax.set_xlabel(row_captions[i][title], fontsize=8.5)
            if sizes[i]:
                _scale_bar(ax, img.shape, sizes[i])
        if row_titles:
            axes[i][0].set_ylabel(row_titles[i], fontsize=11)
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


def resolution_plot(
    path: str | Path,
    *,
    frc: object | None = None,
    decorrelation: object | None = None,
    pixel_size_nm: float | None = None,
    title: str = "",
    overwrite: bool = False,
    ax: object | None = None,
) -> Path | None:
    """Plot an FRC curve with its threshold and decorrelation curves, resolutions marked.

    Frequencies are in cycles/µm; the decorrelation radii (Nyquist = 1) are converted with
    ``pixel_size_nm``. With ``ax``, draw into it and write nothing.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if frc is not None:
        f = frc.frequency * 1e3
        ax.plot(f, frc.curve, color="tab:blue", lw=1.6, label="FRC")
        ax.plot(
            f,
            frc.threshold,
            color="tab:blue",
            lw=1,
            ls="--",
            label=f"threshold {frc.threshold_name}",
        )
        if np.isfinite(frc.resolution_nm):
            ax.axvline(1e3 / frc.resolution_nm, color="tab:blue", lw=0.8, ls=":")
            ax.annotate(
                f"FRC {frc.resolution_nm:.0f} nm",
                (1e3 / frc.resolution_nm, 0.9),
                color="tab:blue",
                fontsize=9,
                ha="right",
            )
    if decorrelation is not None and pixel_size_nm:
        nyquist = 1e3 / (2 * pixel_size_nm)
        radii = decorrelation.radii * nyquist
        for i, curve in enumerate(decorrelation.curves):
            ax.plot(
                radii,
                curve,
                color="tab:orange",
                lw=1.6 if i == 0 else 0.6,
                alpha=1 if i == 0 else 0.5,
                label="decorrelation" if i == 0 else None,
            )
        if np.isfinite(decorrelation.resolution_nm):
            ax.axvline(1e3 / decorrelation.resolution_nm, color="tab:orange", lw=0.8, ls=":")
            ax.annotate(
                f"decorrelation {decorrelation.resolution_nm:.0f} nm",
                (1e3 / decorrelation.resolution_nm, 0.8),
                color="tab:orange",
                fontsize=9,
                ha="right",
            )
    ax.set_xlabel("spatial frequency (cycles/µm)")
    ax.set_ylabel("correlation")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=8, loc="upper right")
    if title:
        ax.set_title(title, fontsize=10)
    if not own:
        return None
    fig.tight_layout()
    with atomic_path(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(path)


def verify_figure(report: VerifyReport, path: str | Path, *, overwrite: bool = False) -> Path:
    """Save the panels of a :func:`abbe.verify` report and the result's resolution curves.

    Panels, in order: input (the reference), output, truth, error map, uncertainty (those the
    report holds), then the FRC against the truth and the decorrelation curves of the output.

    Parameters
    ----------
    report : what :func:`abbe.trust.verify.verify` returned.
    path : PNG to write (atomically).
    overwrite : replace an existing file.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[str, np.ndarray] = {}
    if report.reference is not None:
        panels["input"] = report.reference
    panels["output"] = report.result
    if report.truth is not None:
        panels["truth"] = report.truth
    if report.error_map is not None:
        panels["error map"] = report.error_map.map
    if report.uncertainty is not None:
        panels["uncertainty"] = report.uncertainty
    n = len(panels) + 1
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.6))
    for ax, (title, img) in zip(axes[:-1], panels.items(), strict=True):
        lo, hi = display_range(img)
        cmap = "magma" if title in ("error map", "uncertainty") else "gray"
        ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    resolution_plot(
        None,
        frc=report.frc,
        decorrelation=report.decorrelation,
        pixel_size_nm=report.pixel_size_nm,
        title="output: FRC vs truth, decorrelation" if report.frc else "output: decorrelation",
        ax=axes[-1],
    )
    fig.tight_layout()
    with atomic_path(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return Path(path)
