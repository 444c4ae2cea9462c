"""Between abbe's arrays and napari's layers: layer data tuples from (array, Meta) and tables,
and Meta back from a layer's scale and metadata. Plain Python: no napari import.

World coordinates are nm (pixels where the pixel size is unknown) from the corner of the first
pixel, abbe's convention for localizations: an image layer is shifted by half a pixel
(``translate``), so pixel ``i`` covers ``[i·px, (i+1)·px)`` and points read from a table in nm
fall on the spots they were fitted to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from abbe.io.meta import Meta, default_axes

if TYPE_CHECKING:
    import pandas as pd

#: Key of abbe's entry in a layer's ``metadata``: axes, pixel size, source, provenance.
KEY = "abbe"
#: Point diameter (nm) for localizations without a precision column.
DEFAULT_POINT_NM = 20.0
#: Table columns shown on points as features (the rest of a table travels too).
LOCALIZATION_FEATURES = ("frame", "z_nm", "photons", "uncertainty_nm")

LayerData = tuple[Any, dict[str, Any], str]


def axis_scale(meta: Meta) -> list[float]:
    """Scale per axis of ``meta.axes``: the pixel size for Y and X, the step for Z, else 1."""
    px = meta.pixel_size_nm or 1.0
    step = {"Y": px, "X": px, "Z": meta.z_step_nm or 1.0}
    return [float(step.get(a, 1.0)) for a in meta.axes]


def image_layer(
    data: Any, meta: Meta, *, name: str, layer_type: str = "image", **kwargs: Any
) -> LayerData:
    """A napari layer data tuple for an image (or labels) with its pixel size as ``scale``.

    Parameters
    ----------
    data : array (numpy, or dask for images larger than memory) with axes ``meta.axes``.
    meta : its axes and pixel size; kept in ``metadata["abbe"]`` for the writers.
    name : layer name.
    layer_type : ``image`` or ``labels``.
    kwargs : further layer settings (colormap, blending …).

    Returns
    -------
    (data, layer settings, layer type) as napari's readers and sample data return them.
    """
    scale = axis_scale(meta)
    # Half a pixel in Y and X: world 0 is the corner of the first pixel (module docstring).
    translate = [s / 2 if a in "YX" else 0.0 for a, s in zip(meta.axes, scale, strict=True)]
    known = meta.pixel_size_nm is not None
    nm_axes = ("YX" if known else "") + ("Z" if meta.z_step_nm else "")
    units = ["nm" if a in nm_axes else "pixel" for a in meta.axes]
    settings: dict[str, Any] = {
        "name": name,
        "metadata": {KEY: _meta_dict(meta)},
        **kwargs,
    }
    axes = meta.axes
    if layer_type == "image" and "C" in axes and data.shape[axes.index("C")] <= 8:
        # Channels as separate layers, as napari shows them; scale without the channel axis.
        c = axes.index("C")
        settings["channel_axis"] = c
        scale, translate, units = (
            [v for i, v in enumerate(x) if i != c] for x in (scale, translate, units)
        )
        axes = axes.replace("C", "")
    settings.update(
        scale=scale,
        translate=translate,
        units=units,
        axis_labels=[a.lower() for a in axes],
    )
    return data, settings, layer_type


def _meta_dict(meta: Meta) -> dict[str, Any]:
    return {
        "axes": meta.axes,
        "pixel_size_nm": meta.pixel_size_nm,
        "z_step_nm": meta.z_step_nm,
        "frame_interval_s": meta.frame_interval_s,
        "source": meta.source,
        "extra": dict(meta.extra),
    }


def layer_meta(data: Any, settings: dict[str, Any]) -> Meta:
    """The :class:`Meta` of a layer: abbe's own entry when the layer came from abbe and still
    fits the data, else axes guessed from the number of dimensions and the pixel size from the
    scale of X (none when that scale is napari's default 1 and nothing else says so).

    Parameters
    ----------
    data : the layer's data (its ``ndim`` is used).
    settings : the layer's settings: ``scale`` and ``metadata``, as napari's writers get them.
    """
    ndim = int(np.ndim(data)) if not hasattr(data, "ndim") else int(data.ndim)
    own = dict((settings.get("metadata") or {}).get(KEY) or {})
    axes = own.get("axes")
    if not axes or len(axes) != ndim:
        axes = default_axes(ndim)
    scale = list(settings.get("scale") or [1.0] * ndim)
    px = float(scale[-1])
    if px == 1.0 and own.get("pixel_size_nm") is None:
        px = None  # napari's default scale: the size is unknown, not 1 nm
    dz = float(scale[axes.index("Z")]) if "Z" in axes and len(scale) == ndim else None
    extra = dict(own.get("extra") or {})
    return Meta(axes, pixel_size_nm=px, z_step_nm=dz if dz != 1.0 else None, extra=extra)


def points_layer(locs: pd.DataFrame, *, name: str) -> LayerData:
    """A points layer data tuple for localizations in nm: (y_nm, x_nm) in world nm, the point
    diameter twice the localization precision (±1σ), the table's other columns as features.
    """
    coords = locs[["y_nm", "x_nm"]].to_numpy(np.float64)
    if "uncertainty_nm" in locs.columns:
        sigma = locs["uncertainty_nm"].to_numpy(np.float64)
        size = 2.0 * np.nan_to_num(sigma, nan=DEFAULT_POINT_NM / 2)
    else:
        size = np.full(len(locs), DEFAULT_POINT_NM)
    features = locs.drop(columns=["x_nm", "y_nm"]).reset_index(drop=True)
    settings = {
        "name": name,
        "size": size,
        "features": features,
        "face_color": "#ffbf00",
        "border_width": 0.0,
        "units": ["nm", "nm"],
        "axis_labels": ["y", "x"],
        "metadata": {KEY: {"columns": [c for c in LOCALIZATION_FEATURES if c in locs.columns]}},
    }
    return coords, settings, "points"


def points_table(data: np.ndarray, settings: dict[str, Any]) -> pd.DataFrame:
    """Localizations from a points layer: positions in world nm (data · scale + translate, the
    last two axes), ``frame`` from the features, else from a third-last (T) axis, else 1; the
    features' other columns kept."""
    import pandas as pd

    coords = np.asarray(data, dtype=np.float64).reshape(len(data), -1)
    ndim = coords.shape[1]
    scale = np.asarray(settings.get("scale") if settings.get("scale") is not None else [1.0] * ndim)
    shift = settings.get("translate")
    world = coords * scale + (np.asarray(shift) if shift is not None else 0.0)
    features = settings.get("features")
    features = pd.DataFrame(features) if features is not None else pd.DataFrame()
    features = features.reset_index(drop=True)
    table = pd.DataFrame({"y_nm": world[:, -2], "x_nm": world[:, -1]})
    if "frame" in features.columns and len(features) == len(table):
        frame = features["frame"].to_numpy()
    elif ndim >= 3:
        frame = np.rint(coords[:, -3]).astype(np.int64) + 1  # T index 0 is frame 1
    else:
        frame = np.ones(len(table), dtype=np.int64)
    table.insert(0, "frame", np.asarray(frame, dtype=np.int64))
    if len(features) == len(table):
        for col in features.columns:
            if col not in table.columns and col not in ("x_nm", "y_nm"):
                table[col] = features[col].to_numpy()
    return table
