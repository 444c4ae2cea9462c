"""Tables on disk: CSV rows written atomically (training histories) and localization tables in
abbe's, ThunderSTORM's, the EPFL challenge's and Picasso's formats."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from abbe.io.atomic import atomic_path

if TYPE_CHECKING:
    import pandas as pd


def write_rows(
    path: str | os.PathLike[str],
    rows: Sequence[dict[str, Any]],
    *,
    columns: Sequence[str] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write dictionaries as CSV rows (header from ``columns`` or the first row), atomically."""
    fields = list(columns) if columns is not None else list(rows[0]) if rows else []
    with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)


# ------------------------------------------------------------------------------ localizations
#: ThunderSTORM's CSV header names for abbe's canonical columns (nm and photons).
THUNDERSTORM = {
    "frame": "frame",
    "x_nm": "x [nm]",
    "y_nm": "y [nm]",
    "sigma_nm": "sigma [nm]",
    "photons": "intensity [photon]",
    "background": "offset [photon]",
    "uncertainty_nm": "uncertainty [nm]",
}


def read_localizations(
    path: str | os.PathLike[str], *, pixel_size_nm: float | None = None
) -> pd.DataFrame:
    """Read localizations into abbe's canonical columns (``frame`` from 1, ``x_nm``, ``y_nm``,
    ``photons`` …; nm from the corner of the first pixel).

    Formats: abbe's CSV; ThunderSTORM CSV (``x [nm]`` …); the EPFL challenge CSV (``xnano``,
    ``ynano``); Picasso HDF5 (``.hdf5`` with its ``.yaml``; pixel units, pixel centres at whole
    numbers, frames from 0; the pixel size comes from the YAML or ``pixel_size_nm``).
    """
    import pandas as pd

    from abbe.errors import InputError

    p = Path(path)
    if not p.is_file():
        raise InputError("no such file", p)
    if p.suffix.lower() in (".hdf5", ".h5"):
        return _read_picasso(p, pixel_size_nm)
    try:
        table = pd.read_csv(p, skipinitialspace=True)
    except Exception as exc:
        raise InputError(f"not a readable CSV table ({exc.__class__.__name__})", p) from exc
    table.columns = [str(c).strip().strip('"') for c in table.columns]
    if "x [nm]" in table.columns:
        table = table.rename(columns={v: k for k, v in THUNDERSTORM.items()})
    elif "xnano" in table.columns:
        table = table.rename(columns={"xnano": "x_nm", "ynano": "y_nm", "intensity": "photons"})
    missing = {"frame", "x_nm", "y_nm"} - set(table.columns)
    if missing:
        raise InputError(
            f"no localization columns {sorted(missing)} (expected abbe, ThunderSTORM or EPFL CSV)",
            p,
        )
    if len(table) and not np.all(np.isfinite(table[["x_nm", "y_nm"]].to_numpy(float))):
        raise InputError("positions contain NaN or Inf", p)
    table["frame"] = table["frame"].astype(np.int64)
    return table.reset_index(drop=True)


def localization_files(path: str | os.PathLike[str]) -> list[Path]:
    """The files :func:`write_localizations` writes for ``path``: Picasso HDF5 brings a YAML."""
    p = Path(path)
    if p.name.lower().endswith((".hdf5", ".h5")):
        return [p, p.with_suffix(".yaml")]
    return [p]


def write_localizations(
    path: str | os.PathLike[str],
    locs: pd.DataFrame,
    *,
    pixel_size_nm: float | None = None,
    shape: tuple[int, int, int] | None = None,
    overwrite: bool = False,
    info: dict[str, Any] | None = None,
) -> list[Path]:
    """Write localizations atomically, the format chosen by the name: ``*.csv`` abbe's columns;
    ``*.thunderstorm.csv`` or ``*_ts.csv`` ThunderSTORM's; ``*.hdf5`` Picasso's HDF5 and YAML
    (needs ``pixel_size_nm`` and the movie ``shape`` (T, Y, X)). Returns the files written."""
    from abbe.io.atomic import OutputSet

    p = Path(path)
    name = p.name.lower()
    if name.endswith((".hdf5", ".h5")):
        from abbe.errors import InputError

        if pixel_size_nm is None or shape is None:
            raise InputError("Picasso HDF5 needs the pixel size and the movie shape", p)
        yaml_path = localization_files(p)[1]
        with OutputSet([p, yaml_path], overwrite=overwrite) as tmp:
            _write_picasso(tmp[p], tmp[yaml_path], locs, pixel_size_nm, shape, info or {})
        return [p, yaml_path]
    table = locs
    if name.endswith((".thunderstorm.csv", "_ts.csv")):
        cols = [c for c in THUNDERSTORM if c in locs.columns]
        table = locs[cols].rename(columns=THUNDERSTORM)
        table.insert(0, "id", np.arange(1, len(table) + 1))
    with OutputSet([p], overwrite=overwrite) as tmp:
        table.to_csv(tmp[p], index=False, float_format="%.4f")
    return [p]


