"""``abbe restore``: denoise or super-resolve images with a model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from abbe.cli.cluster import cluster_option, resume_option
from abbe.cli.common import check_outputs, err, out, reported_warnings
from abbe.cli.options import (
    compute,
    device_option,
    engine_option,
    memory_option,
    threads_option,
)
from abbe.errors import InputError

_FILE_SUFFIXES = (".tif", ".tiff", ".zarr")


def output_paths(inputs: list[Path], output: Path) -> list[Path]:
    """One output per input: ``output`` itself for one input given as a file name, else
    ``output/<input name>`` (PNG inputs become TIFF)."""
    name = output.name.lower()
    # A .zarr store is a folder on disk but one output (reopened by --resume, refused otherwise).
    is_file = name.endswith(_FILE_SUFFIXES) and (name.endswith(".zarr") or not output.is_dir())
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
    inputs: list[Path] = typer.Argument(
        ..., help="Images to restore (TIFF, PNG, OME-Zarr) or folders of them."
    ),
    model: str = typer.Option(
        ..., "-m", "--model", help="Bundled model name, model folder or bioimage.io package (.zip)."
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Output file (one input) or folder."),
    axes: str = typer.Option(None, "--axes", help="Axes of the inputs, e.g. YX, TYX, ZYX."),
    tile: str = typer.Option("auto", "--tile", help="auto, none, or core edge in pixels."),
    memory_mb: float = memory_option(),
    device: str = device_option(),
    threads: int = threads_option(),
    engine: str = engine_option(),
    uncertainty: bool = typer.Option(
        False,
        "--uncertainty",
        help="Also write <output>_uncertainty.tif: per-pixel standard deviation (calibrated; "
        "probabilistic models).",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    cluster: str = cluster_option(),
    resume: bool = resume_option(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary."),
) -> None:
    """Denoise or super-resolve images with a trained or bundled model (tiled, so any size fits
    in memory). A super-resolution model (e.g. sr-widefield-2x) writes an image with its scale
    times the pixels and the pixel size divided by it. A bioimage.io package (-m model.zip) writes
    its output as it is (maps of a segmentation package, one channel each)."""
    from abbe import io, models
    from abbe.cli.common import progress

    tile_value = _tile(tile)
    if cluster is not None:
        from abbe.predict.distributed import parse_cluster

        parse_cluster(cluster)  # a bad value is a one-line error before any work
    inputs = io.find_images(inputs, "input")  # folders, like segment and classify
    targets = output_paths(inputs, output)
    outputs = {t: [t, *([uncertainty_path(t)] if uncertainty else [])] for t in targets}
    jobs = [(p, t) for p, t in zip(inputs, targets, strict=True)]
    tiled = cluster is not None and len(jobs) == 1 and targets[0].name.lower().endswith(".zarr")
    if tiled:  # one image, tiles as tasks: its own checks (an interrupted run's store)
        from abbe.predict.distributed import check_tile_output

        check_tile_output(targets[0], overwrite=overwrite, resume=resume)
    elif resume:  # finished outputs are skipped, not refused
        jobs = [(p, t) for p, t in jobs if not all(o.exists() for o in outputs[t])]
    check_outputs([o for _, t in jobs for o in outputs[t]], overwrite=overwrite or tiled)
    if not jobs:
        if not quiet:
            out.print("every output is finished already (--resume); nothing to do")
        return
    options = compute(device, threads, memory_mb)
    m = models.load(model)
    _check_restoration_model(m, model)
    package = hasattr(m, "spec")  # a bioimage.io package (abbe.models.packages)
    if engine != "torch":
        options["engine"] = _check_engine(engine, device, package, model)
    if package and not quiet:
        out.print(f"model: {m.describe()}")
        if m.units_note():
            out.print(m.units_note(), markup=False)
    if tiled and (uncertainty or package):
        what = "--uncertainty" if uncertainty else "a bioimage.io package"
        raise InputError(
            f"{what} with --cluster into one .zarr (tiles as tasks) is not supported yet; "
            "write a TIFF, or run without --cluster"
        )
    run = {**options, "tile": tile_value, "uncertainty": uncertainty}
    if cluster is not None:
        _restore_on_cluster(model, jobs, cluster, run, axes, tiled, overwrite, resume, quiet)
        return
    for path, target in progress(jobs, "restoring", quiet=quiet or len(jobs) < 2):
        restore_file(m, path, target, axes, {**run, "progress": _tile_progress(quiet)}, overwrite)
        if not quiet:
            out.print(_done_line(path, target, uncertainty))


def restore_file(
    m: Any, path: Path, target: Path, axes: str | None, run: dict, overwrite: bool
) -> None:
    """Restore one file into ``target`` (the per-file work, in this process or on a worker)."""
    from abbe import io

    lazy = path.name.lower().endswith(".zarr") or target.name.lower().endswith(".zarr")
    data, meta = io.read(path, axes=axes, lazy=lazy)
    in_axes = meta.axes  # a package's output may have other axes (its channels)
    meta = _output_meta(m, meta.replace(source=str(path)), path)
    with reported_warnings(path):
        if hasattr(m, "spec"):
            m.check_pixel_size(meta.pixel_size_nm, path)
        _restore_one(m, data, in_axes, meta, target, run, overwrite)


def _done_line(path: Path, target: Path, uncertainty: bool) -> str:
    extra = f" (+ {uncertainty_path(target).name})" if uncertainty else ""
    return f"{path} → {target}{extra}"


def _restore_file_task(ref: Any, path: Path, target: Path, axes: str | None, run: dict) -> Any:
    """On a worker: the model from the worker's cache, then :func:`restore_file`."""
    from abbe.predict.distributed import captured, worker_model

    def work() -> None:
        # One thread per task: workers are processes with one thread each.
        restore_file(worker_model(ref), path, target, axes, {**run, "threads": 1}, True)

    return captured(work)


