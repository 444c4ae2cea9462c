"""Prediction on a Dask distributed cluster: many files, one huge image, frame chunks.

``--cluster local[:N]`` starts a :class:`distributed.LocalCluster` of N worker processes with one
thread each; ``--cluster tcp://host:8786`` joins a running ``dask scheduler`` (its workers need
abbe installed and the files on a shared path). Three kinds of tasks:

- **many files**: one task per file, running the verb's own per-file function on a worker (so
  the result is the one-process result), each output written atomically by its task;
- **one huge image** (:func:`restore_tiles`): tiles as tasks; each task computes its tiles as
  :func:`abbe.predict.tiling.predict_tiled` does in one process (same plan, same windows, the
  whole image's normalization range) and writes its cores into a disjoint region of the output
  Zarr, whose chunks are the tile cores, so no two tasks touch one chunk. Finished tiles are
  recorded in a JSON manifest beside the store (written atomically), which ``--resume`` reads;
- **one huge image segmented** (:func:`segment_tiles`): tiles as tasks, each labelling its tile
  grown by a halo and writing its core with ids unique to the tile; objects cut by tile borders
  are joined afterwards and ids made consecutive chunk by chunk (:mod:`abbe.predict.labels`);
- **frame chunks** of an SMLM stack: tables returned and concatenated in frame order.

A worker that dies has its tasks rescheduled by Dask; every write is idempotent (a region or a
temp-and-renamed file), so the output is the same. Models are loaded once per worker process
(:func:`worker_model`, a cache keyed by the model's path and a hash of its files).
"""

from __future__ import annotations

import contextlib
import hashlib
import io as _io
import json
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from abbe.errors import AbbeWarning, ConfigError, InputError, OutputExistsError

MANIFEST_VERSION = 1


# ----------------------------------------------------------------------------- the cluster
@dataclass(frozen=True)
class ClusterSpec:
    """Where tasks run: a new local cluster of ``workers`` processes, or a scheduler ``address``."""

    address: str | None = None
    workers: int | None = None


def parse_cluster(text: str) -> ClusterSpec:
    """Read ``--cluster``: ``local``, ``local:N`` or a scheduler address (``tcp://host:8786``).

    Raises
    ------
    ConfigError
        Anything else, or N < 1.
    """
    value = text.strip()
    if value == "local":
        return ClusterSpec(workers=os.cpu_count() or 1)
    if value.startswith("local:"):
        try:
            n = int(value.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 1:
            raise ConfigError(f"--cluster {text!r}: give local:N with N ≥ 1 worker processes")
        return ClusterSpec(workers=n)
    if "://" in value and value.split("://", 1)[1]:
        return ClusterSpec(address=value)
    raise ConfigError(
        f"--cluster {text!r}: give local, local:N (N worker processes) or a scheduler address "
        "such as tcp://host:8786"
    )


@contextlib.contextmanager
def connect(
    spec: str | ClusterSpec,
    *,
    dashboard: bool = True,
    announce: Callable[[str], None] | None = None,
) -> Iterator[Any]:
    """A :class:`distributed.Client` for ``spec``; a local cluster is closed on exit.

    Local workers are processes with one thread each (torch is then set to one thread per task),
    so N workers use N cores without oversubscription. The client is not made dask's default:
    only the tasks submitted to it run on the cluster, any other dask computation stays here.
    ``announce`` receives one line with the dashboard link.
    """
    from distributed import Client, LocalCluster

    spec = parse_cluster(spec) if isinstance(spec, str) else spec
    served = dashboard and _has_bokeh()  # Dask serves its dashboard with bokeh
    with contextlib.ExitStack() as stack:
        if spec.address is None:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=spec.workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0" if served else None,
                )
            )
            client = stack.enter_context(Client(cluster, set_as_default=False))
        else:
            try:
                client = stack.enter_context(
                    Client(spec.address, timeout="20s", set_as_default=False)
                )
            except OSError as exc:
                raise ConfigError(
                    f"--cluster {spec.address}: no scheduler answers there ({exc}); start one "
                    "with `dask scheduler` or use --cluster local"
                ) from None
        if announce is not None:
            n = len(client.scheduler_info().get("workers", {}))
            link = client.dashboard_link if served or spec.address else None
            where = f"dashboard {link}" if link else "no dashboard"
            if dashboard and not served and spec.address is None:
                where += " (it needs bokeh: pip install 'bokeh>=3.1')"
            announce(f"cluster: {n} workers at {client.scheduler.address}; {where}")
        yield client


