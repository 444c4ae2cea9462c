"""``abbe verify``: how far to trust a restored or super-resolved image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer

from abbe.cli.common import out, reported_warnings, write_json
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
    normalize: bool = typer.Option(
        None,
        "--normalize/--no-normalize",
        help="Score against the truth after normalizing (the truth by percentiles, the result "
        "by an affine fit) or raw; by default only when units or scales differ, with a "
        "warning, as abbe evaluate does.",
        show_default=False,
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing report."),
) -> None:
    """Error map (SQUIRREL), uncertainty, resolution and scores in one report."""
    from abbe import io
    from abbe.cli.restore import uncertainty_path
    from abbe.report import verify_figure
    from abbe.trust.verify import grid_pixel_sizes, verify

    unc_file = uncertainty or (
        uncertainty_path(output) if uncertainty_path(output).exists() else None
    )
    names = NAMES + (["uncertainty.tif"] if unc_file else [])
    outputs = io.OutputSet([report_dir / n for n in names], overwrite=overwrite)
    result, out_meta = _read_plane(output)
    data, in_meta = _read_plane(input_image)
    given_out = output_pixel if output_pixel is not None else out_meta.pixel_size_nm
    given_in = input_pixel if input_pixel is not None else in_meta.pixel_size_nm
    out_px, in_px = grid_pixel_sizes(
        result.shape, data.shape, pixel_size_nm=given_out, reference_pixel_size_nm=given_in
    )
    if out_px is None:
        raise InputError("pixel size unknown: give --output-pixel-size NM", output)
    if in_px is None:
        raise InputError("pixel size unknown: give --input-pixel-size NM", input_image)
    gt, gt_meta = _read_like(truth, result, "truth") if truth is not None else (None, None)
    unc = _read_like(unc_file, result, "uncertainty")[0] if unc_file else None
    with reported_warnings(output) as caveats:
        report = verify(
            result,
            reference=data,
            truth=gt,
            uncertainty=unc,
            pixel_size_nm=given_out,
            reference_pixel_size_nm=given_in,
            normalize=normalize,
            units=out_meta.extra.get("units"),
            reference_units=in_meta.extra.get("units"),
            truth_units=gt_meta.extra.get("units") if gt_meta is not None else None,
        )
    summary: dict[str, Any] = {"output": str(output), "input": str(input_image)}
    summary.update(report.to_dict())
    if "uncertainty" in summary:
        summary["uncertainty"] = {"file": str(unc_file), **summary["uncertainty"]}
    summary["warnings"] = caveats
    with outputs as tmp:
        px = report.pixel_size_nm if report.pixel_size_known else None
        meta_out = out_meta.replace(pixel_size_nm=px, axes="YX")
        # The error map is in the input's intensity units, the uncertainty in the result's.
        emap_extra = {k: v for k, v in out_meta.extra.items() if k != "units"}
        if report.reference_units:
            emap_extra["units"] = report.reference_units
        io.write(tmp["error_map.tif"], report.error_map.map, meta_out.replace(extra=emap_extra))
        if report.uncertainty is not None:
            io.write(tmp["uncertainty.tif"], report.uncertainty.astype(np.float32), meta_out)
        against = input_image.name + (f" (truth {truth.name})" if truth is not None else "")
        verify_figure(report, tmp["verify.png"], title=f"{output.name} against {against}")
        write_json(tmp["report.json"], summary, overwrite=False)
    e = report.error_map
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
        how = "normalized" if m["normalized"] else "raw"
        out.print(
            f"  against the truth ({how}): PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.3f}, "
            f"FRC {_nm(res['frc_against_truth_nm'])}"
        )
    out.print(f"wrote {report_dir}/: {', '.join(names)}")


def _nm(value: float | None) -> str:
    return f"{value:.0f} nm" if value else "n/a"


def _read_plane(path: Path) -> tuple[np.ndarray, Any]:
    from abbe import io

    data, meta = io.read(path)
    return io.plane_yx(data, meta.axes, path=path, needs="verify takes 2D images"), meta


def _read_like(path: Path, result: np.ndarray, what: str) -> tuple[np.ndarray, Any]:
    image, meta = _read_plane(path)
    if image.shape != result.shape:
        raise InputError(
            f"{what} shape {image.shape} differs from the result's {result.shape}", path
        )
    return image, meta
