"""Read and write microscopy images: TIFF, OME-TIFF, ImageJ TIFF, PNG and OME-Zarr.

Every reader returns ``(array, Meta)``; every writer is atomic and refuses to replace an existing
file unless ``overwrite=True``. Problems with a file raise :class:`abbe.errors.InputError`
naming the file and what is wrong.
"""

from __future__ import annotations

import json
import math
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from abbe.errors import InputError
from abbe.io.atomic import atomic_path
from abbe.io.meta import Meta, check_axes, default_axes

PathLike = str | os.PathLike[str]

TIFF_SUFFIXES = (".tif", ".tiff")
PNG_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
ZARR_SUFFIXES = (".zarr",)
#: Namespace of the OME MapAnnotation in which abbe keeps ``Meta.extra`` (intensity units too).
OME_NAMESPACE = "abbe"

_SUPPORTED_KINDS = "uif b"  # unsigned, signed, float, bool
# tifffile axis letters that map onto ours; anything else needs an explicit --axes.
_TIFFFILE_AXES = {"T": "T", "C": "C", "Z": "Z", "Y": "Y", "X": "X", "S": "C", "I": "T", "Q": "T"}
# Length units to nanometres, as written by OME, ImageJ, NGFF and others.
_UNIT_NM = {
    "nm": 1.0,
    "nanometer": 1.0,
    "nanometre": 1.0,
    "um": 1e3,
    "µm": 1e3,
    "\u03bcm": 1e3,
    "\\u00b5m": 1e3,
    "micron": 1e3,
    "microns": 1e3,
    "micrometer": 1e3,
    "micrometre": 1e3,
    "mm": 1e6,
    "millimeter": 1e6,
    "cm": 1e7,
    "centimeter": 1e7,
    "m": 1e9,
    "meter": 1e9,
    "a": 0.1,
    "å": 0.1,
    "angstrom": 0.1,
    "pm": 1e-3,
}


# --------------------------------------------------------------------------------------------- read
def read(
    path: PathLike,
    *,
    axes: str | None = None,
    pixel_size_nm: float | None = None,
    lazy: bool = False,
    check_finite: bool = True,
) -> tuple[Any, Meta]:
    """Read an image and its metadata.

    Parameters
    ----------
    path : a ``.tif``/``.tiff`` (plain, ImageJ or OME), ``.png`` or ``.zarr`` (OME-Zarr) path.
    axes : override the axes found in the file (one letter per dimension from ``STCZYX``).
    pixel_size_nm : override the lateral pixel size found in the file.
    lazy : return a dask array read chunk by chunk (TIFF and OME-Zarr), for images larger than
        memory. Lazy arrays are not scanned for NaN/Inf.
    check_finite : raise on NaN or Inf values (eager reads only).

    Returns
    -------
    (array, Meta) : a numpy array (dask array when ``lazy``) and its :class:`Meta`.

    Raises
    ------
    InputError
        Missing, empty, corrupt or truncated file; unsupported dtype; NaN/Inf; axes that do not fit.
    """
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", p)
    name = p.name.lower()
    if name.endswith(ZARR_SUFFIXES) or (p.is_dir() and (p / "zarr.json").exists()):
        data, meta = _read_zarr(p, lazy=lazy)
    elif p.is_dir():
        raise InputError("is a folder, not an image file", p)
    elif p.stat().st_size == 0:
        raise InputError("file is empty (0 bytes)", p)
    elif name.endswith(TIFF_SUFFIXES):
        data, meta = _read_tiff(p, lazy=lazy)
    elif name.endswith(PNG_SUFFIXES):
        data, meta = _read_png(p)
    else:
        raise InputError(
            f"unsupported file type {p.suffix!r}; abbe reads .tif/.tiff, .ome.tif, .png and .zarr",
            p,
        )
    if axes is not None:
        meta = meta.replace(axes=check_axes(axes, data.ndim, path=str(p)), axes_guessed=False)
    elif meta.axes_guessed:
        _warn_guessed_axes(meta.axes, p)
    if pixel_size_nm is not None:
        meta = meta.replace(pixel_size_nm=_check_pixel_size(pixel_size_nm, p))
    validate(data, meta.axes, path=p, check_finite=check_finite and not lazy)
    return data, meta


