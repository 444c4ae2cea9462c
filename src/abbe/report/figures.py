"""Figures a user reads: side-by-side panels with shared contrast, scale bars and scores."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def _scale_bar(ax, shape: tuple[int, ...], pixel_size_nm: float, *, unit: str = "nm") -> None:
    """A bar of a round length near a fifth of the image width, bottom right.

    Bar and label sit on a dark translucent box, so that they read over bright and noisy
    images alike. ``unit="px"`` labels the bar in pixels (pixel size unknown).
    """
    from matplotlib import patheffects
    from matplotlib.font_manager import FontProperties
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    length = _round_length(shape[-1] * pixel_size_nm / 5)
    if unit == "px":
        label = f"{length:g} px"
    else:
        label = f"{length / 1e3:g} µm" if length >= 1000 else f"{length:g} nm"
    bar = AnchoredSizeBar(
        ax.transData,
        length / pixel_size_nm,
        label,
        "lower right",
        pad=0.35,
        borderpad=0.5,
        sep=3,
        color="white",
        frameon=True,
        size_vertical=max(shape[-2] / 100, 1.0),
        label_top=True,
        fontproperties=FontProperties(size=9, weight="bold"),
    )
    bar.patch.set_facecolor("black")
    bar.patch.set_alpha(0.75)
    bar.patch.set_edgecolor("none")
    # A black outline keeps the label legible where saturated noise shows through the box.
    bar.txt_label.get_children()[0].set_path_effects(
        [patheffects.withStroke(linewidth=2.5, foreground="black")]
    )
    ax.add_artist(bar)


#: What an FRC curve that never crosses its threshold means.
_FINER = "finer than Nyquist (2 pixels)"


def _round_length(target: float) -> float:
    """The largest 1, 2 or 5 × 10ⁿ not above ``target``."""
    length = 10 ** np.floor(np.log10(target))
    for step in (5, 2, 1):
        if step * length <= target:
            return float(step * length)
    return float(length)


def resolution_plot(
    path: str | Path,
    *,
    frc: object | None = None,
    decorrelation: object | None = None,
    pixel_size_nm: float | None = None,
    title: str = "",
    overwrite: bool = False,
    ax: object | None = None,
    unit: str = "nm",
) -> Path | None:
    """Plot an FRC curve with its threshold and decorrelation curves, resolutions marked.

    Frequencies are in cycles/µm; the decorrelation radii (Nyquist = 1) are converted with
    ``pixel_size_nm``. The resolutions are written in the legend, which sits under the axes
    so that it hides no curve. With ``ax``, draw into it and write nothing. ``unit="px"``
    (pixel size unknown, ``pixel_size_nm`` 1) gives frequencies in cycles/pixel and
    resolutions in pixels.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(6.4, 4.6))
    per = 1.0 if unit == "px" else 1e3  # frequencies per pixel, or per µm from per nm
    if frc is not None:
        f = frc.frequency * per
        ax.plot(
            f,
            frc.curve,
            color="tab:blue",
            lw=1.6,
            label=f"FRC: {_length(frc, unit, missing=_FINER)}",
        )
        ax.plot(
            f,
            frc.threshold,
            color="tab:blue",
            lw=1,
            ls="--",
            label=f"FRC threshold {frc.threshold_name}",
        )
        if np.isfinite(frc.resolution_nm):
            ax.axvline(per / frc.resolution_nm, color="tab:blue", lw=0.8, ls=":")
    if decorrelation is not None and pixel_size_nm:
        nyquist = per / (2 * pixel_size_nm)
        radii = decorrelation.radii * nyquist
        for i, curve in enumerate(decorrelation.curves):
            ax.plot(
                radii,
                curve,
                color="tab:orange",
                lw=1.6 if i == 0 else 0.6,
                alpha=1 if i == 0 else 0.5,
                label=f"decorrelation: {_length(decorrelation, unit)}" if i == 0 else None,
            )
        if np.isfinite(decorrelation.resolution_nm):
            ax.axvline(per / decorrelation.resolution_nm, color="tab:orange", lw=0.8, ls=":")
    ax.set_xlabel(
        "spatial frequency (cycles/pixel)" if unit == "px" else "spatial frequency (cycles/µm)"
    )
    ax.set_ylabel("correlation")
    ax.set_ylim(-0.05, 1.05)
    # Under the axes, not over them: FRC starts at the top left, decorrelation peaks mid-plot,
    # and every corner inside holds a curve for some image.
    ax.legend(
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.13),
        ncol=2,
        frameon=False,
    )
    if title:
        ax.set_title(title, fontsize=10)
    if not own:
        return None
    with atomic_path(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=110, format="png", bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def _length(res: object, unit: str, *, missing: str = "not measurable") -> str:
    """A resolution for a legend: ``"242 nm"``, or ``missing`` when there is none."""
    value = res.resolution_nm
    if not np.isfinite(value):
        return missing
    return f"{value:.1f} px" if unit == "px" else f"{value:.0f} nm"


def verify_figure(
    report: VerifyReport, path: str | Path, *, title: str = "", overwrite: bool = False
) -> Path:
    """Save the panels of a :func:`abbe.verify` report, its resolution curves and its scores.

    Panels, in order: input (the reference), output, truth (grey, each with a scale bar), error
    map and uncertainty (with colour bars in their intensity units; those the report holds),
    then the FRC against the truth and the decorrelation curves of the output. The key scores
    (PSNR, SSIM, resolutions, RSP) are written above the panels.

    Parameters
    ----------
    report : what :func:`abbe.trust.verify.verify` returned.
    path : PNG to write (atomically).
    title : first line of the heading (e.g. the files compared).
    overwrite : replace an existing file.
    """
    fig = _verify_figure(report, title)  # sets the Agg backend before pyplot is imported
    import matplotlib.pyplot as plt

    with atomic_path(path, overwrite=overwrite) as tmp:
        # A tight box around everything drawn: the legend under the plot is never clipped.
        fig.savefig(tmp, dpi=100, format="png", bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def _verify_figure(report: VerifyReport, title: str = "") -> Any:
    """The figure of :func:`verify_figure`, not yet saved (a matplotlib Figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unit = "nm" if report.pixel_size_known else "px"
    panels = _verify_panels(report)
    n = len(panels) + 1
    ncol = n if n <= 3 else (2 if n == 4 else 3)
    nrow = -(-n // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.0 * ncol, 4.0 * nrow + 0.8), squeeze=False)
    flat = list(axes.ravel())
    for ax, (name, (img, px, bar_label)) in zip(flat, panels.items(), strict=False):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(name, fontsize=10)
        if bar_label is None:
            lo, hi = display_range(img)
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        else:
            # Zero at the bottom: both maps are magnitudes, and 0 means no error or no doubt.
            hi = max(float(np.percentile(img, 99.8)), 1e-12)
            shown = ax.imshow(img, cmap="magma", vmin=0.0, vmax=hi, interpolation="nearest")
            cbar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03)
            cbar.set_label(bar_label, fontsize=8.5)
            cbar.ax.tick_params(labelsize=8)
        if px:
            _scale_bar(ax, img.shape, px if unit == "nm" else 1.0, unit=unit)
    plot_ax = flat[len(panels)]
    resolution_plot(
        None,
        frc=report.frc,
        decorrelation=report.decorrelation,
        pixel_size_nm=report.pixel_size_nm,
        title="output: FRC against the truth, decorrelation"
        if report.frc
        else "output: decorrelation",
        ax=plot_ax,
        unit=unit,
    )
    for ax in flat[n:]:
        ax.axis("off")
    heading = "\n".join(line for line in (title, *_score_lines(report, unit)) if line)
    fig.suptitle(heading, fontsize=10.5)
    fig.tight_layout()
    return fig


def _verify_panels(
    report: VerifyReport,
) -> dict[str, tuple[np.ndarray, float | None, str | None]]:
    """Title → (image, pixel size for the scale bar, colour-bar label or None for grey)."""
    px = report.pixel_size_nm
    panels: dict[str, tuple[np.ndarray, float | None, str | None]] = {}
    if report.reference is not None:
        panels["input"] = (report.reference, report.reference_pixel_size_nm, None)
    panels["output"] = (report.result, px, None)
    if report.truth is not None:
        panels["truth"] = (report.truth, px, None)
    if report.error_map is not None:
        units = report.reference_units or "input's units"
        panels[f"error map (RSP {report.error_map.rsp:.3f})"] = (
            report.error_map.map,
            px,
            f"absolute error ({units})",
        )
    if report.uncertainty is not None:
        name = "uncertainty"
        if report.coverage_90 is not None:
            name += f" (90 % interval covers {100 * report.coverage_90:.0f} %)"
        units = report.units or "output's units"
        panels[name] = (report.uncertainty, px, f"standard deviation ({units})")
    return panels


def _score_lines(report: VerifyReport, unit: str) -> list[str]:
    """The key scores, one line for the truth and one for resolution and the error map."""
    lines = []
    if report.scores is not None:
        s = report.scores
        how = "after normalization" if s.normalized else "raw"
        frc = f", FRC {_length(report.frc, unit, missing=_FINER)}" if report.frc is not None else ""
        lines.append(
            f"against the truth ({how}): PSNR {s.psnr:.2f} dB, SSIM {s.ssim:.3f}, "
            f"MS-SSIM {s.ms_ssim:.3f}{frc}"
        )
    parts = [f"decorrelation: output {_length(report.decorrelation, unit)}"]
    if report.reference_decorrelation is not None:
        parts[0] += f", input {_length(report.reference_decorrelation, unit)}"
    if report.error_map is not None:
        e = report.error_map
        parts.append(f"error map: RSP {e.rsp:.3f}, RSE {e.rse:.3g}")
    lines.append("; ".join(parts))
    return lines
