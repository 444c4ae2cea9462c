"""``abbe segment``: nuclei instance labels from fluorescence images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer

from abbe.cli.cluster import cluster_option, resume_option
from abbe.cli.common import check_outputs, out, progress, reported_warnings
from abbe.cli.options import (
    compute,
    device_option,
    engine_option,
    memory_option,
    threads_option,
)
from abbe.errors import InputError


def segment(
    inputs: list[Path] = typer.Argument(..., help="Images of nuclei (TIFF, PNG)."),
    model: str = typer.Option(
        "nuclei-fluo",
        "-m",
        "--model",
        help="Bundled model name, model folder or bioimage.io package (.zip).",
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
    tile: str = typer.Option(
        "auto",
        "--tile",
        help="auto, none, or core edge in pixels: the network's windows; with --cluster into a "
        ".zarr, the tiles each task labels.",
    ),
    memory_mb: float = memory_option(),
    device: str = device_option(),
    threads: int = threads_option(),
    engine: str = engine_option(),
    maps: Path = typer.Option(
        None,
        "--maps",
        help="Also write the package's output maps (bioimage.io packages): TIFF (one input) or "
        "folder.",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    cluster: str = cluster_option(),
    resume: bool = resume_option(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
) -> None:
    """Segment nuclei into instance labels (0 = background, 1…n = nuclei), one TIFF per input;
    a Z stack (--axes ZYX) gives 3D labels (planes segmented, then joined across Z). Prints the
    nucleus size used and the model's training sizes, and warns when the size is doubtful.
    With a bioimage.io package (-m model.zip) the package's maps become labels as its output
    channels say (see the README, "Run a bioimage.io model"); --maps writes the maps too.
    With --cluster, one image into a .zarr is segmented tile by tile as tasks, and nuclei cut
    by tile borders are joined again (labels as one process gives, up to their numbering)."""
    from abbe import io
    from abbe.cli.restore import _tile, output_paths
    from abbe.models.packages import is_package
    from abbe.segment import Segmenter

    inputs = io.find_images(inputs, "input")
    tile_value = _tile(tile)
    if cluster is not None:
        from abbe.predict.distributed import parse_cluster

        parse_cluster(cluster)  # a bad value is a one-line error before any work
    if len(inputs) == 1 and output.name.lower().endswith(".zarr"):
        # A .zarr output is a folder once written: still the output itself (a --resume or
        # --overwrite rerun), not a folder to write into.
        targets = [output]
    else:
        targets = output_paths(inputs, output)
    map_targets = output_paths(inputs, maps) if maps is not None else []
    tiled = cluster is not None and len(inputs) == 1 and targets[0].name.lower().endswith(".zarr")
    if tiled:  # one image, tiles as tasks: its own checks (an interrupted run's store)
        from abbe.predict.distributed import check_tile_output

        check_tile_output(targets[0], overwrite=overwrite, resume=resume)
    elif resume and not map_targets:  # finished outputs are skipped, not refused
        kept = [(i, t) for i, t in zip(inputs, targets, strict=True) if not t.exists()]
        inputs, targets = [i for i, _ in kept], [t for _, t in kept]
    check_outputs([*targets, *map_targets], overwrite=overwrite or tiled)
    options = compute(device, threads, memory_mb)
    if is_package(model):
        if cluster is not None or resume:
            raise InputError("--cluster and --resume apply to abbe's own models", model)
        if diameter is not None or tta or engine != "torch":
            raise InputError("--diameter, --tta and --engine apply to abbe's own models", model)
        run = {"axes": axes, "channel": channel, "overwrite": overwrite, "quiet": quiet}
        _segment_with_package(model, inputs, targets, map_targets, options, run)
        return
    if maps is not None:
        raise InputError(
            "--maps writes the maps of a bioimage.io package; abbe's own models write labels"
        )
    if engine != "torch":
        from abbe.predict.engines import check_device, check_engine

        check_device(check_engine(engine), device)
        options["engine"] = engine
    seg = Segmenter.load(model)
    pairs = list(zip(inputs, targets, strict=True))
    run = {"axes": axes, "channel": channel, "diameter": diameter, "tta": tta, **options}
    if tiled:
        run = {**run, "tile": tile_value}
        _segment_tiles(model, inputs[0], targets[0], cluster, run, overwrite, resume, quiet)
        return
    run["tile"] = tile_value
    if cluster is not None:
        _segment_on_cluster(model, pairs, cluster, run, overwrite, quiet)
        return
    for src, dst in progress(pairs, "segmenting", total=len(pairs), quiet=quiet or len(pairs) < 2):
        line = segment_file(seg, src, dst, run, overwrite)
        if not quiet:
            out.print(line)


def segment_file(seg: Any, src: Path, dst: Path, run: dict, overwrite: bool) -> str:
    """Segment one file into ``dst`` (the per-file work, in this process or on a worker);
    returns the summary line."""
    from abbe import io

    run = dict(run)
    axes, channel = run.pop("axes"), run.pop("channel")
    diameter, tta = run.pop("diameter"), run.pop("tta")
    options = {k: v for k, v in run.items() if k != "tile" or v != "auto"}
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
    return f"{src} → {dst}: {int(labels.max())} nuclei; {size.describe(meta.pixel_size_nm)}"


def _segment_file_task(ref: Any, src: Path, dst: Path, run: dict) -> Any:
    """On a worker: the segmenter from the worker's cache, then :func:`segment_file`."""
    from abbe.predict.distributed import captured, worker_model

    # One thread per task: workers are processes with one thread each.
    return captured(lambda: segment_file(worker_model(ref), src, dst, {**run, "threads": 1}, True))