def _has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


# ----------------------------------------------------------------------------- models
@dataclass(frozen=True)
class ModelRef:
    """How a worker loads a model: ``loader`` (``module:attribute``), its ``source`` (a name or
    path as given) and ``digest`` (a hash of its files, so a retrained model is not served from
    a worker's cache)."""

    loader: str
    source: str
    digest: str


_MODELS: dict[ModelRef, Any] = {}
_LOADS = 0  # models loaded in this process (the test checks "once per worker")


def model_ref(source: str | os.PathLike[str], *, loader: str = "abbe.models:load") -> ModelRef:
    """The reference to a model for :func:`worker_model`, its files hashed here (on the client)."""
    path = _model_files(str(source))
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        digest.update(f.name.encode())
        digest.update(f.read_bytes())
    return ModelRef(loader=loader, source=str(source), digest=digest.hexdigest()[:16])


def _model_files(source: str) -> Path:
    from abbe.models.registry import _bundled

    bundled = _bundled()
    if source in bundled:
        return Path(bundled[source])
    path = Path(source)
    if not path.exists():
        raise InputError("model not found", path)
    return path


def worker_model(ref: ModelRef) -> Any:
    """The model of ``ref``, loaded on first use in this process and kept."""
    global _LOADS
    if ref not in _MODELS:
        import importlib

        module, attribute = ref.loader.split(":")
        target: Any = importlib.import_module(module)
        for part in attribute.split("."):
            target = getattr(target, part)
        _MODELS[ref] = target(ref.source)
        _LOADS += 1
    return _MODELS[ref]


def loads_in_this_process() -> int:
    """How many models this process has loaded (run on each worker with ``client.run``)."""
    return _LOADS


# ----------------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class TaskOutput:
    """What a task hands back: its value, what it printed (stdout, stderr), and the abbe
    warnings it raised outside any :func:`~abbe.cli.common.reported_warnings` block."""

    value: Any
    stdout: str
    stderr: str
    warnings: tuple[tuple[str, str | None], ...]


