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
    out_px, in_px = grid_pixel_sizes(
        result.shape,
        data.shape,
        pixel_size_nm=output_pixel if output_pixel is not None else out_meta.pixel_size_nm,
        reference_pixel_size_nm=input_pixel if input_pixel is not None else in_meta.pixel_size_nm,
    )
    if out_px is None:
        raise InputError("pixel size unknown: give --output-pixel-size NM", output)
    if in_px is None:
        raise InputError("pixel size unknown: give --input-pixel-size NM", input_image)
    gt = _read_like(truth, result, "truth") if truth is not None else None
    unc = _read_like(unc_file, result, "uncertainty") if unc_file else None
    report = verify(
        result,
        reference=data,
        truth=gt,
        uncertainty=unc,
        pixel_size_nm=out_px,
        reference_pixel_size_nm=in_px,
    )
    summary: dict[str, Any] = {"output": str(output), "input": str(input_image)}
    summary.update(report.to_dict())
    if "uncertainty" in summary:
        summary["uncertainty"] = {"file": str(unc_file), **summary["uncertainty"]}
    with outputs as tmp:
        meta_out = out_meta.replace(pixel_size_nm=out_px, axes="YX")
        io.write(tmp["error_map.tif"], report.error_map.map, meta_out)
        if report.uncertainty is not None:
            io.write(tmp["uncertainty.tif"], report.uncertainty.astype(np.float32), meta_out)
        verify_figure(report, tmp["verify.png"])
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
        out.print(
            f"  against the truth: PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.3f}, "
            f"FRC {_nm(res['frc_against_truth_nm'])}"
        )
    out.print(f"wrote {report_dir}/: {', '.join(names)}")


def _nm(value: float | None) -> str:
    return f"{value:.0f} nm" if value else "n/a"


def _read_plane(path: Path) -> tuple[np.ndarray, Any]:
    from abbe import io

    data, meta = io.read(path)
    return io.plane_yx(data, meta.axes, path=path, needs="verify takes 2D images"), meta


def _read_like(path: Path, result: np.ndarray, what: str) -> np.ndarray:
    image = _read_plane(path)[0]
    if image.shape != result.shape:
        raise InputError(
            f"{what} shape {image.shape} differs from the result's {result.shape}", path
        )
    return image