def _warn_guessed_axes(axes: str, p: Path) -> None:
    """Say which axes a file without axes metadata was read with, and how to correct them: a Z
    stack read as a time series gives wrong results without any error."""
    import warnings

    from abbe.errors import AbbeWarning

    if axes == "TYX":
        message = "no axes in the file; read as TYX (time); pass --axes ZYX if these are z planes"
    else:
        message = f"no axes in the file; read as {axes}; pass --axes if that is wrong"
    warnings.warn(AbbeWarning(message, p), stacklevel=3)


def validate(
    data: Any, axes: str, *, path: PathLike | None = None, check_finite: bool = True
) -> None:
    """Check that an array is a usable image: known dtype, not empty, finite, axes fit its shape.

    Raises
    ------
    InputError
        naming ``path`` (when given) and the problem.
    """
    kind = np.dtype(data.dtype).kind
    if kind not in _SUPPORTED_KINDS or np.dtype(data.dtype).itemsize > 8:
        raise InputError(
            f"unsupported pixel type {data.dtype}; use integer or floating-point images", path
        )
    if data.size == 0 or 0 in data.shape:
        raise InputError(f"image is empty (shape {tuple(data.shape)})", path)
    check_axes(axes, data.ndim, path=None if path is None else str(path))
    if check_finite and kind == "f":
        bad = ~np.isfinite(data)
        if bad.any():
            n_nan = int(np.isnan(data).sum())
            raise InputError(
                f"image contains {n_nan} NaN and {int(bad.sum()) - n_nan} infinite values; "
                "replace them (e.g. by the background level) before processing",
                path,
            )


def _check_pixel_size(value: float, path: Path | None) -> float:
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"pixel size must be a positive number of nm, got {value}", path)
    return float(value)


def _read_tiff(p: Path, *, lazy: bool) -> tuple[Any, Meta]:
    import tifffile

    try:
        with tifffile.TiffFile(p) as tif:
            series = tif.series[0]
            file_axes = series.axes
            meta = _tiff_meta(tif, p)
            if lazy:
                data = _lazy_tiff(p)
            else:
                data = series.asarray()
    except InputError:
        raise
    except Exception as exc:  # tifffile raises many kinds on corrupt input
        raise InputError(f"not a readable TIFF (corrupt or truncated?): {_short(exc)}", p) from None
    if meta.axes is None or len(meta.axes) != data.ndim:
        mapped = _map_tifffile_axes(file_axes, data.ndim, p)
        # tifffile's I and Q mean "a sequence of planes, meaning unknown", and letters abbe
        # does not know fall back to a default: either way the axes are a guess.
        direct = "".join(_TIFFFILE_AXES.get(a, "?") for a in file_axes.upper())
        unknown = data.ndim > 2 and (bool(set(file_axes.upper()) & set("IQ")) or direct != mapped)
        meta = meta.replace(axes=mapped, axes_guessed=bool(unknown))
    return data, meta


def _lazy_tiff(p: Path) -> Any:
    import dask.array as da
    import tifffile
    import zarr

    return da.from_zarr(zarr.open(tifffile.imread(p, aszarr=True), mode="r"))


def _map_tifffile_axes(file_axes: str, ndim: int, p: Path) -> str:
    mapped = "".join(_TIFFFILE_AXES.get(a, "?") for a in file_axes.upper())
    if "?" in mapped or len(set(mapped)) != len(mapped) or len(mapped) != ndim:
        try:
            return default_axes(ndim)
        except InputError:
            raise InputError(f"cannot interpret TIFF axes {file_axes!r}; give --axes", p) from None
    return mapped