def _read_picasso(p: Path, pixel_size_nm: float | None) -> pd.DataFrame:
    import h5py
    import pandas as pd
    import yaml

    from abbe.errors import InputError

    px = pixel_size_nm
    yaml_path = p.with_suffix(".yaml")
    if px is None and yaml_path.is_file():
        for doc in yaml.safe_load_all(yaml_path.read_text()):
            if isinstance(doc, dict) and "Pixelsize" in doc:
                px = float(doc["Pixelsize"])
    if px is None:
        raise InputError("pixel size unknown: no Pixelsize in the YAML; give --pixel-size", p)
    try:
        with h5py.File(p, "r") as fh:
            locs = fh["locs"][()]
    except Exception as exc:
        raise InputError(
            f"not a Picasso HDF5 file with 'locs' ({exc.__class__.__name__})", p
        ) from exc
    out = {
        "frame": locs["frame"].astype(np.int64) + 1,
        # Picasso puts pixel centres at whole numbers: the first pixel's corner is at −½.
        "x_nm": (locs["x"].astype(np.float64) + 0.5) * px,
        "y_nm": (locs["y"].astype(np.float64) + 0.5) * px,
    }
    names = locs.dtype.names
    if "photons" in names:
        out["photons"] = locs["photons"].astype(np.float64)
    if "bg" in names:
        out["background"] = locs["bg"].astype(np.float64)
    if "sx" in names and "sy" in names:
        out["sigma_nm"] = (locs["sx"] + locs["sy"]).astype(np.float64) / 2 * px
    if "lpx" in names and "lpy" in names:
        out["crlb_x_nm"] = locs["lpx"].astype(np.float64) * px
        out["crlb_y_nm"] = locs["lpy"].astype(np.float64) * px
        out["uncertainty_nm"] = np.sqrt((out["crlb_x_nm"] ** 2 + out["crlb_y_nm"] ** 2) / 2)
    return pd.DataFrame(out)


def _write_picasso(h5_tmp, yaml_tmp, locs, px, shape, info) -> None:
    import h5py
    import yaml

    n = len(locs)

    def col(name: str, default: float = 0.0) -> np.ndarray:
        return locs[name].to_numpy(np.float64) if name in locs.columns else np.full(n, default)

    sigma_px = col("sigma_nm") / px
    fields = [
        ("frame", "u4", locs["frame"].to_numpy(np.int64) - 1),
        ("x", "f4", locs["x_nm"].to_numpy(np.float64) / px - 0.5),
        ("y", "f4", locs["y_nm"].to_numpy(np.float64) / px - 0.5),
        ("photons", "f4", col("photons")),
        ("sx", "f4", sigma_px),
        ("sy", "f4", sigma_px),
        ("bg", "f4", col("background")),
        ("lpx", "f4", col("crlb_x_nm", col("uncertainty_nm")) / px),
        ("lpy", "f4", col("crlb_y_nm", col("uncertainty_nm")) / px),
    ]
    arr = np.rec.fromarrays([f[2].astype(f[1]) for f in fields], names=[f[0] for f in fields])
    with h5py.File(h5_tmp, "w") as fh:
        fh.create_dataset("locs", data=arr)
    t, h, w = shape
    movie = {
        "Byte Order": "<",
        "Data Type": "uint16",
        "Frames": int(t),
        "Height": int(h),
        "Width": int(w),
        "Pixelsize": float(px),
    }
    localize = {"Generated by": "abbe localize", **{k: v for k, v in info.items() if v is not None}}
    with open(yaml_tmp, "w") as fh:
        yaml.safe_dump_all([movie, localize], fh, sort_keys=False)
