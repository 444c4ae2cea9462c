"""OME-Zarr (NGFF 0.5, Zarr v3) writing with a multiscale pyramid, chunk by chunk.

Written by hand rather than through ``ome_zarr.writer`` so that the pyramid's scales are always
right (passing transformations while leaving that writer's default scale factors silently records
scale 1) and so that images larger than memory stream through dask. The result is read by
``ome-zarr``'s reader and by napari (checked in the tests).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from abbe.errors import InputError
from abbe.io.atomic import atomic_path
from abbe.io.meta import Meta

_AXIS_TYPE = {"T": "time", "C": "channel", "Z": "space", "Y": "space", "X": "space"}


def write_ome_zarr(
    path: Path,
    data: Any,
    meta: Meta,
    *,
    overwrite: bool = False,
    chunk: int = 512,
    min_level_size: int = 256,
    max_levels: int = 6,
) -> Path:
    """Write ``data`` as OME-Zarr with a 2× (Y, X) mean pyramid, streaming with dask.

    Parameters
    ----------
    path : ``.zarr`` folder to create.
    data : numpy or dask array; axes in NGFF order (a subsequence of ``TCZYX``).
    meta : axes and pixel size (stored as the level-0 scale in nanometres).
    chunk : chunk edge in Y and X.
    min_level_size : stop the pyramid before the smaller of Y, X falls below this.
    max_levels : most levels written, level 0 included.
    """
    import dask.array as da

    arr = data if isinstance(data, da.Array) else da.from_array(np.asarray(data))
    with ome_zarr_writer(
        path,
        arr.shape,
        arr.dtype,
        meta,
        overwrite=overwrite,
        chunk=chunk,
        min_level_size=min_level_size,
        max_levels=max_levels,
    ) as level0:
        da.store(arr.rechunk(level0.chunks), level0, lock=False)
    return path


@contextlib.contextmanager
def ome_zarr_writer(
    path: Path,
    shape: tuple[int, ...],
    dtype: Any,
    meta: Meta,
    *,
    overwrite: bool = False,
    chunk: int = 512,
    min_level_size: int = 256,
    max_levels: int = 6,
) -> Iterator[Any]:
    """Yield an empty level-0 zarr array to fill (e.g. tile by tile); on success build the pyramid,
    write the NGFF metadata and move the store into place atomically."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        level0 = create_level0(tmp, shape, dtype, meta, chunks=_chunks(meta.axes, chunk))
        yield level0
        finish_ome_zarr(
            tmp, meta, name=Path(path).stem, min_level_size=min_level_size, max_levels=max_levels
        )


def _chunks(axes: str, chunk: int) -> tuple[int, ...]:
    return tuple(chunk if a in "YX" else 1 for a in axes)


def create_level0(
    path: Path, shape: tuple[int, ...], dtype: Any, meta: Meta, *, chunks: tuple[int, ...]
) -> Any:
    """Create a Zarr v3 group at ``path`` (not atomically: the caller owns the folder) holding an
    empty level-0 array ``"0"``; :func:`finish_ome_zarr` later makes it an OME-Zarr."""
    import zarr

    axes = meta.axes
    if list(axes) != [a for a in "TCZYX" if a in axes]:
        raise InputError(f"OME-Zarr needs axes in TCZYX order, got {axes!r}", path)
    group = zarr.open_group(path, mode="w", zarr_format=3)
    return group.create_array("0", shape=shape, chunks=chunks, dtype=dtype)


def finish_ome_zarr(
    path: Path,
    meta: Meta,
    *,
    name: str,
    min_level_size: int = 256,
    max_levels: int = 6,
) -> None:
    """Build the 2× (Y, X) mean pyramid from the filled level ``"0"`` of the group at ``path``
    and write the NGFF metadata (runs on a dask cluster when a client is active)."""
    import dask.array as da
    import zarr

    axes = meta.axes
    group = zarr.open_group(path, mode="r+", zarr_format=3)
    level0 = group["0"]
    chunks = _chunks(axes, level0.chunks[axes.index("X")])
    iy, ix = axes.index("Y"), axes.index("X")
    base = [1.0] * len(axes)
    px = meta.pixel_size_nm or 1.0
    base[iy] = base[ix] = px
    if "Z" in axes and meta.z_step_nm:
        base[axes.index("Z")] = meta.z_step_nm
    if "T" in axes and meta.frame_interval_s:
        base[axes.index("T")] = meta.frame_interval_s
    datasets = [_dataset(0, base, 1, iy, ix)]
    level, factor = da.from_zarr(level0), 1
    for i in range(1, max_levels):
        if min(level.shape[iy], level.shape[ix]) // 2 < min_level_size:
            break
        level = _downsample(level, iy, ix).rechunk(chunks)
        factor *= 2
        out = group.create_array(
            str(i), shape=level.shape, chunks=chunks, dtype=level.dtype, overwrite=True
        )
        da.store(level, out, lock=False)
        level = da.from_zarr(out)
        datasets.append(_dataset(i, base, factor, iy, ix))
    group.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [
            {
                "name": name,
                "axes": [_axis(a, meta) for a in axes],
                "datasets": datasets,
            }
        ],
    }
    group.attrs["abbe"] = dict(meta.extra)


def _dataset(i: int, base: list[float], factor: int, iy: int, ix: int) -> dict[str, Any]:
    scale = [s * factor if j in (iy, ix) else s for j, s in enumerate(base)]
    return {"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": scale}]}


def _axis(letter: str, meta: Meta) -> dict[str, str]:
    entry = {"name": letter.lower(), "type": _AXIS_TYPE[letter]}
    if _AXIS_TYPE[letter] == "space":
        entry["unit"] = "nanometer"
    elif letter == "T" and meta.frame_interval_s:
        entry["unit"] = "second"
    return entry


def _downsample(level: Any, iy: int, ix: int) -> Any:
    """Mean of 2×2 blocks in Y and X, cast back to the input dtype (rounded for integers)."""
    import dask.array as da

    dtype = level.dtype
    out = da.coarsen(np.mean, level.astype(np.float32), {iy: 2, ix: 2}, trim_excess=True)
    if np.issubdtype(dtype, np.integer):
        out = da.round(out)
    return out.astype(dtype)
