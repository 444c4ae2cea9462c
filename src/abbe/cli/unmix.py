"""``abbe unmix``: separate multicolour widefield channels with a bleed-through matrix."""

from __future__ import annotations

from pathlib import Path

import typer

from abbe.cli.common import check_outputs, out, reported_warnings
from abbe.errors import InputError


def unmix(
    image_path: Path = typer.Argument(..., help="Channels, CYX (TIFF, OME-TIFF, OME-Zarr)."),
    output: Path = typer.Option(..., "-o", "--output", help="Unmixed labels, CYX."),
    matrix_path: Path = typer.Option(
        None,
        "--matrix",
        help="CSV bleed-through matrix: one row per channel, one column per label, each "
        "label's own channel 1 (e.g. 1,0.2 / 0.15,1).",
    ),
    estimate: bool = typer.Option(
        False,
        "--estimate",
        help="Estimate the matrix from regions where one label is alone (written to "
        "OUTPUT.matrix.csv).",
    ),
    axes: str = typer.Option(None, "--axes", help="Axes of the image, e.g. CYX."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
) -> None:
    """Non-negative least-squares unmixing of every pixel (known or estimated matrix)."""
    import numpy as np

    from abbe import io
    from abbe.restore.unmix import estimate_matrix, nnls_unmix, read_matrix

    if (matrix_path is None) == (not estimate):
        raise InputError("give either --matrix M.csv or --estimate", image_path)
    matrix_out = output.with_name(output.name.split(".")[0] + ".matrix.csv")
    check_outputs([output, matrix_out if estimate else None], overwrite=overwrite)
    matrix = read_matrix(matrix_path) if matrix_path is not None else None
    data, meta = io.read(image_path, axes=axes)
    if "C" not in meta.axes or meta.axes.replace("C", "") != "YX":
        raise InputError(
            f"unmixing needs a CYX image, this one has axes {meta.axes}; give --axes CYX",
            image_path,
        )
    image = np.moveaxis(np.asarray(data, np.float32), meta.axes.index("C"), 0)
    if matrix is not None and matrix.shape[0] != image.shape[0]:
        raise InputError(
            f"the matrix has {matrix.shape[0]} rows but the image has {image.shape[0]} "
            f"channels; it needs one row per channel",
            matrix_path,
        )
    with reported_warnings(image_path) as caveats:
        if matrix is None:
            matrix = estimate_matrix(image, where=image_path)
        labels = nnls_unmix(image, matrix, where=matrix_path or image_path)
    extra = {
        "units": "each label in its own channel's units, background subtracted",
        "matrix": np.round(matrix, 5).tolist(),
        "matrix_source": str(matrix_path) if matrix_path else "estimated from the image",
        "source": str(image_path),
        "warnings": caveats,
    }
    written = [
        io.write(
            output,
            labels,
            io.Meta("CYX", pixel_size_nm=meta.pixel_size_nm, extra=extra),
            overwrite=overwrite,
        )
    ]
    if estimate:
        from abbe.io import atomic_path

        with atomic_path(matrix_out, overwrite=overwrite) as tmp:
            tmp.write_text("\n".join(",".join(f"{v:.5f}" for v in row) for row in matrix) + "\n")
        written.append(matrix_out)
    if not quiet:
        off = np.abs(matrix - np.diag(np.diag(matrix))).max()
        out.print(
            f"{image_path} → {', '.join(map(str, written))}: {labels.shape[0]} labels, largest "
            f"bleed-through {100 * off:.1f} %"
        )
