"""Camera calibration for localization: from flags, or from a camera file (JSON or YAML).

A camera file holds the numbers of a camera's datasheet or calibration::

    offset: 100          # baseline, ADU (or a TIFF of the per-pixel offset map)
    gain: 0.5            # ADU per electron at the output (after any EM gain)
    em_gain: 1           # electron-multiplying gain (1 without)
    qe: 0.8              # quantum efficiency (photons → electrons)
    read_noise: 1.6      # e⁻ rms (or a TIFF of the per-pixel map, sCMOS)
    gain_map: map.tif    # optional per-pixel relative gain (sCMOS)

Paths are relative to the camera file. ``abbe simulate smlm`` writes one beside each stack
(maps inline as lists).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from abbe.errors import InputError
from abbe.simulate.camera import Camera

MapOrNumber = float | str | list


class CameraFile(BaseModel):
    """Validated contents of a camera file."""

    model_config = ConfigDict(extra="forbid")

    kind: str = "ccd"
    offset: MapOrNumber = 0.0
    gain: float = Field(1.0, gt=0)
    em_gain: float = Field(1.0, ge=1)
    qe: float = Field(1.0, gt=0, le=1)
    read_noise: MapOrNumber = 0.0
    gain_map: str | list | None = None


def _value(value: Any, base: Path, name: str) -> float | np.ndarray:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return np.asarray(value, dtype=np.float32)
    from abbe import io

    data, _ = io.read(base / value)
    arr = np.asarray(data, dtype=np.float32)
    if arr.ndim != 2:
        raise InputError(f"the {name} map must be 2D (Y, X)", base / value)
    return arr


def load_camera(path: str | Path) -> Camera:
    """Read a camera file (JSON or YAML) into a :class:`Camera`."""
    p = Path(path)
    if not p.is_file():
        raise InputError("no such camera file", p)
    try:
        text = p.read_text()
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            raw = yaml.safe_load(text)
        else:
            raw = json.loads(text)
    except Exception as exc:
        raise InputError(f"not a readable camera file ({exc.__class__.__name__})", p) from exc
    try:
        cfg = CameraFile.model_validate(raw)
    except Exception as exc:
        first = str(exc).splitlines()
        raise InputError(f"invalid camera file: {' '.join(first[1:3]).strip()}", p) from exc
    base = p.parent
    gain_map = None if cfg.gain_map is None else _value(cfg.gain_map, base, "gain")
    return Camera(
        kind=cfg.kind if cfg.kind in ("ideal", "ccd", "scmos", "emccd") else "ccd",
        qe=cfg.qe,
        gain=cfg.gain,
        offset=_value(cfg.offset, base, "offset"),
        read_noise=_value(cfg.read_noise, base, "read noise"),
        em_gain=cfg.em_gain,
        gain_map=gain_map,
        bits=None,
    )


def camera_record(camera: Camera) -> dict[str, Any]:
    """A camera as a camera-file dictionary (maps inline as lists)."""

    def plain(value: Any) -> Any:
        if value is None or np.isscalar(value):
            return None if value is None else float(value)
        return np.round(np.asarray(value, dtype=np.float64), 5).tolist()

    return {
        "kind": camera.kind,
        "offset": plain(camera.offset),
        "gain": float(camera.gain),
        "em_gain": float(camera.em_gain),
        "qe": float(camera.qe),
        "read_noise": plain(camera.read_noise),
        "gain_map": plain(camera.gain_map),
    }


def camera_from_flags(
    *,
    offset: float | None,
    gain: float | None,
    em_gain: float | None,
    qe: float | None,
    read_noise: float | None,
) -> Camera | None:
    """A uniform camera from command-line numbers; None when none was given (photon data)."""
    if all(v is None for v in (offset, gain, em_gain, qe, read_noise)):
        return None
    return Camera(
        kind="emccd" if (em_gain or 1) > 1 else "ccd",
        qe=qe if qe is not None else 1.0,
        gain=gain if gain is not None else 1.0,
        offset=offset or 0.0,
        read_noise=read_noise or 0.0,
        em_gain=em_gain or 1.0,
        bits=None,
    )


def looks_offset(stack: np.ndarray) -> bool:
    """Whether photon-count data look like raw camera output with a baseline (a warning)."""
    sample = np.asarray(stack[: min(len(stack), 20)], dtype=np.float64)
    return float(np.percentile(sample, 1)) > 50.0
