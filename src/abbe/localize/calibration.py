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


def photon_transfer_gain(
    stack: np.ndarray,
    *,
    offset: float | np.ndarray,
    excess_noise_factor: float = 1.0,
    fraction: float = 0.05,
) -> float:
    """Overall gain (ADU per photo-electron, EM gain included) read off the stack's own noise.

    Photon transfer (Janesick, *Photon Transfer*, SPIE 2007): in shot-noise-limited pixels
    the variance grows with the mean, var = F²·g·(mean − offset), with F² = 2 behind an
    electron-multiplying register (Robbins & Hadwen, IEEE TED 50:1227 (2003)) and 1 without.
    The dimmest pixels (lowest median over time, a ``fraction`` of them) hold background
    most of the time, so their variance over the frames against their mean above the offset
    gives g, once the frames where an emitter lit them (over 4 SD above) are left out and
    the dim pixels' common level in each frame (a background that changes) is taken out.
    Read noise adds g²σ² to the variance and is neglected (below 1 e⁻ behind an EM
    register); for a CCD with strong read noise give the gain from its datasheet instead.
    Within 5 % on simulated blinking filaments up to 5 emitters/µm²; where emitters are
    placed anew at random in every frame no pixel stays dark and the gain comes out high.

    Parameters
    ----------
    stack : (T, Y, X) raw frames in ADU, T ≥ 10.
    offset : the camera's baseline in ADU (a number or a (Y, X) map).
    excess_noise_factor : F², 2 for an EMCCD, 1 otherwise.
    fraction : share of the pixels, the dimmest, used for the estimate.

    Returns
    -------
    Gain in ADU per photo-electron.
    """
    data = np.asarray(stack, dtype=np.float64)
    if data.ndim != 3 or data.shape[0] < 10:
        raise InputError("photon transfer needs a (T, Y, X) stack of at least 10 frames")
    values = data.reshape(data.shape[0], -1) - np.asarray(offset, np.float64).reshape(-1)
    n = max(int(fraction * values.shape[1]), 10)
    dim = values[:, np.argsort(np.median(values, axis=0))[:n]]
    # A background that changes from frame to frame (bleaching, laser power) moves all dim
    # pixels together: their common level per frame is taken out, so that only shot noise
    # is left in each pixel's variance (low by about 1/n from the level's own noise).
    residual = dim - np.median(dim, axis=1, keepdims=True)
    # An emitter now and then on a dim pixel (emitters placed anew each frame) inflates its
    # variance many times over: clip frames far above the pixel's background, iteratively.
    keep = np.ones_like(dim, dtype=bool)
    for _ in range(5):
        kept = np.where(keep, residual, np.nan)
        mean, sd = np.nanmean(kept, axis=0), np.nanstd(kept, axis=0, ddof=1)
        keep = residual < mean + 4.0 * sd
    signal = float(np.nanmean(np.where(keep, dim, np.nan)))
    if signal <= 0:
        raise InputError("the dimmest pixels sit at or below the offset: check the offset")
    variance = float(np.nanmean(np.nanvar(np.where(keep, residual, np.nan), axis=0, ddof=1)))
    return variance / (excess_noise_factor * signal)


def camera_by_photon_transfer(
    stack: np.ndarray,
    *,
    offset: float,
    em_gain: float = 1.0,
    qe: float = 1.0,
    read_noise: float = 0.0,
) -> Camera:
    """A uniform camera whose overall gain is read off ``stack`` by :func:`photon_transfer_gain`;
    an EM gain above 1 makes it an EMCCD (excess noise F² = 2)."""
    emccd = em_gain > 1
    adu_per_electron = photon_transfer_gain(
        stack, offset=offset, excess_noise_factor=2.0 if emccd else 1.0
    )
    return Camera(
        kind="emccd" if emccd else "ccd",
        qe=qe,
        gain=adu_per_electron / em_gain,
        offset=offset,
        read_noise=read_noise,
        em_gain=em_gain,
    )


def psf_sigma_from_spectrum(
    frames: np.ndarray, pixel_size_nm: float, band: tuple[float, float] = (0.05, 0.5)
) -> float:
    """σ (nm) of a Gaussian PSF from the frames' mean power spectrum, at any emitter density.

    Emitters are points, so a frame's spectrum is the optical transfer function squared
    times the emitters' spectrum, flat for emitters at random, plus white noise:
    P(k) = A·exp(−(2πσk)²)·sinc²(k_x)·sinc²(k_y) + N, the sincs from integration over the
    pixels. Fitting log P over ``band`` (cycles per pixel) gives σ where fits of single spots
    fail: in dense frames neighbours merge into blobs that fit broader than the PSF
    (135 nm instead of 110 nm on the Deep-STORM test stack). Emitters crowded along
    filaments add power mostly at low frequencies; on that stack the estimate moves by
    under 3 % between bands starting at 0.05 and 0.2 cycles per pixel.

    Parameters
    ----------
    frames : (T, Y, X) or (Y, X) frames, offset removed (photo-electrons or ADU).
    pixel_size_nm : camera pixel size.
    band : spatial frequencies fitted, cycles per pixel.
    """
    from scipy.optimize import least_squares

    data = np.asarray(frames, dtype=np.float64)
    data = data[None] if data.ndim == 2 else data
    if data.ndim != 3 or min(data.shape[1:]) < 16:
        raise InputError("PSF estimation needs frames of at least 16 × 16 pixels")
    ny, nx = data.shape[1:]
    window = np.hanning(ny)[:, None] * np.hanning(nx)[None, :]
    centred = (data - data.mean(axis=(1, 2), keepdims=True)) * window
    power = (np.abs(np.fft.fft2(centred)) ** 2).mean(0)
    ky, kx = np.fft.fftfreq(ny)[:, None], np.fft.fftfreq(nx)[None, :]
    k = np.hypot(ky, kx)
    use = (k > band[0]) & (k < band[1]) & (power > 0)
    k, p = k[use], power[use]
    pixel = np.broadcast_to((np.sinc(ky) * np.sinc(kx)) ** 2, power.shape)[use]

    def residual(theta: np.ndarray) -> np.ndarray:
        log_a, s, log_n = theta
        model = np.exp(log_a - (2 * np.pi * k * s) ** 2) * pixel + np.exp(log_n)
        return np.log(model) - np.log(p)

    start = np.array([np.log(p.max()) + 2.0, 1.0, np.log(p.min())])
    fit = least_squares(residual, start, bounds=([-np.inf, 0.2, -np.inf], [np.inf, 5.0, np.inf]))
    return float(fit.x[1] * pixel_size_nm)
