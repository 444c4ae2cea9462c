"""``abbe evaluate``: score a result against its ground truth."""

from __future__ import annotations

from pathlib import Path

import typer

from abbe.cli.common import out, print_json
from abbe.errors import InputError


def evaluate(
    prediction: Path = typer.Argument(..., help="Result to score (image)."),
    truth: Path = typer.Option(..., "--truth", "-t", help="Ground truth of the same field."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    normalize: bool = typer.Option(
        False,
        "--normalize",
        help="Percentile-normalize the truth and affine-fit the result first (CSBDeep style).",
    ),
    data_range: float = typer.Option(
        None, "--data-range", help="Range R for PSNR/SSIM (default: the truth's)."
    ),
    axes: str = typer.Option(None, "--axes", help="Axes of both images, e.g. YX or TYX."),
) -> None:
    """Score an image against its ground truth: PSNR, SSIM, MS-SSIM, NRMSE."""
    from abbe import io, metrics

    pred, _ = io.read(prediction, axes=axes)
    gt, _ = io.read(truth, axes=axes)
    if pred.shape != gt.shape:
        raise InputError(
            f"shape {tuple(pred.shape)} differs from the truth {truth} with shape "
            f"{tuple(gt.shape)}; compare images of the same field and size",
            prediction,
        )
    scores = metrics.evaluate(pred, gt, normalize=normalize, data_range=data_range)
    if as_json:
        print_json({"prediction": str(prediction), "truth": str(truth), **scores.as_dict()})
        return
    from rich.table import Table

    table = Table(title=f"{prediction.name} against {truth.name}", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("PSNR (dB)", f"{scores.psnr:.2f}")
    table.add_row("SSIM", f"{scores.ssim:.4f}")
    table.add_row("MS-SSIM", f"{scores.ms_ssim:.4f}")
    table.add_row("NRMSE", f"{scores.nrmse:.4f}")
    if normalize:
        table.caption = "after percentile normalization and affine fit"
    out.print(table)