def _tiff_meta(tif: Any, p: Path) -> Meta:
    """Collect axes, pixel size, z step and frame interval from OME, ImageJ or abbe's own tags."""
    axes: str | None = None
    px = dz = dt = None
    extra: dict[str, Any] = {}
    if tif.is_ome and tif.ome_metadata:
        axes, px, dz, dt = _ome_tiff_meta(tif.ome_metadata)
        extra = _ome_tiff_extra(tif.ome_metadata)
    elif tif.is_imagej and tif.imagej_metadata is not None:
        ij = tif.imagej_metadata
        scale = _UNIT_NM.get(str(ij.get("unit", "")).lower())
        xres = _resolution(tif.pages[0])
        if scale is not None and xres:
            px = scale / xres
            dz = ij["spacing"] * scale if "spacing" in ij else None
        dt = ij.get("finterval")
        if "abbe" in ij:
            extra = _loads(ij["abbe"])
            axes = extra.pop("axes", None)
    elif tif.shaped_metadata:
        sm = dict(tif.shaped_metadata[0])
        axes = sm.pop("axes", None)
        px = sm.pop("pixel_size_nm", None)
        dz = sm.pop("z_step_nm", None)
        dt = sm.pop("frame_interval_s", None)
        sm.pop("shape", None)
        extra = sm
    if px is None:
        px = _resolution_nm(tif.pages[0])
    return Meta(
        axes=axes, pixel_size_nm=px, z_step_nm=dz, frame_interval_s=dt, source=str(p), extra=extra
    )


def _ome_tiff_meta(xml: str) -> tuple[str | None, float | None, float | None, float | None]:
    root = ET.fromstring(xml)
    pixels = next((el for el in root.iter() if el.tag.endswith("Pixels")), None)
    if pixels is None:
        return None, None, None, None
    attr = pixels.attrib

    def size(key: str) -> float | None:
        if key not in attr:
            return None
        unit = attr.get(key + "Unit", "µm").lower()
        return float(attr[key]) * _UNIT_NM.get(unit, 1e3)

    dt = float(attr["TimeIncrement"]) if "TimeIncrement" in attr else None
    return None, size("PhysicalSizeX"), size("PhysicalSizeZ"), dt


def _ome_tiff_extra(xml: str) -> dict[str, Any]:
    """abbe's metadata (intensity ``units``, provenance) from its OME MapAnnotation, if any."""
    root = ET.fromstring(xml)
    for el in root.iter():
        if not el.tag.endswith("MapAnnotation") or el.get("Namespace") != OME_NAMESPACE:
            continue
        pairs = {m.get("K"): m.text or "" for m in el.iter() if m.tag.endswith("}M")}
        extra = _loads(pairs["abbe"]) if "abbe" in pairs else {}
        if "units" in pairs:  # the plain key wins: a person may have edited it in OMERO
            extra["units"] = pairs["units"]
        return extra
    return {}


def _resolution(page: Any) -> float | None:
    tag = page.tags.get("XResolution")
    if tag is None:
        return None
    num, den = tag.value
    return num / den if den else None


def _resolution_nm(page: Any) -> float | None:
    """Pixel size from TIFF resolution tags, trusted only in centimetres (inches mean dpi)."""
    unit = page.tags.get("ResolutionUnit")
    res = _resolution(page)
    if unit is None or int(unit.value) != 3 or not res:
        return None
    return 1e7 / res


def _read_png(p: Path) -> tuple[np.ndarray, Meta]:
    import imageio.v3 as iio

    try:
        data = np.asarray(iio.imread(p))
    except Exception as exc:
        raise InputError(f"not a readable image: {_short(exc)}", p) from None
    if data.ndim == 3:
        if data.shape[-1] == 4:  # alpha carries no signal
            data = data[..., :3]
        if data.shape[-1] == 3 and all(np.array_equal(data[..., 0], data[..., i]) for i in (1, 2)):
            data = data[..., 0]
        else:
            data = np.moveaxis(data, -1, 0)
    axes = "YX" if data.ndim == 2 else "CYX"
    return data, Meta(axes=axes, source=str(p))


