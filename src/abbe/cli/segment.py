"""``abbe segment``: nuclei instance labels from fluorescence images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from abbe.cli.common import check_outputs, out, progress, reported_warnings
from abbe.cli.options import compute, device_option, memory_option, threads_option
from abbe.errors import InputError


def segment(
    inputs: list[Path] = typer.Argument(..., help="Images of nuclei (TIFF, PNG)."),
    model: str = typer.Option(
        "nuclei-fluo", "-m", "--model", help="Bundled model name or model folder."
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Label TIFF (one input) or folder."),
    axes: str = typer.Option(None, "--axes", help="Axes of the inputs, e.g. YX or CYX."),
    channel: int = typer.Option(0, "--channel", min=0, help="Channel holding the nuclei."),
    diameter: float = typer.Option(
        None,
        "--diameter",
        min=1.0,
        help="Typical nucleus width in pixels (default: measured on each image).",
    ),
    tta: bool = typer.Option(
        False,
        "--tta",
        help="Average the model over the image's 8 rotations and mirror images (8× slower).",
    ),
    memory_mb: float = memory_option(),
    device: str = device_option(),
    threads: int = threads_option(),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
) -> None:
    """Segment nuclei into instance labels (0 = background, 1…n = nuclei), one TIFF per input;
    a Z stack (--axes ZYX) gives 3D labels (planes segmented, then joined across Z). Prints the
    nucleus size used and the model's training sizes, and warns when the size is doubtful."""
    from abbe import io
    from abbe.cli.restore import output_paths
    from abbe.segment import Segmenter

    inputs = io.find_images(inputs, "input")
    targets = output_paths(inputs, output)
    check_outputs(targets, overwrite=overwrite)
    options = compute(device, threads, memory_mb)
    seg = Segmenter.load(model)
    pairs = list(zip(inputs, targets, strict=True))
    for src, dst in progress(pairs, "segmenting", total=len(pairs), quiet=quiet or len(pairs) < 2):
        data, meta = io.read(src, axes=axes)
        stack = meta.axes == "ZYX"
        image = np.asarray(data) if stack else _plane(np.asarray(data), meta.axes, channel, src)
        with reported_warnings(src) as caveats:
            try:
                # A stack is sized on its maximum projection, where each nucleus shows its width.
                size = seg.nucleus_size(image.max(axis=0) if stack else image, diameter)
                if stack:
                    labels = seg.predict_stack(image, scale=size.zoom, tta=tta, **options)
                else:
                    labels = seg.predict(image, scale=size.zoom, tta=tta, **options)
            except InputError as exc:
                raise InputError(exc.message, src) from None
        kept = io.Meta(
            "ZYX" if stack else "YX",
            pixel_size_nm=meta.pixel_size_nm,
            z_step_nm=meta.z_step_nm if stack else None,
            # Says what the file is (abbe evaluate reads it) and the size it was segmented at.
            extra={
                "units": "labels",
                "nuclei": size.as_dict(meta.pixel_size_nm),
                "warnings": caveats,
            },
        )
        dtype = np.uint16 if labels.max() < 65536 else np.uint32
        io.write(dst, labels.astype(dtype), kept, overwrite=overwrite)
        if not quiet:
            out.print(
                f"{src} → {dst}: {int(labels.max())} nuclei; {size.describe(meta.pixel_size_nm)}"
            )


def _plane(data: np.ndarray, axes: str, channel: int, path: Path) -> np.ndarray:
    """The 2D nuclei image of an input: YX as is; the chosen channel of CYX/YXC/YXS."""
    if axes == "YX":
        return data
    for name in ("C", "S"):
        if name in axes and len(axes) == 3 and sorted(axes) == sorted("YX" + name):
            k = axes.index(name)
            if channel >= data.shape[k]:
                n = data.shape[k]
                raise InputError(
                    f"--channel {channel}: channels are numbered 0–{n - 1}; the image has {n}",
                    path,
                )
            return np.take(data, channel, axis=k)
    raise InputError(
        f"segmentation takes a 2D image (YX, or one channel of CYX) or a stack (ZYX); got {axes} "
        "(pass --axes if the file's axes are wrong)",
        path,
    )
