"""Tiled prediction of images larger than memory, equal to untiled prediction.

The image is padded (reflect) at its far ends to a multiple of the network's downsampling factor
``m``. It is then cut into cores whose edges lie on multiples of ``m``; each core is predicted in
a window extending ``margin`` ≥ the receptive field on every side (clipped at the image border)
and only the core is kept. Every output pixel is thus computed with all the context it depends
on, pooling grids stay aligned, and the result equals the untiled one to float rounding: there
are no seams to blend away. Windows are read from, and cores written to, any sliceable array
(numpy, zarr, dask), so neither the input nor the output has to fit in memory.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np

from abbe.errors import InputError


@dataclass(frozen=True)
class Tile:
    """One window of the padded image and the core it contributes to the output."""

    window: tuple[slice, ...]  # in padded-image coordinates
    core_in_window: tuple[slice, ...]  # core, relative to the window
    core: tuple[slice, ...]  # core in output (unpadded) coordinates, clipped to the image


#: Indices (in :func:`plan_tiles` order) of the tiles :func:`predict_tiled` computes; None: all.
_SELECTED: ContextVar[frozenset[int] | None] = ContextVar("abbe_selected_tiles", default=None)


@contextlib.contextmanager
def only_tiles(indices: Iterable[int]) -> Iterator[None]:
    """Compute only these tiles (their indices in :func:`plan_tiles` order) in every
    :func:`predict_tiled` call inside the block; the other regions of ``out`` are not touched.

    A distributed task's share of one image (:mod:`abbe.predict.distributed`): each tile is
    computed exactly as in a one-process run (same window, same context), so the tasks together
    write the same output.
    """
    token = _SELECTED.set(frozenset(int(i) for i in indices))
    try:
        yield
    finally:
        _SELECTED.reset(token)


def _round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


def plan_tiles(
    shape: tuple[int, ...],
    *,
    tile: tuple[int, ...],
    margin: tuple[int, ...],
    multiple: tuple[int, ...],
) -> tuple[tuple[int, ...], list[Tile]]:
    """Cut an image of ``shape`` into tiles.

    Parameters
    ----------
    shape : spatial shape of the image.
    tile : core edge per axis (rounded up to ``multiple``).
    margin : context per side per axis (rounded up to ``multiple``).
    multiple : the network's size multiple per axis.

    Returns
    -------
    (padded_shape, tiles)
    """
    padded = tuple(_round_up(s, m) for s, m in zip(shape, multiple, strict=True))
    tile = tuple(min(_round_up(t, m), p) for t, m, p in zip(tile, multiple, padded, strict=True))
    margin = tuple(_round_up(g, m) for g, m in zip(margin, multiple, strict=True))
    per_axis = []
    for n, p, t, g in zip(shape, padded, tile, margin, strict=True):
        spans = []
        for start in range(0, p, t):
            stop = min(start + t, p)
            w0, w1 = max(0, start - g), min(p, stop + g)
            spans.append((slice(w0, w1), slice(start - w0, stop - w0), slice(start, min(stop, n))))
        per_axis.append([s for s in spans if s[2].start < s[2].stop])
    tiles = [
        Tile(
            window=tuple(a[0] for a in combo),
            core_in_window=tuple(a[1] for a in combo),
            core=tuple(a[2] for a in combo),
        )
        for combo in itertools.product(*per_axis)
    ]
    return padded, tiles


def read_window(image: Any, window: tuple[slice, ...]) -> np.ndarray:
    """Read ``window`` (padded coordinates) from ``image``, reflecting beyond its far ends.

    ``image`` has leading non-spatial axes (e.g. channels) followed by the spatial axes.
    """
    lead = image.ndim - len(window)
    spatial = image.shape[lead:]
    inside = tuple(slice(w.start, min(w.stop, n)) for w, n in zip(window, spatial, strict=True))
    part = image[(slice(None),) * lead + inside]
    part = np.asarray(part.compute() if hasattr(part, "compute") else part, dtype=np.float32)
    extra = [max(0, w.stop - n) for w, n in zip(window, spatial, strict=True)]
    if any(extra):
        pad = [(0, 0)] * lead + [(0, e) for e in extra]
        part = np.pad(part, pad, mode="reflect")
    return part


def auto_tile(
    shape: tuple[int, ...],
    *,
    bytes_per_pixel: float,
    memory_mb: float,
    margin: tuple[int, ...],
    multiple: tuple[int, ...],
) -> tuple[int, ...]:
    """Largest cubic core whose window fits the memory budget (at least one ``multiple``)."""
    budget = memory_mb * 2**20 / bytes_per_pixel  # pixels a window may have
    ndim = len(shape)
    edge = int(budget ** (1 / ndim))
    core = tuple(
        max(m, min(_round_up(s, m), (edge - 2 * g) // m * m))
        for s, g, m in zip(shape, margin, multiple, strict=True)
    )
    return core


def predict_tiled(
    fn: Callable[[np.ndarray], np.ndarray],
    image: Any,
    *,
    spatial_ndim: int,
    tile: tuple[int, ...] | None,
    margin: tuple[int, ...],
    multiple: tuple[int, ...],
    out: Any | None = None,
    out_channels: int | None = None,
    progress: Callable[[Iterator[Tile], int], Iterator[Tile]] | None = None,
    scale: int = 1,
) -> Any:
    """Apply ``fn`` to an image tile by tile.

    Parameters
    ----------
    fn : maps a float32 window ``(C, *spatial)`` to ``(C_out, *spatial)`` of the same spatial size.
    image : ``(C, *spatial)`` array (numpy, zarr or dask).
    spatial_ndim : number of spatial axes (2 or 3).
    tile : core edge per axis; None predicts the padded image in one window.
    margin, multiple : context per side and the network's size multiple, per axis.
    out : where to write ``(C_out, *spatial)`` (e.g. a zarr array); allocated when None.
    out_channels : C_out when ``out`` is None (default: C).
    progress : wraps the tile iterator (e.g. a progress bar), called with (tiles, count).
    scale : ``fn``'s output is this many times larger along each spatial axis (super-resolution);
        the output then has ``scale ×`` the image's spatial shape.

    Returns
    -------
    ``out``, filled.
    """
    if image.ndim != spatial_ndim + 1:
        raise InputError(
            f"expected (C, *spatial) with {spatial_ndim} spatial axes, "
            f"got shape {tuple(image.shape)}"
        )
    shape = tuple(image.shape[1:])
    whole = tuple(_round_up(s, m) for s, m in zip(shape, multiple, strict=True))
    _, tiles = plan_tiles(shape, tile=tile or whole, margin=margin, multiple=multiple)
    if out is None:
        big = tuple(n * scale for n in shape)
        out = np.empty((out_channels or image.shape[0], *big), dtype=np.float32)
    selected = _SELECTED.get()
    if selected is not None:
        tiles = [t for i, t in enumerate(tiles) if i in selected]
    iterator: Iterator[Tile] = iter(tiles)
    if progress is not None:
        iterator = progress(iterator, len(tiles))
    for t in iterator:
        window = read_window(image, t.window)
        result = fn(window)
        core = result[(slice(None), *(_scaled(c, scale) for c in t.core_in_window))]
        size = tuple((c.stop - c.start) * scale for c in t.core)
        target = tuple(_scaled(c, scale) for c in t.core)
        out[(slice(None), *target)] = core[(slice(None), *(slice(0, n) for n in size))]
    return out


def _scaled(s: slice, scale: int) -> slice:
    return s if scale == 1 else slice(s.start * scale, s.stop * scale)