def _read_zarr(p: Path, *, lazy: bool) -> tuple[Any, Meta]:
    import dask.array as da
    import zarr

    try:
        group = zarr.open_group(p, mode="r")
        attrs = dict(group.attrs)
        ms = (attrs.get("ome") or attrs).get("multiscales")
        if not ms:
            raise InputError("Zarr store has no OME 'multiscales' metadata", p)
        ms = ms[0]
        dataset = ms["datasets"][0]
        arr = group[dataset["path"]]
        axes_meta = ms.get("axes") or [{"name": a} for a in "tczyx"[-arr.ndim :]]
        names = [(a["name"] if isinstance(a, dict) else a).upper() for a in axes_meta]
        units = [a.get("unit") if isinstance(a, dict) else None for a in axes_meta]
        scale = _ngff_scale(dataset, len(names))
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"not a readable OME-Zarr store: {_short(exc)}", p) from None
    axes = "".join(names)
    px = dz = dt = None
    if "X" in axes:
        i = axes.index("X")
        px = scale[i] * _UNIT_NM.get(str(units[i] or "micrometer").lower(), 1e3)
    if "Z" in axes:
        i = axes.index("Z")
        dz = scale[i] * _UNIT_NM.get(str(units[i] or "micrometer").lower(), 1e3)
    if "T" in axes:
        dt = scale[axes.index("T")]
    data = da.from_zarr(arr)
    if not lazy:
        data = data.compute()
    extra = dict(attrs.get("abbe", {}))
    meta = Meta(
        axes=axes, pixel_size_nm=px, z_step_nm=dz, frame_interval_s=dt, source=str(p), extra=extra
    )
    return data, meta


def _ngff_scale(dataset: dict, n: int) -> list[float]:
    for tr in dataset.get("coordinateTransformations", []):
        if tr.get("type") == "scale":
            return [float(s) for s in tr["scale"]]
    return [1.0] * n