def _restore_on_cluster(
    model: str,
    jobs: list[tuple[Path, Path]],
    cluster: str,
    run: dict,
    axes: str | None,
    tiled: bool,
    overwrite: bool,
    resume: bool,
    quiet: bool,
) -> None:
    """One task per file, or (one image into a .zarr) one task per tile."""
    from abbe import io
    from abbe.cli.cluster import cluster_client
    from abbe.predict import distributed as dist

    ref = dist.model_ref(model)
    with cluster_client(cluster, quiet=quiet) as client:
        if tiled:
            (path, target), m = jobs[0], dist.worker_model(ref)
            meta = _output_meta(
                m, io.read(path, axes=axes, lazy=True)[1].replace(source=str(path)), path
            )
            with reported_warnings(path):
                done = dist.restore_tiles(
                    client,
                    ref,
                    path,
                    target,
                    axes=axes,
                    meta=meta,
                    tile=run["tile"],
                    memory_mb=run["memory_mb"],
                    device=run["device"],
                    overwrite=overwrite,
                    resume=resume,
                    quiet=quiet,
                )
            if not quiet:
                kept = f", {done.skipped} finished before" if done.skipped else ""
                what = (
                    f"{done.computed} of {done.tiles} tiles{kept}" if done.tiles else "done before"
                )
                out.print(f"{path} → {target} ({what})")
            return
        calls = [(_restore_file_task, (ref, p, t, axes, run), {}) for p, t in jobs]
        results = dist.run_tasks(client, calls, description="restoring", quiet=quiet)
    for (path, target), result in zip(jobs, results, strict=True):
        with reported_warnings(path):
            dist.replay(result)
        if not quiet:
            out.print(_done_line(path, target, run["uncertainty"]))