def _segment_on_cluster(
    model: str,
    pairs: list[tuple[Path, Path]],
    cluster: str,
    run: dict,
    overwrite: bool,
    quiet: bool,
) -> None:
    """One task per file; each task writes its labels atomically (``overwrite`` was checked
    here, before any work: a task rerun after a lost worker replaces its own file)."""
    from abbe.cli.cluster import cluster_client
    from abbe.predict import distributed as dist

    ref = dist.model_ref(model, loader="abbe.segment:Segmenter.load")
    with cluster_client(cluster, quiet=quiet) as client:
        calls = [(_segment_file_task, (ref, src, dst, run), {}) for src, dst in pairs]
        results = dist.run_tasks(client, calls, description="segmenting", quiet=quiet)
    for (src, _), result in zip(pairs, results, strict=True):
        with reported_warnings(src):
            line = dist.replay(result)
        if not quiet:
            out.print(line)


def _segment_tiles(
    model: str,
    src: Path,
    dst: Path,
    cluster: str,
    run: dict,
    overwrite: bool,
    resume: bool,
    quiet: bool,
) -> None:
    """One image into a .zarr label image, its tiles as tasks
    (:func:`abbe.predict.distributed.segment_tiles`)."""
    from abbe import io
    from abbe.cli.cluster import cluster_client
    from abbe.predict import distributed as dist

    ref = dist.model_ref(model, loader="abbe.segment:Segmenter.load")
    _, in_meta = io.read(src, axes=run["axes"], lazy=True)
    kept = io.Meta("YX", pixel_size_nm=in_meta.pixel_size_nm)
    with reported_warnings(src) as caveats, cluster_client(cluster, quiet=quiet) as client:
        done = dist.segment_tiles(
            client,
            ref,
            src,
            dst,
            axes=run["axes"],
            channel=run["channel"],
            meta=kept,
            diameter=run["diameter"],
            tile=run["tile"],
            tta=run["tta"],
            memory_mb=run["memory_mb"],
            device=run["device"],
            overwrite=overwrite,
            resume=resume,
            quiet=quiet,
            extra=lambda size: {
                "units": "labels",
                "nuclei": size.as_dict(in_meta.pixel_size_nm),
                "warnings": caveats,
            },
        )
    if quiet:
        return
    if not done.tiles:
        out.print(f"{src} → {dst}: done before")
        return
    size = done.size.describe(in_meta.pixel_size_nm)
    out.print(
        f"{src} → {dst}: {done.nuclei} nuclei ({done.computed} of {done.tiles} tiles, "
        f"{done.merged} pieces joined across tile borders); {size}"
    )


def _segment_with_package(
    model: str,
    inputs: list[Path],
    targets: list[Path],
    map_targets: list[Path],
    options: dict,
    run: dict,
) -> None:
    """Labels (and maps) of each input from a bioimage.io package's output maps."""
    from abbe import io, models
    from abbe.models.packages.labels import labels_from_maps, read_channels

    m = models.load(model)
    m.check_image_output()
    reading = read_channels(m.spec)  # before any work: can its maps make labels at all?
    if not run["quiet"]:
        out.print(f"model: {m.describe()}")
    names = list(m.spec.output.channel_names)
    jobs = list(zip(inputs, targets, map_targets or [None] * len(inputs), strict=True))
    for src, dst, map_dst in progress(jobs, "segmenting", quiet=run["quiet"] or len(jobs) < 2):
        data, meta = io.read(src, axes=run["axes"])
        if m.spec.input.channels > 1 and "C" in meta.axes:
            image, axes = np.asarray(data), meta.axes
        else:
            image, axes = _plane(np.asarray(data), meta.axes, run["channel"], src), "YX"
        with reported_warnings(src) as caveats:
            m.check_pixel_size(meta.pixel_size_nm, src)
            try:
                result = m.predict(image, axes, **options)
            except InputError as exc:
                raise InputError(exc.message, exc.path or src) from None
            planes = result if result.ndim == 3 else result[None]
            labels = labels_from_maps(planes, reading)
        source = {"package": str(m.source), "name": m.spec.name, "weights": m.weight_format}
        if map_dst is not None:
            extra = {"units": "maps", "channels": names, "model": source, "warnings": caveats}
            maps_meta = io.Meta("CYX" if result.ndim == 3 else "YX", meta.pixel_size_nm)
            io.write(map_dst, result, maps_meta.replace(extra=extra), overwrite=run["overwrite"])
        kept = io.Meta(
            "YX",
            pixel_size_nm=meta.pixel_size_nm,
            extra={
                "units": "labels",
                "model": source,
                "labels": reading.description,
                "warnings": caveats,
            },
        )
        dtype = np.uint16 if labels.max() < 65536 else np.uint32
        io.write(dst, labels.astype(dtype), kept, overwrite=run["overwrite"])
        if not run["quiet"]:
            also = f" (+ maps {map_dst})" if map_dst is not None else ""
            out.print(f"{src} → {dst}{also}: {int(labels.max())} objects; {reading.description}")


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