def _loads(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


# -------------------------------------------------------------------------------------------- write
def write(
    path: PathLike,
    data: Any,
    meta: Meta | None = None,
    *,
    axes: str | None = None,
    pixel_size_nm: float | None = None,
    overwrite: bool = False,
) -> Path:
    """Write an image atomically, keeping axes and pixel size.

    The format follows the suffix: ``.ome.tif`` writes OME-TIFF; ``.tif`` writes an ImageJ
    hyperstack when ImageJ can hold it (uint8, uint16 or float32, axes in TZCYX order) and a plain
    TIFF with abbe's JSON description and resolution tags otherwise; ``.zarr`` writes OME-Zarr
    (NGFF 0.5) with a multiscale pyramid.

    Parameters
    ----------
    path : output file.
    data : numpy array (or dask array for ``.zarr``).
    meta : axes, pixel size and provenance; ``axes``/``pixel_size_nm`` override it.
    overwrite : replace an existing file; otherwise :class:`OutputExistsError` is raised.

    Returns
    -------
    The path written.
    """
    p = Path(path)
    meta = meta or Meta(axes=axes or default_axes(np.ndim(data)))
    if axes is not None:
        meta = meta.replace(axes=axes)
    if pixel_size_nm is not None:
        meta = meta.replace(pixel_size_nm=pixel_size_nm)
    meta = meta.replace(axes=check_axes(meta.axes, data.ndim, path=str(p)))
    name = p.name.lower()
    if name.endswith(ZARR_SUFFIXES):
        from abbe.io.zarr import write_ome_zarr

        return write_ome_zarr(p, data, meta, overwrite=overwrite)
    if not name.endswith(TIFF_SUFFIXES):
        raise InputError("abbe writes images as .tif, .ome.tif or .zarr", p)
    arr = np.asarray(data)
    validate(arr, meta.axes, path=p, check_finite=False)
    with atomic_path(p, overwrite=overwrite) as tmp:
        if name.endswith((".ome.tif", ".ome.tiff")):
            _write_ome_tiff(tmp, arr, meta)
        elif _imagej_compatible(arr, meta.axes):
            _write_imagej(tmp, arr, meta)
        else:
            _write_shaped(tmp, arr, meta)
    return p


def _imagej_compatible(arr: np.ndarray, axes: str) -> bool:
    order = [a for a in "TZCYX" if a in axes]
    return arr.dtype in (np.uint8, np.uint16, np.float32) and list(axes) == order


def _resolution_args(meta: Meta, per: float) -> dict[str, Any]:
    if not meta.pixel_size_nm:
        return {}
    return {"resolution": (per / meta.pixel_size_nm, per / meta.pixel_size_nm)}


def _centimetre_resolution(meta: Meta) -> dict[str, Any]:
    kwargs = _resolution_args(meta, 1e7)
    if kwargs:
        kwargs["resolutionunit"] = "CENTIMETER"
    return kwargs


def _extra_json(meta: Meta) -> dict[str, Any]:
    return json.loads(json.dumps(meta.extra, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _write_imagej(tmp: Path, arr: np.ndarray, meta: Meta) -> None:
    import tifffile

    md: dict[str, Any] = {"axes": meta.axes}
    if meta.pixel_size_nm:  # without it, "um" and the default 1/1 tag would read back as 1 µm
        md["unit"] = "um"
    if meta.z_step_nm:
        md["spacing"] = meta.z_step_nm / 1e3
    if meta.frame_interval_s:
        md["finterval"] = meta.frame_interval_s
    md["abbe"] = json.dumps({"axes": meta.axes, **_extra_json(meta)})
    tifffile.imwrite(tmp, arr, imagej=True, metadata=md, **_resolution_args(meta, 1e3))


def _write_ome_tiff(tmp: Path, arr: np.ndarray, meta: Meta) -> None:
    import tifffile

    if "S" in meta.axes:
        raise InputError("OME-TIFF has no sample axis S; write a plain .tif instead", tmp)
    md: dict[str, Any] = {"axes": meta.axes}
    if meta.pixel_size_nm:
        md.update(
            PhysicalSizeX=meta.pixel_size_nm / 1e3,
            PhysicalSizeY=meta.pixel_size_nm / 1e3,
            PhysicalSizeXUnit="µm",
            PhysicalSizeYUnit="µm",
        )
    if meta.z_step_nm:
        md.update(PhysicalSizeZ=meta.z_step_nm / 1e3, PhysicalSizeZUnit="µm")
    if meta.frame_interval_s:
        md.update(TimeIncrement=meta.frame_interval_s, TimeIncrementUnit="s")
    if meta.extra:
        # OME has no field for intensity units: a key-value annotation keeps them (and abbe's
        # provenance, as JSON) where OMERO and Fiji show them and abbe reads them back.
        extra = _extra_json(meta)
        pairs = {"units": str(extra["units"])} if "units" in extra else {}
        pairs["abbe"] = json.dumps(extra)
        md["MapAnnotation"] = {"Namespace": OME_NAMESPACE, "Value": pairs}
    tifffile.imwrite(
        tmp, arr, ome=True, metadata=md, photometric="minisblack", **_centimetre_resolution(meta)
    )


def _write_shaped(tmp: Path, arr: np.ndarray, meta: Meta) -> None:
    import tifffile

    md: dict[str, Any] = {**_extra_json(meta), "axes": meta.axes}
    for key in ("pixel_size_nm", "z_step_nm", "frame_interval_s"):
        if getattr(meta, key):
            md[key] = getattr(meta, key)
    tifffile.imwrite(
        tmp, arr, metadata=md, photometric="minisblack", **_centimetre_resolution(meta)
    )
