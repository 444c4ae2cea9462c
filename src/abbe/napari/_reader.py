"""napari reader: TIFF, OME-TIFF and OME-Zarr images with their pixel size as the layer's scale;
localization tables (abbe, ThunderSTORM, EPFL CSV; Picasso HDF5) as points in nm."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from abbe.napari._layers import LayerData, image_layer, points_layer

IMAGE_SUFFIXES = (".tif", ".tiff", ".zarr")
TABLE_SUFFIXES = (".csv", ".hdf5", ".h5")
#: TIFF files larger than this are read lazily (dask, chunk by chunk): napari then loads only
#: the planes it shows, and a stack larger than memory opens instead of failing.
LAZY_BYTES = 256 * 2**20


def get_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """napari's reader hook: a function that reads ``path``, or None when abbe cannot read it
    (so that another plugin may)."""
    paths = [path] if isinstance(path, str) else list(path)
    if not paths or not all(_readable(Path(p)) for p in paths):
        return None
    return read_layers


def _readable(p: Path) -> bool:
    name = p.name.lower().rstrip("/")
    if name.endswith(IMAGE_SUFFIXES):
        return True
    if name.endswith(TABLE_SUFFIXES):
        return name.endswith((".hdf5", ".h5")) or _is_localization_csv(p)
    return False


def _is_localization_csv(p: Path) -> bool:
    """Whether a CSV's header names localization columns (other CSVs are left to others)."""
    try:
        with open(p, encoding="utf-8", errors="replace") as fh:
            header = fh.readline().lower()
    except OSError:
        return False
    return any(key in header for key in ("x_nm", "x [nm]", "xnano"))


def read_layers(path: str | list[str]) -> list[LayerData]:
    """Read each file into layer data tuples: images (lazily when large or OME-Zarr) or points.

    Raises
    ------
    InputError
        A file abbe cannot read, with what is wrong (napari shows it as one line).
    """
    paths = [path] if isinstance(path, str) else list(path)
    layers: list[LayerData] = []
    for p in map(Path, paths):
        if p.name.lower().endswith(TABLE_SUFFIXES):
            layers.append(read_points(p))
        else:
            layers.append(read_image(p))
    return layers


def read_image(path: str | Path) -> LayerData:
    """An image file as an image layer (labels when its metadata says so), pixel size as scale."""
    from abbe import io

    p = Path(path)
    lazy = p.name.lower().endswith(".zarr") or (p.is_file() and p.stat().st_size > LAZY_BYTES)
    data, meta = io.read(p, lazy=lazy)
    meta = meta.replace(source=str(p))
    name = p.name.split(".")[0]
    if meta.extra.get("units") == "labels":
        return image_layer(data, meta, name=name, layer_type="labels")
    return image_layer(data, meta, name=name)


def read_points(path: str | Path) -> LayerData:
    """A localization table as a points layer in nm (see :func:`points_layer`)."""
    from abbe.io.tables import read_localizations

    p = Path(path)
    return points_layer(read_localizations(p), name=p.name.split(".")[0])
