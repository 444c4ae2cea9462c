"""``abbe export``: a model as a bioimage.io package, or its network as ONNX or TorchScript."""

from __future__ import annotations

from pathlib import Path

import typer

from abbe.cli.common import check_outputs, out, reported_warnings
from abbe.errors import InputError


def export(
    model: str = typer.Argument(..., help="Bundled model name or model folder."),
    output: Path = typer.Option(
        ..., "-o", "--output", help="File to write: model.zip (bioimageio), .onnx or .pt."
    ),
    fmt: str = typer.Option(
        "bioimageio",
        "--format",
        "-f",
        help="bioimageio (a BioImage Model Zoo package with TorchScript, ONNX and state-dict "
        "weights), onnx or torchscript (the network alone).",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
) -> None:
    """Export a model for the tools where microscopists work: a bioimage.io package (Fiji with
    deepImageJ, ilastik, QuPath, napari; checked with 'bioimageio test'), or its network as
    ONNX (opset 17, any image size) or TorchScript. A model whose output is no image, map or
    class scores (the learned localizer) is refused as a package; its raw network still exports
    as ONNX or TorchScript."""
    from abbe import models
    from abbe.models.export import export as write
    from abbe.models.export import formats

    if fmt not in formats():
        raise InputError(f"unknown --format {fmt!r}; use {', '.join(formats())}")
    check_outputs([output], overwrite=overwrite)
    m = models.load(model)
    with reported_warnings(output):
        write(m, output, format=fmt, overwrite=overwrite)
    if not quiet:
        out.print(f"{model} → {output} ({fmt})")