def captured(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> TaskOutput:
    """Run ``fn`` on a worker, collecting what abbe's consoles print and the
    :class:`~abbe.errors.AbbeWarning` raised, so the client shows them (a worker's own stderr
    is not the user's terminal). abbe's consoles are swapped for the task's duration, which
    assumes one task at a time per worker process (one thread, as ``--cluster local`` starts
    them and the README asks of other clusters)."""
    from rich.console import Console

    from abbe.cli import common

    stdout, stderr = _io.StringIO(), _io.StringIO()
    saved = common.out, common.err
    common.out = Console(file=stdout, highlight=False, soft_wrap=True, width=200)
    common.err = Console(file=stderr, highlight=False, soft_wrap=True, width=200)
    try:
        with warnings.catch_warnings(record=True) as caught, _local_dask("synchronous"):
            warnings.simplefilter("always", AbbeWarning)
            value = fn(*args, **kwargs)
    finally:
        common.out, common.err = saved
    raised = tuple(
        (str(w.message), getattr(w.message, "path", None))
        for w in caught
        if issubclass(w.category, AbbeWarning)
    )
    return TaskOutput(
        value=value, stdout=stdout.getvalue(), stderr=stderr.getvalue(), warnings=raised
    )


def run_tasks(
    client: Any,
    calls: Sequence[tuple[Callable[..., Any], tuple, dict]],
    *,
    description: str,
    quiet: bool = False,
    on_done: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """Run ``calls`` (function, args, kwargs) as tasks; return their values in the given order.

    A rich progress bar follows the tasks as they finish; ``on_done(index, value)`` is called on
    the client for each finished task (e.g. to record it in a resume manifest). A task's error
    cancels the rest and is raised here.
    """
    from distributed import as_completed

    from abbe.cli.common import progress

    futures = [client.submit(fn, *args, pure=False, **kwargs) for fn, args, kwargs in calls]
    index = {f.key: i for i, f in enumerate(futures)}
    results: list[Any] = [None] * len(futures)
    try:
        done = as_completed(futures, loop=client.loop)
        for future in progress(done, description, total=len(futures), quiet=quiet):
            value = future.result()
            i = index[future.key]
            results[i] = value
            if on_done is not None:
                on_done(i, value)
    except BaseException:
        client.cancel(futures)
        raise
    return results


def replay(output: TaskOutput) -> Any:
    """Show a task's printed lines and warnings here, as if it had run in this process; the
    warnings are raised again (so a :func:`~abbe.cli.common.reported_warnings` block collects
    them). Returns the task's value."""
    from abbe.cli import common

    for text, console in ((output.stderr, common.err), (output.stdout, common.out)):
        for line in text.splitlines():
            console.print(line, markup=False)
    for message, path in output.warnings:
        warnings.warn(AbbeWarning(message, path), stacklevel=2)
    return output.value


# ----------------------------------------------------------------------------- one huge image
def partial_paths(target: Path) -> tuple[Path, Path]:
    """The store an interrupted tile run fills, and its manifest of finished tiles."""
    stem = target.name[: -len(".zarr")] if target.name.lower().endswith(".zarr") else target.name
    return (
        target.with_name(f".{stem}.partial.zarr"),
        target.with_name(f".{stem}.partial.json"),
    )


def check_tile_output(target: Path, *, overwrite: bool, resume: bool) -> None:
    """Refuse, before any work, what a tile run cannot do: an existing output without
    ``--overwrite``/``--resume``, or an interrupted run's store without ``--resume``."""
    work, manifest = partial_paths(target)
    if target.exists() and not (overwrite or resume):
        raise OutputExistsError(
            "already exists; pass --overwrite to replace it (or --resume to keep it)", target
        )
    if work.exists() and not (resume or overwrite):
        raise OutputExistsError(
            f"an interrupted run left {work.name} and {manifest.name} beside it; rerun the same "
            "command with --resume to finish it, or with --overwrite to start again",
            target,
        )


def _write_manifest(path: Path, data: dict[str, Any]) -> None:
    from abbe.io.atomic import temp_sibling

    tmp = temp_sibling(path)
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def _read_manifest(path: Path, expected: dict[str, Any]) -> set[int]:
    """Finished tiles of an earlier run of the same work; an error if the work differs."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        raise InputError(
            "cannot read this resume manifest; rerun with --overwrite to start again", path
        ) from None
    differs = [k for k, v in expected.items() if data.get(k) != v]
    if differs:
        raise InputError(
            f"was written by a different run ({', '.join(differs)} differ); rerun the same "
            "command with --resume, or with --overwrite to start again",
            path,
        )
    return {int(i) for i in data.get("done", [])}


@dataclass(frozen=True)
class TileRun:
    """The result of :func:`restore_tiles`: tiles in the plan, computed now, skipped (resumed)."""

    tiles: int
    computed: int
    skipped: int


def restore_tiles(
    client: Any,
    ref: ModelRef,
    source: Path,
    target: Path,
    *,
    axes: str | None,
    meta: Any,
    tile: int | str | None,
    memory_mb: float,
    device: str = "cpu",
    overwrite: bool = False,
    resume: bool = False,
    quiet: bool = False,
    tiles_per_task: int = 1,
    flush_seconds: float = 2.0,
    only: Sequence[int] | None = None,
) -> TileRun:
    """Restore one image into an OME-Zarr ``target``, its tiles as tasks on ``client``.

    The output equals :meth:`RestorationModel.predict` in one process with the same ``tile``
    and ``memory_mb``, bit for bit: the tile plan, each tile's window and the normalization range
    (of the whole image, measured here once) are the same. The output is never held in one
    process. Finished tiles are recorded in ``.<name>.partial.json`` beside the store
    (atomically, every ``flush_seconds``); with ``resume`` they are skipped.

    Parameters
    ----------
    client : a :class:`distributed.Client`.
    ref : the restoration model (:func:`model_ref`).
    source : the input image (OME-Zarr or TIFF, read lazily by the workers).
    target : the ``.zarr`` output.
    axes : the input's axes when the file's are wrong (as ``--axes``).
    meta : the output's metadata.
    tile, memory_mb, device : as for ``predict`` (each task uses one CPU thread).
    only : compute only these tiles (indices in the plan's order), e.g. to measure a few tiles
        of a huge image; the others stay empty (zero).
    """
    from abbe import io
    from abbe.data.normalize import percentile_range
    from abbe.io.atomic import commit
    from abbe.io.zarr import create_level0, finish_ome_zarr
    from abbe.predict.tiling import plan_tiles

    model = worker_model(ref)  # the client's own copy: plan and shapes
    if not hasattr(model, "output_shape") or hasattr(model, "spec"):
        raise InputError("tiles on a cluster need an abbe restoration model", ref.source)
    check_tile_output(target, overwrite=overwrite, resume=resume)
    work, manifest = partial_paths(target)
    if target.exists() and resume:
        return TileRun(tiles=0, computed=0, skipped=0)  # finished by an earlier run
    data, in_meta = io.read(source, axes=axes, lazy=True)
    in_axes = in_meta.axes
    spatial = model.config.axes
    if not set(spatial) <= set(in_axes):
        raise InputError(f"a {spatial} model needs an image with axes {spatial}; got {in_axes}")
    spatial_shape = tuple(data.shape[in_axes.index(a)] for a in spatial)
    tile_shape = model.tile_shape(spatial_shape, tile, memory_mb)
    net = model.network_config
    multiple = tuple(net.multiple)
    if tile_shape is None:  # one window: still one task, but a whole-image chunk
        tile_shape = tuple(-(-s // m) * m for s, m in zip(spatial_shape, multiple, strict=True))
    _, plan = plan_tiles(
        spatial_shape,
        tile=tile_shape,
        margin=(net.receptive_radius,) * len(spatial_shape),
        multiple=multiple,
    )
    norm = model.config.normalization
    with _local_dask():  # reads here, not through the cluster (a TIFF reader is not portable)
        lo, hi = percentile_range(data, norm.low, norm.high)
        # The out-of-distribution check of a one-process run, once, here (same plane, same
        # warnings); the tasks skip it.
        _check_unusual(model, data, in_axes)
    out_shape = model.output_shape(data.shape, in_axes)
    # Chunks are the tile cores (× the model's scale), so each task writes whole chunks of its
    # own: concurrent writers never share a chunk.
    # The first tile's core has the plan's core edge (rounded up to the network's multiple).
    core = {a: c.stop - c.start for a, c in zip(spatial, plan[0].core, strict=True)}
    chunks = tuple(core[a] * model.scale if a in "YX" else 1 for a in meta.axes)
    expected = {
        "version": MANIFEST_VERSION,
        "source": str(Path(source).resolve()),
        "model": ref.digest,
        "shape": list(out_shape),
        "tile": list(tile_shape),
        "range": [lo, hi],
    }
    done: set[int] = set()
    if resume and manifest.exists() and work.exists():
        done = _read_manifest(manifest, expected)
    else:
        for stale in (work, manifest):
            if stale.exists():
                _remove(stale)
        create_level0(work, out_shape, "float32", meta, chunks=chunks)
        _write_manifest(manifest, {**expected, "done": []})
    wanted = list(range(len(plan))) if only is None else [int(i) for i in only]
    todo = [i for i in wanted if i not in done]
    groups = [todo[k : k + tiles_per_task] for k in range(0, len(todo), tiles_per_task)]
    options = {
        "tile": tile_shape,
        "memory_mb": memory_mb,
        "intensity_range": (lo, hi),
        "device": device,
    }
    calls = [
        (_restore_tile_task, (ref, str(source), axes, str(work), group, options), {})
        for group in groups
    ]
    last = [time.monotonic()]

    def record(i: int, _value: Any) -> None:
        done.update(groups[i])
        if time.monotonic() - last[0] > flush_seconds:
            _write_manifest(manifest, {**expected, "done": sorted(done)})
            last[0] = time.monotonic()

    try:
        run_tasks(client, calls, description="tiles", quiet=quiet, on_done=record)
    finally:
        _write_manifest(manifest, {**expected, "done": sorted(done)})
    finish_ome_zarr(work, meta, name=target.name[: -len(".zarr")])
    if target.exists():  # --overwrite (or --resume of an output replaced meanwhile)
        commit(work, target)
    else:
        work.rename(target)
    manifest.unlink(missing_ok=True)
    return TileRun(tiles=len(plan), computed=len(todo), skipped=len(wanted) - len(todo))


def _local_dask(scheduler: str = "threads") -> Any:
    """Compute dask arrays in this process: inside a task (a nested graph sent to the
    scheduler would wait on the worker's only thread) and for the client's own reads."""
    import dask

    return dask.config.set(scheduler=scheduler)


def _check_unusual(model: Any, data: Any, axes: str) -> None:
    """The restoration model's out-of-distribution check, as ``predict`` runs it."""
    spatial = model.config.axes
    loop = [a for a in axes if a not in spatial]
    order = [axes.index(a) for a in loop + list(spatial)]
    view = data.transpose(order) if order != list(range(len(order))) else data
    model._warn_if_unusual(view, len(loop))  # one plane, as in a one-process run


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _restore_tile_task(
    ref: ModelRef,
    source: str,
    axes: str | None,
    work: str,
    tiles: list[int],
    options: dict[str, Any],
) -> list[int]:
    """On a worker: compute ``tiles`` of every frame and write their cores into the store."""
    import zarr

    from abbe import io
    from abbe.predict.tiling import only_tiles

    model = worker_model(ref)
    data, meta = io.read(source, axes=axes, lazy=True)
    out = zarr.open_array(Path(work) / "0", mode="r+")
    with only_tiles(tiles), _local_dask("synchronous"):
        model.predict(data, meta.axes, out=out, threads=1, warn=False, **options)
    return tiles


# ------------------------------------------------------------------ one huge image: labels
@dataclass(frozen=True)
class SegmentRun:
    """The result of :func:`segment_tiles`: tiles in the plan, computed now, skipped (resumed),
    the nuclei found (None while unfinished), the size segmented at, and pieces joined."""

    tiles: int
    computed: int
    skipped: int
    nuclei: int | None
    size: Any = None
    merged: int = 0


#: The largest part of a plane the client reads to measure the nuclei's size (its centre).
SIZE_CROP = 2048


def segment_tiles(
    client: Any,
    ref: ModelRef,
    source: Path,
    target: Path,
    *,
    axes: str | None,
    channel: int = 0,
    meta: Any,
    diameter: float | None = None,
    tile: int | str | None = "auto",
    tta: bool = False,
    memory_mb: float = 1024,
    device: str = "cpu",
    overwrite: bool = False,
    resume: bool = False,
    quiet: bool = False,
    flush_seconds: float = 2.0,
    only: Sequence[int] | None = None,
    extra: Callable[[Any], dict[str, Any]] | None = None,
) -> SegmentRun:
    """Segment one 2D image into an OME-Zarr label image ``target``, its tiles as tasks.

    Each task labels its tile's core grown by a halo (the network's context plus two nucleus
    diameters), as :meth:`Segmenter.predict` does the whole image (same zoom, same intensity
    levels, same watershed and joining), keeps its core with ids unique to the tile and writes
    it into its own chunks of the store; it records what the merge needs beside the store
    (:class:`abbe.predict.labels.TileLabels`). A final step on this client joins objects cut
    by tile borders, drops faint objects with the whole image's statistics and writes
    consecutive ids chunk by chunk (:mod:`abbe.predict.labels`). At zoom 1 the labels equal a
    one-process run's up to their numbering; at another zoom each tile is resampled on its own
    grid, so labels may differ from one process by a pixel along their outlines.

    The nuclei's size is measured (unless ``diameter`` is given) on the central
    ``SIZE_CROP``² of the image and the intensity levels on a subsample of at most 4 M pixels,
    both here (the size's warnings are raised here). Finished tiles are recorded in the resume
    manifest as for :func:`restore_tiles`; with ``only`` just those tiles are computed and the
    run is left unfinished (``resume`` finishes it). ``extra(size)`` gives the metadata kept
    with the labels (``abbe`` attributes of the store), from the nucleus size used.
    """
    import zarr

    from abbe import io
    from abbe.io.atomic import commit
    from abbe.io.zarr import create_level0, finish_ome_zarr
    from abbe.predict import labels as lab
    from abbe.predict.tiling import _round_up, plan_tiles

    seg = worker_model(ref)  # the client's own copy: plan, size, levels
    if not hasattr(seg, "instances"):
        raise InputError("tiles on a cluster need an abbe segmentation model", ref.source)
    check_tile_output(target, overwrite=overwrite, resume=resume)
    work, manifest = partial_paths(target)
    if target.exists() and resume:
        return SegmentRun(tiles=0, computed=0, skipped=0, nuclei=None)
    data, in_meta = io.read(source, axes=axes, lazy=True)
    plane = _lazy_plane(data, in_meta.axes, channel, source)
    shape = tuple(int(n) for n in plane.shape)
    with _local_dask():
        crop = tuple(slice(max(0, (n - SIZE_CROP) // 2), (n - SIZE_CROP) // 2 + SIZE_CROP)
                     for n in shape)  # fmt: skip
        size = seg.nucleus_size(np.asarray(plane[crop], dtype=np.float32), diameter)
        zoom = size.zoom
        levels = _segment_levels(plane, zoom, seg.config.percentiles)
    net = seg.network_config
    m = max(net.multiple)
    core_edge = seg.tile_shape(shape, tile, memory_mb) or tuple(_round_up(n, m) for n in shape)
    # Context: the network's reach (in image pixels) and two nucleus diameters, so that the
    # watershed basins of objects on a core's edge lie within the tile; a multiple of the
    # network's, so that at zoom 1 the tile's pooling grid is the whole image's; plus one
    # multiple, the band a rescaled tile may start later (on the multiple) than its edge.
    reach = net.receptive_radius / zoom + 4 * size.radius_px + (m if abs(zoom - 1) > 0.05 else 0)
    halo = _round_up(int(np.ceil(reach)) + 1, m)
    _, plan = plan_tiles(shape, tile=core_edge, margin=(halo, halo), multiple=(m, m))
    cores = [t.core for t in plan]
    bound = max((c[0].stop - c[0].start) * (c[1].stop - c[1].start) for c in cores)
    if len(plan) * bound >= 2**32:
        raise InputError(
            f"{len(plan)} tiles of up to {bound} labels do not fit 32-bit label ids", source
        )
    chunk = (cores[0][0].stop - cores[0][0].start, cores[0][1].stop - cores[0][1].start)
    expected = {
        "version": MANIFEST_VERSION,
        "kind": "segment",
        "source": str(Path(source).resolve()),
        "model": ref.digest,
        "shape": list(shape),
        "tile": list(chunk),
        "halo": halo,
        "zoom": zoom,
        "levels": list(levels),
        "channel": channel,
        "tta": tta,
    }
    records = work / "tiles"
    done: set[int] = set()
    if resume and manifest.exists() and work.exists():
        done = _read_manifest(manifest, expected)
    else:
        for stale in (work, manifest):
            if stale.exists():
                _remove(stale)
        create_level0(work, shape, "uint32", io.Meta("YX"), chunks=chunk)
        records.mkdir()
        _write_manifest(manifest, {**expected, "done": []})
    wanted = list(range(len(plan))) if only is None else [int(i) for i in only]
    todo = [i for i in wanted if i not in done]
    options = {
        "zoom": zoom,
        "levels": levels,
        "tta": tta,
        "halo": halo,
        "bound": bound,
        "memory_mb": memory_mb,
        "device": device,
    }
    calls = [
        (_segment_tile_task, (ref, str(source), axes, channel, str(work), i, cores[i], options), {})
        for i in todo
    ]
    last = [time.monotonic()]

    def record(k: int, _value: Any) -> None:
        done.add(todo[k])
        if time.monotonic() - last[0] > flush_seconds:
            _write_manifest(manifest, {**expected, "done": sorted(done)})
            last[0] = time.monotonic()

    try:
        outputs = run_tasks(client, calls, description="tiles", quiet=quiet, on_done=record)
    finally:
        _write_manifest(manifest, {**expected, "done": sorted(done)})
    for output in outputs:
        replay(output)
    if len(done) < len(plan):  # only some tiles (``only``): left for --resume
        return SegmentRun(len(plan), len(todo), len(wanted) - len(todo), None, size)
    bins = lab.background_bins(levels)
    pieces, background = lab.load_records([records / f"{i}.npz" for i in range(len(plan))])
    merged = lab.merge_tiles(
        pieces,
        lab.grid_neighbours(cores),
        bins=bins,
        min_contrast=seg.config.min_contrast,
        background=background,
    )
    # The final pass, chunk by chunk, into a fresh array (an interrupted pass is simply redone).
    group = zarr.open_group(work, mode="r+")
    raw = group["0"]
    final = group.create_array("labels", shape=shape, chunks=chunk, dtype="uint32", overwrite=True)
    for i, core in enumerate(cores):
        final[core] = lab.relabel(raw[core], i * bound, merged.lookup[i])
    # The final array becomes level 0; labels get no mean pyramid (one level).
    _remove(work / "0")
    _remove(records)
    (work / "labels").rename(work / "0")
    if extra is not None:
        meta = meta.replace(extra=extra(size))
    finish_ome_zarr(work, meta, name=target.name[: -len(".zarr")], max_levels=1)
    if target.exists():
        commit(work, target)
    else:
        work.rename(target)
    manifest.unlink(missing_ok=True)
    return SegmentRun(
        len(plan), len(todo), len(wanted) - len(todo), merged.objects, size, merged.merged
    )


def _segment_levels(
    plane: Any, zoom: float, percentiles: tuple[float, float]
) -> tuple[float, float]:
    """The intensities mapped to 0 and 1: as in one process (the percentiles of the rescaled
    image) when the image has at most 4 M pixels, else those of a subsample of the image
    (rescaling changes percentiles little; the image is never loaded whole)."""
    from scipy import ndimage

    from abbe.data.normalize import _subsample

    if int(np.prod(plane.shape)) <= 4_000_000:
        x = np.asarray(plane, dtype=np.float32)
        if abs(zoom - 1) > 0.05:
            x = ndimage.zoom(x, zoom, order=1)
    else:
        x = _subsample(plane, 4_000_000).astype(np.float32)
    lo, hi = np.percentile(x, percentiles)
    return float(lo), float(hi)


def _lazy_plane(data: Any, axes: str, channel: int, path: Path) -> Any:
    """The 2D nuclei plane of a lazily read image: YX as is, or one channel of CYX/YXC."""
    if axes == "YX":
        return data
    for name in ("C", "S"):
        if name in axes and len(axes) == 3 and sorted(axes) == sorted("YX" + name):
            k = axes.index(name)
            if channel >= data.shape[k]:
                raise InputError(
                    f"--channel {channel}: the image has {data.shape[k]} channels", path
                )
            index = [slice(None)] * 3
            index[k] = channel
            return data[tuple(index)]
    raise InputError(
        f"tiles as tasks segment one 2D image (YX, or one channel of CYX); got {axes} (a stack "
        "is segmented one file per task: write a TIFF)",
        path,
    )


def _segment_tile_task(
    ref: ModelRef,
    source: str,
    axes: str | None,
    channel: int,
    work: str,
    index: int,
    core: tuple[slice, slice],
    options: dict[str, Any],
) -> TaskOutput:
    """On a worker: label tile ``index`` (its core grown by the halo), write its core and its
    record (:func:`abbe.predict.labels.tile_record`)."""

    def run() -> int:
        import zarr

        from abbe import io
        from abbe.predict import labels as lab

        seg = worker_model(ref)
        data, meta = io.read(source, axes=axes, lazy=True)
        plane = _lazy_plane(data, meta.axes, channel, Path(source))
        halo = options["halo"]
        grown = tuple(
            slice(max(0, c.start - halo), min(n, c.stop + halo))
            for c, n in zip(core, plane.shape, strict=True)
        )
        window = plane[grown]
        image = np.asarray(window.compute() if hasattr(window, "compute") else window)
        image = image.astype(np.float32)
        if not np.isfinite(image).all():
            raise InputError("the image holds NaN or infinite values", Path(source))
        labels = seg.instances(
            image,
            zoom=options["zoom"],
            tta=options["tta"],
            levels=options["levels"],
            window=(tuple(g.start for g in grown), tuple(plane.shape)),
            memory_mb=options["memory_mb"],
            device=options["device"],
            threads=1,
        )
        inner = tuple(
            slice(c.start - g.start, c.stop - g.start) for c, g in zip(core, grown, strict=True)
        )
        sides = [
            side
            for side, faces in (
                ("top", core[0].start > 0),
                ("bottom", core[0].stop < plane.shape[0]),
                ("left", core[1].start > 0),
                ("right", core[1].stop < plane.shape[1]),
            )
            if faces
        ]
        out, record = lab.tile_record(
            labels,
            inner,
            image[inner],
            index=index,
            offset=index * options["bound"],
            sides=sides,
            bins=lab.background_bins(options["levels"]),
        )
        zarr.open_array(Path(work) / "0", mode="r+")[core] = out
        record.save(Path(work) / "tiles" / f"{index}.npz")
        return record.count

    return captured(run)