def _check_restoration_model(m: Any, name: str) -> None:
    """Refuse models of other verbs in one line that names the right verb."""
    from abbe.models.packages.model import PackageModel
    from abbe.restore.model import RestorationModel

    if isinstance(m, PackageModel):
        m.check_image_output()
    if isinstance(m, RestorationModel | PackageModel):  # a package's output is written as is
        return
    use = f"{type(m).usage} {name}" if type(m).usage else f"abbe.models.load({name!r})"
    raise InputError(f"is not a restoration model; use it with {use}", name)


def _check_engine(engine: str, device: str, package: bool, name: str) -> str:
    """``--engine`` checked before any work: a known engine, on the CPU, for abbe's own
    models (a bioimage.io package runs its own weights)."""
    from abbe.predict.engines import check_device, check_engine

    check_device(check_engine(engine), device)
    if package:
        raise InputError(f"--engine {engine} applies to abbe's own models, not packages", name)
    return engine


def _output_meta(model: Any, meta: Any, path: Path) -> Any:
    """The output's metadata: a super-resolution model divides the pixel size by its scale.

    Warns when the input's pixel size is far from the one the model was trained for (its
    resolution gain is learnt in nm, so a different sampling gives a different result).
    """
    if hasattr(model, "output_axes"):  # a bioimage.io package: its output's channels
        meta = meta.replace(axes=model.output_axes(meta.axes))
        if model.scale > 1 and meta.pixel_size_nm:  # a super-resolution package
            meta = meta.replace(pixel_size_nm=meta.pixel_size_nm / model.scale)
        return meta
    scale = int(getattr(model, "scale", 1))
    trained = getattr(model.config, "pixel_size_nm", None)
    px = meta.pixel_size_nm
    if scale > 1 and trained and px and abs(px / trained - 1) > 0.25:
        err.print(
            f"warning: {path}: pixel size {px:g} nm, but the model was trained for "
            f"{trained:g} nm; resample the image or train a model for this pixel size",
            markup=False,
        )
    if scale > 1 and trained and not px:
        err.print(
            f"warning: {path}: the file gives no pixel size; assuming the model's {trained:g} nm",
            markup=False,
        )
        px = trained
    if scale == 1 or not px:
        return meta
    return meta.replace(pixel_size_nm=px / scale)


def uncertainty_path(target: Path) -> Path:
    """Where the uncertainty map of an output goes: ``<stem>_uncertainty<suffix>``."""
    name = target.name
    for suffix in (".ome.tif", ".ome.tiff", ".tif", ".tiff", ".zarr"):
        if name.lower().endswith(suffix):
            return target.with_name(name[: -len(suffix)] + "_uncertainty" + name[-len(suffix) :])
    return target.with_name(target.stem + "_uncertainty.tif")


def _restore_one(
    model: Any,
    data: Any,
    axes: str,
    meta: Any,
    target: Path,
    options: dict,
    overwrite: bool,
) -> None:
    from abbe import io

    want = options["uncertainty"]
    if target.name.lower().endswith(".zarr"):
        from contextlib import ExitStack

        from abbe.io.zarr import ome_zarr_writer

        shape = model.output_shape(data.shape, axes)
        with ExitStack() as stack:
            z = stack.enter_context(
                ome_zarr_writer(target, shape, "float32", meta, overwrite=overwrite)
            )
            u = None
            if want:
                u = stack.enter_context(
                    ome_zarr_writer(
                        uncertainty_path(target), shape, "float32", meta, overwrite=overwrite
                    )
                )
            model.predict(data, axes, out=z, out_uncertainty=u, **options)
        return
    result = model.predict(data, axes, **options)
    restored, sd = result if want else (result, None)
    io.write(target, restored, meta, overwrite=overwrite)
    if sd is not None:
        io.write(uncertainty_path(target), sd, meta, overwrite=overwrite)


def _tile_progress(quiet: bool) -> Any:
    if quiet or not err.is_terminal:
        return None

    def wrap(tiles, total):
        from abbe.cli.common import progress

        return progress(tiles, "tiles", total=total) if total > 1 else tiles

    return wrap
