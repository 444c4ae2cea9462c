"""``abbe verify``: how far to trust a restored or super-resolved image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer

from abbe.cli.common import out, write_json
from abbe.errors import InputError

NAMES = ["error_map.tif", "report.json", "verify.png"]


def verify(
    output: Path = typer.Argument(..., help="The result to check (restored or super-resolved)."),
    input_image: Path = typer.Option(..., "--input", "-i", help="The data it was computed from."),
    truth: Path = typer.Option(None, "--truth", "-t", help="Ground truth (simulations)."),
    report_dir: Path = typer.Option(..., "-o", "--output", help="Folder for the report."),
    uncertainty: Path = typer.Option(
        None,
        "--uncertainty",
        help="Uncertainty map of the result (default: <output>_uncertainty.tif if present).",
    ),
    output_pixel: float = typer.Option(
        None, "--output-pixel-size", min=1e-3, help="Pixel size of the result, nm."
    ),
    input_pixel: float = typer.Option(
        None, "--input-pixel-size", min=1e-3, help="Pixel size of the input, nm."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing report."),
) -> None:
    """Error map (SQUIRREL), uncertainty, resolution and scores in one report."""
    from abbe import io, metrics, trust
    from abbe.cli.restore import uncertainty_path
    from abbe.metrics import resolution as R

    result, out_meta = io.read(output)
    data, in_meta = io.read(input_image)
    result, data = (
        _plane2d(result, out_meta.axes, output),
        _plane2d(data, in_meta.axes, input_image),
    )
    out_px, in_px = _pixel_sizes(
        result, data, out_meta, in_meta, output_pixel, input_pixel, output, input_image
    )
    unc_file = uncertainty or (
        uncertainty_path(output) if uncertainty_path(output).exists() else None
    )
    names = NAMES + (["uncertainty.tif"] if unc_file else [])
    outputs = io.OutputSet([report_dir / n for n in names], overwrite=overwrite)

    emap = trust.error_map(result, data, output_pixel_size_nm=out_px, reference_pixel_size_nm=in_px)
    summary: dict[str, Any] = {
        "output": str(output),
        "input": str(input_image),
        "output_pixel_size_nm": out_px,
        "input_pixel_size_nm": in_px,
        "error_map": emap.summary(),
    }
    dec_out = R.decorrelation(result, pixel_size_nm=out_px)
    dec_in = R.decorrelation(data, pixel_size_nm=in_px)
    summary["resolution"] = {
        "output_decorr_nm": _finite(dec_out.resolution_nm),
        "input_decorr_nm": _finite(dec_in.resolution_nm),
    }
    panels = {"input": data, "output": result}
    gt = frc = None
    if truth is not None:
        gt = _plane2d(io.read(truth)[0], "YX", truth)
        if gt.shape != result.shape:
            raise InputError(
                f"truth shape {gt.shape} differs from the result's {result.shape}", truth
            )
        summary["metrics"] = metrics.evaluate(result, gt, normalize=True).as_dict()
        frc = R.frc(result, gt, pixel_size_nm=out_px)
        summary["resolution"]["frc_against_truth_nm"] = _finite(frc.resolution_nm)
        panels["truth"] = gt
    unc = None
    if unc_file is not None:
        unc = _plane2d(io.read(unc_file)[0], "YX", unc_file)
        if unc.shape != result.shape:
            raise InputError(
                f"uncertainty shape {unc.shape} differs from the result's {result.shape}", unc_file
            )
        summary["uncertainty"] = {"file": str(unc_file), "median_sd": float(np.median(unc))}
        if gt is not None:
            # The map holds Laplace standard deviations √2·b; the 90 % interval is ±b·ln 10.
            half = trust.laplace_half_width(unc / np.sqrt(2.0), 0.9)
            summary["uncertainty"]["coverage_90"] = trust.empirical_coverage(gt, result, half)
    panels["error map"] = emap.map
    if unc is not None:
        panels["uncertainty"] = unc
    with outputs as tmp:
        meta_out = out_meta.replace(pixel_size_nm=out_px, axes="YX")
        io.write(tmp["error_map.tif"], emap.map, meta_out)
        if unc is not None:
            io.write(tmp["uncertainty.tif"], unc.astype(np.float32), meta_out)
        _figure(tmp["verify.png"], panels, frc, dec_out, dec_in, out_px, in_px)
        write_json(tmp["report.json"], summary, overwrite=False)
    e = emap
    out.print(
        f"{output.name} against {input_image.name}: RSP {e.rsp:.3f}, RSE {e.rse:.3g}, "
        f"resolution scaling σ {e.sigma_nm:.0f} nm, shift "
        f"({e.shift_nm[0]:.0f}, {e.shift_nm[1]:.0f}) nm"
    )
    res = summary["resolution"]
    out.print(
        f"  decorrelation: output {_nm(res['output_decorr_nm'])}, "
        f"input {_nm(res['input_decorr_nm'])}"
    )
    if "metrics" in summary:
        m = summary["metrics"]
        out.print(
            f"  against the truth: PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.3f}, "
            f"FRC {_nm(res['frc_against_truth_nm'])}"
        )
    out.print(f"wrote {report_dir}/: {', '.join(names)}")


def _nm(value: float | None) -> str:
    return f"{value:.0f} nm" if value else "n/a"


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _plane2d(data: Any, axes: str, path: Path) -> np.ndarray:
    arr = np.asarray(data, dtype=np.float64)
    squeezed = arr.squeeze()
    if squeezed.ndim != 2:
        raise InputError(f"verify takes 2D images; this one has axes {axes}", path)
    return squeezed


def _pixel_sizes(result, data, out_meta, in_meta, out_flag, in_flag, out_path, in_path):
    out_px = out_flag if out_flag is not None else out_meta.pixel_size_nm
    in_px = in_flag if in_flag is not None else in_meta.pixel_size_nm
    if out_px is None and in_px is None and result.shape == data.shape:
        return 1.0, 1.0  # same grid, unknown size: resolutions are then in pixels
    if out_px is None:
        if in_px is not None and result.shape == data.shape:
            return in_px, in_px
        raise InputError("pixel size unknown: give --output-pixel-size NM", out_path)
    if in_px is None:
        if result.shape == data.shape:
            return out_px, out_px
        raise InputError("pixel size unknown: give --input-pixel-size NM", in_path)
    return float(out_px), float(in_px)


def _figure(path, panels, frc, dec_out, dec_in, out_px, in_px) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from abbe.report import display_range
    from abbe.report.figures import resolution_plot

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
        frc=frc,
        decorrelation=dec_out,
        pixel_size_nm=out_px,
        title="output: FRC vs truth, decorrelation" if frc else "output: decorrelation",
        ax=axes[-1],
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)
