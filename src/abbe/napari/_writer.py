"""napari writers: images and labels to TIFF with their pixel size, points to abbe's
localization CSV. Writes are atomic (``abbe.io``); napari's save dialog has already asked
before replacing a file, so an existing file is replaced."""

from __future__ import annotations

from typing import Any

import numpy as np

from abbe.napari._layers import layer_meta, points_table


def write_image(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Write an image layer as TIFF (OME-TIFF for ``.ome.tif``) with axes and pixel size."""
    from abbe import io

    array = _first_level(data, attributes)
    meta = layer_meta(array, attributes)
    io.write(path, np.asarray(array), meta, overwrite=True)
    return [path]


def write_labels(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Write a labels layer as an integer TIFF that abbe reads back as labels."""
    from abbe import io

    array = np.asarray(_first_level(data, attributes))
    meta = layer_meta(array, attributes)
    meta = meta.replace(extra={**meta.extra, "units": "labels"})
    dtype = np.uint16 if array.max(initial=0) < 65536 else np.uint32
    io.write(path, array.astype(dtype), meta, overwrite=True)
    return [path]


def write_points(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Write a points layer as an abbe localization CSV (frame, x_nm, y_nm, features…)."""
    from abbe.io.tables import write_localizations

    table = points_table(np.asarray(data), attributes)
    return [str(p) for p in write_localizations(path, table, overwrite=True)]


def _first_level(data: Any, attributes: dict[str, Any]) -> Any:
    """The full-resolution level of a multiscale layer, else the data."""
    if attributes.get("multiscale") or isinstance(data, list):
        return data[0]
    return data
