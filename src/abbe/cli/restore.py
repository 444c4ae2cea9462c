"""``abbe restore``: denoise (and later deconvolve or super-resolve) images with a model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from abbe.cli.common import err, out
from abbe.errors import InputError

_FILE_SUFFIXES = (".tif", ".tiff", ".zarr")


def output_paths(inputs: list[Path], output: Path) -> list[Path]:
    """One output per input: ``output`` itself for one input given as a file name, else
    ``output/<input name>`` (PNG inputs become TIFF)."""
    is_file = output.name.lower().endswith(_FILE_SUFFIXES) and not output.is_dir()
    if is_file:
        if len(inputs) > 1:
            raise InputError("several inputs need an output folder, not a file name", output)
        return [output]
    paths = []
    for p in inputs:
        name = p.name if p.name.lower().endswith(_FILE_SUFFIXES) else p.stem + ".tif"
        paths.append(output / name)
    if len(set(paths)) != len(paths):
        raise InputError("two inputs share a file name; restore them into different folders")
    return paths


def _tile(value: str) -> int | str | None:
    if value in ("auto", "none"):
        return value if value == "auto" else None
    try:
        n = int(value)
    except ValueError:
        raise InputError(
            f"--tile must be 'auto', 'none' or a number of pixels, got {value!r}"
        ) from None
    if n < 16:
        raise InputError(f"--tile must be at least 16 pixels, got {n}")
    return n


def restore(
    inputs: list[Path] = typer.Argument(..., help="Images to restore (TIFF, PNG, OME-Zarr)."),
    model: str = typer.Option(..., "-m", "--model", help="Bundled model name or model folder."),
    output: Path = typer.Option(..., "-o", "--output", help="Output file (one input) or folder."),
    axes: str = typer.Option(None, "--axes", help="Axes of the inputs, e.g. YX, TYX, ZYX."),
    tile: str = typer.Option("auto", "--tile", help="auto, none, or core edge in pixels."),
    memory_mb: float = typer.Option(
        1024, "--memory-mb", min=64, help="Memory budget of one tile's computation."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    threads: int = typer.Option(None, "--threads", min=1, help="CPU threads (default: all)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary."),
) -> None:
    """Denoise images with a trained or bundled model (tiled, so any size fits in memory)."""
    from abbe import io, models
    from abbe.cli.common import progress

    tile_value = _tile(tile)
    targets = output_paths(inputs, output)
    for p in inputs:
        if not p.exists():
            raise InputError("file not found", p)
    for t in targets:
        io.check_writable(t, overwrite=overwrite)
    if threads:
        import torch

        torch.set_num_threads(threads)
    m = models.load(model)
    jobs = list(zip(inputs, targets, strict=True))
    for path, target in progress(jobs, "restoring", quiet=quiet or len(jobs) < 2):
        lazy = path.name.lower().endswith(".zarr") or target.name.lower().endswith(".zarr")
        data, meta = io.read(path, axes=axes, lazy=lazy)
        tiles = _tile_progress(quiet)
        if target.name.lower().endswith(".zarr"):
            from abbe.io.zarr import ome_zarr_writer

            with ome_zarr_writer(target, data.shape, "float32", meta, overwrite=overwrite) as z:
                m.predict(
                    data,
                    meta.axes,
                    tile=tile_value,
                    memory_mb=memory_mb,
                    device=device,
                    out=z,
                    progress=tiles,
                )
        else:
            result = m.predict(
                data, meta.axes, tile=tile_value, memory_mb=memory_mb, device=device, progress=tiles
            )
            io.write(target, result, meta.replace(source=str(path)), overwrite=overwrite)
        if not quiet:
            out.print(f"{path} → {target}")


def _tile_progress(quiet: bool) -> Any:
    if quiet or not err.is_terminal:
        return None

    def wrap(tiles, total):
        from abbe.cli.common import progress

        return progress(tiles, "tiles", total=total) if total > 1 else tiles

    return wrap
