"""Camera calibration for localization: from flags, or from a camera file (JSON or YAML).

A camera file holds the numbers of a camera's datasheet or calibration::

    offset: 100          # baseline, ADU (or a TIFF of the per-pixel offset map)
    gain: 0.5            # ADU per electron at the output (after any EM gain)
    em_gain: 1           # electron-multiplying gain (1 without)
    qe: 0.8              # quantum efficiency (photons → electrons)
    read_noise: 1.6      # e⁻ rms (or a TIFF of the per-pixel map, sCMOS)
    gain_map: map.tif    # optional per-pixel relative gain (sCMOS)

``abbe calibrate`` adds ``photon_transfer`` (the numbers behind the gain) and ``warnings``
(what makes it doubtful; repeated as a warning wherever the file is read).
Paths are relative to the camera file. ``abbe simulate smlm`` writes one beside each stack
(maps inline as lists).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from abbe.errors import AbbeWarning, InputError
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
    # Written by ``abbe calibrate``: the numbers behind the gain and what makes it doubtful.
    photon_transfer: dict[str, Any] | None = None
    warnings: list[str] = []


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
    for message in cfg.warnings:
        # A doubtful calibration stays doubtful wherever the file is used.
        warnings.warn(f"camera file {p}: {message}", AbbeWarning, stacklevel=2)
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


#: Two photon-transfer estimates further apart than this share make a calibration doubtful.
_AGREEMENT = 0.2
#: Spatial frequencies where the fitted emitter term is below this share of the noise floor
#: count as noise only (a 1 % bias at most, and that share is subtracted).
_SIGNAL_SHARE = 0.01
#: What to do when the gain read off a stack is doubtful.
_CHECK = (
    "check it on flat-field frames at a few light levels or on a sparse stack (offset and read "
    "noise from dark frames), or give the camera's datasheet gain (abbe localize --gain, "
    "--em-gain)"
)


def _gain_from_noise(
    variance: float, signal: float, excess_noise_factor: float, read_noise_e: float
) -> float:
    """Solve variance = F²·g·signal + (g·σ)² for the gain g, σ the read noise in photo-electrons
    (the quadratic's positive root, written so that σ = 0 gives variance / (F²·signal))."""
    b = excess_noise_factor * signal
    return 2.0 * variance / (b + math.sqrt(b * b + 4.0 * read_noise_e**2 * variance))


def photon_transfer_gain(
    stack: np.ndarray,
    *,
    offset: float | np.ndarray,
    excess_noise_factor: float = 1.0,
    fraction: float = 0.05,
    read_noise_e: float = 0.0,
) -> float:
    """Overall gain (ADU per photo-electron, EM gain included) from the dimmest pixels' noise.

    Photon transfer (Janesick, *Photon Transfer*, SPIE 2007): in shot-noise-limited pixels
    the variance grows with the mean, var = F²·g·(mean − offset), with F² = 2 behind an
    electron-multiplying register (Robbins & Hadwen, IEEE TED 50:1227 (2003)) and 1 without.
    The dimmest pixels (lowest median over time, a ``fraction`` of them) hold background
    most of the time, so their variance over the frames against their mean above the offset
    gives g, once the frames where an emitter lit them (over 4 SD above) are left out and
    the dim pixels' common level in each frame (a background that changes) is taken out.
    Read noise adds (g·σ)² to the variance: given, it is taken out; else it is neglected
    (below 1 e⁻ behind an EM register). Within 7 % on simulated blinking filaments up to
    5 emitters/µm², 5–15 % high on sparse random emitters; where emitters are placed anew at
    random in every frame no pixel stays dark and the gain comes out many times too high
    (92.8 instead of 2.22 ADU/e⁻ at 5 emitters/µm²): :func:`photon_transfer` then takes the
    gain from :func:`spatial_noise_gain`.

    Parameters
    ----------
    stack : (T, Y, X) raw frames in ADU, T ≥ 10.
    offset : the camera's baseline in ADU (a number or a (Y, X) map).
    excess_noise_factor : F², 2 for an EMCCD, 1 otherwise.
    fraction : share of the pixels, the dimmest, used for the estimate.
    read_noise_e : read noise in photo-electrons (e⁻ rms at the output over the EM gain).

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
    return _gain_from_noise(variance, signal, excess_noise_factor, read_noise_e)


@dataclass(frozen=True)
class SpatialNoise:
    """Shot noise read off the frames' finest spatial detail (:func:`spatial_noise_gain`).

    Attributes
    ----------
    gain : ADU per photo-electron; doubtful where ``reason`` is set, an upper bound where
        ``upper_bound`` is.
    psf_sigma_px : σ of the Gaussian PSF fitted to the spectrum's emitter term, pixels.
    noise_share : share of the spectrum's frequencies that hold noise only.
    flatness : noise power in the lower half of those frequencies over the upper half
        (1 for white noise).
    reason : why the gain cannot be trusted, or None.
    upper_bound : the gain holds emitter light as well as noise, so the true gain is lower.
    """

    gain: float
    psf_sigma_px: float
    noise_share: float
    flatness: float
    reason: str | None = None
    upper_bound: bool = False


def _fit_spectrum(
    power: np.ndarray, k: np.ndarray, pixel: np.ndarray
) -> tuple[float, float, float]:
    """Fit log P(k) = log(A·exp(−(2πσk)²)·pixel + N); returns (log A, σ in pixels, log N)."""
    from scipy.optimize import least_squares

    def residual(theta: np.ndarray) -> np.ndarray:
        log_a, s, log_n = theta
        model = np.exp(log_a - (2 * np.pi * k * s) ** 2) * pixel + np.exp(log_n)
        return np.log(model) - np.log(power)

    start = np.array([np.log(power.max()) + 2.0, 1.0, np.log(power.min())])
    fit = least_squares(residual, start, bounds=([-np.inf, 0.2, -np.inf], [np.inf, 5.0, np.inf]))
    return float(fit.x[0]), float(fit.x[1]), float(fit.x[2])


def spatial_noise_gain(
    stack: np.ndarray,
    *,
    offset: float | np.ndarray,
    excess_noise_factor: float = 1.0,
    read_noise_e: float = 0.0,
    max_size: int = 256,
) -> SpatialNoise:
    """Overall gain (ADU per photo-electron) from the shot noise in the frames' finest detail.

    Photon transfer in space instead of time: shot noise is independent from pixel to pixel,
    so its power spectrum is flat, at Σ w²·var over the (windowed) pixels, whereas the
    emitters' light passes through the optics and the pixels, whose transfer function falls
    as exp(−(2πσk)²)·sinc²(k_x)·sinc²(k_y) (the model of :func:`psf_sigma_from_spectrum`).
    At the frequencies where that term has fallen below 1 % of the floor the spectrum holds
    noise only, whatever the density and however emitters blink; the variance there against
    the mean above the offset gives g as var = F²·g·mean (+ (g·σ)² read noise, taken out
    when given). Each pixel's mean over time is subtracted first, so that a fixed pattern
    (an sCMOS offset map) adds nothing. On simulated EMCCD stacks of 64 × 64 pixels and 100
    frames it is within 3 % at 0.1–10 random emitters/µm² and on blinking filaments (PSF σ
    1–1.3 px); 2.24 ADU/e⁻ for 2.22 on 200 frames at 5 emitters/µm², where the dimmest
    pixels give 92.8.

    The gain is doubtful, and ``reason`` says why, where the PSF is too narrow for the pixels
    (σ under about 0.8–0.9 px in dense frames: no frequency free of emitter light), where the
    noise is not white (correlated between neighbouring pixels: resampled, filtered or
    compressed frames), or where a fixed pixel pattern grows with the light: per-pixel gain
    differences (an sCMOS's, 3 % rms: the gain reads 8–10 % high in dense frames; 10 %: twice
    too high), found by :func:`_fixed_pattern`.

    Parameters
    ----------
    stack : (T, Y, X) raw frames in ADU, T ≥ 10, Y and X ≥ 16.
    offset : the camera's baseline in ADU (a number or a (Y, X) map).
    excess_noise_factor : F², 2 for an EMCCD, 1 otherwise.
    read_noise_e : read noise in photo-electrons (e⁻ rms at the output over the EM gain).
    max_size : the frames' central ``max_size``² pixels are used (plenty for the statistics).

    Returns
    -------
    SpatialNoise with the gain and the checks behind it.
    """
    data = np.asarray(stack)
    if data.ndim != 3 or data.shape[0] < 10 or min(data.shape[1:]) < 16:
        raise InputError("spatial photon transfer needs at least 10 frames of 16 × 16 pixels")
    t, ny, nx = data.shape
    h, w = min(ny, max_size), min(nx, max_size)
    y0, x0 = (ny - h) // 2, (nx - w) // 2
    off = np.asarray(offset, np.float64)
    off = off[y0 : y0 + h, x0 : x0 + w] if off.ndim == 2 else off
    values = data[:, y0 : y0 + h, x0 : x0 + w].astype(np.float64) - off
    pixel_mean = values.mean(axis=0)
    window = np.hanning(h)[:, None] * np.hanning(w)[None, :]
    w2 = window**2
    signal = float((pixel_mean * w2).sum() / w2.sum())
    if signal <= 0:
        raise InputError("the frames sit at or below the offset on average: check the offset")
    power = np.zeros((h, w // 2 + 1))
    for start in range(0, t, 32):  # bounded memory for large frames
        chunk = (values[start : start + 32] - pixel_mean) * window
        power += (np.abs(np.fft.rfft2(chunk)) ** 2).sum(axis=0)
    power /= t
    ky, kx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
    k = np.broadcast_to(np.hypot(ky, kx), power.shape)
    pixel = np.broadcast_to((np.sinc(ky) * np.sinc(kx)) ** 2, power.shape)
    fitted = (k > 0.1) & (power > 0)
    log_a, sigma, log_n = _fit_spectrum(power[fitted], k[fitted], pixel[fitted])
    emitters = np.exp(log_a - (2 * np.pi * k * sigma) ** 2) * pixel
    # Low frequencies also carry the window's spread of the background's changes: left out.
    band = (k > 0.25) & (emitters <= _SIGNAL_SHARE * np.exp(log_n))
    # Each pixel's variance over time, averaged, is (1 − 1/T) of its variance about its own
    # mean: the subtracted mean holds 1/T of the noise.
    scale = w2.sum() * (1.0 - 1.0 / t)
    if band.sum() < max(64, 0.03 * band.size):
        # The highest frequencies, emitter light included: no lower than the true floor.
        top = k >= np.quantile(k, 0.97)
        bound = _gain_from_noise(
            float(power[top].mean()) / scale, signal, excess_noise_factor, read_noise_e
        )
        return SpatialNoise(
            gain=bound,
            psf_sigma_px=sigma,
            noise_share=float(band.mean()),
            flatness=float("nan"),
            reason=(
                f"the PSF (σ ≈ {sigma:.2f} px) is too narrow for the pixels to leave spatial "
                "frequencies free of emitter light, so the shot noise cannot be read off the "
                "finest detail"
            ),
            upper_bound=True,
        )
    noise = power[band] - emitters[band]
    gain = _gain_from_noise(float(noise.mean()) / scale, signal, excess_noise_factor, read_noise_e)
    # White noise has the same power at every frequency: compare the band's two halves. Each
    # bin averages T frames (relative SD 1/√T) and the Hann window ties about 4 neighbours.
    middle = np.median(k[band])
    lower, upper = noise[k[band] <= middle], noise[k[band] > middle]
    flatness = float(lower.mean() / upper.mean())
    se = math.sqrt(4.0 * (1 / lower.size + 1 / upper.size) / t)
    reason, upper_bound = None, False
    if abs(flatness - 1.0) > 0.1 + 3.0 * se:
        reason = (
            f"the noise of the finest detail is not white (its power changes by "
            f"{abs(flatness - 1):.0%} across the highest spatial frequencies): noise correlated "
            "between neighbouring pixels (resampled, filtered or compressed frames) or a PSF "
            "with wide wings"
        )
    else:
        light = emitters >= np.exp(log_n)
        agreement, share = _fixed_pattern(
            values - pixel_mean, band, light if light.any() else k < 0.1
        )
        if agreement > max(0.25, 5.0 / math.sqrt((h - 8) * (w - 8))) and share > 0.03:
            reason = (
                "a fixed pixel pattern that grows with the light (per-pixel gain differences, "
                f"as of an sCMOS: the two halves of the frames agree on it at r = {agreement:.2f})"
                f" holds at least {share:.0%} of the finest detail's noise, so the gain read there "
                "is too high; calibrate per pixel on flat fields (a gain map)"
            )
            upper_bound = True
    return SpatialNoise(
        gain=gain,
        psf_sigma_px=sigma,
        noise_share=float(band.mean()),
        flatness=flatness,
        reason=reason,
        upper_bound=upper_bound,
    )


def _fixed_pattern(
    residual: np.ndarray, band: np.ndarray, light: np.ndarray, border: int = 4
) -> tuple[float, float]:
    """How much of the noise band holds a fixed pixel pattern times the light.

    A pixel whose gain differs by δ from its neighbours adds δ·(its light's change) to the
    finest detail: white as shot noise is, but the same pattern in every frame. Each pixel's
    sum over frames of noise band × smooth light (``light`` frequencies) is then δ times its
    light's power, plus shot noise; the sums over the even and over the odd frames share the
    pattern and nothing else (their noises are independent, and products of independent
    halves carry no bias, which ratios would for the skewed noise of an EMCCD).

    Parameters
    ----------
    residual : (T, Y, X) frames less each pixel's mean over time.
    band : rfft2 frequencies that hold noise only.
    light : rfft2 frequencies that hold most of the emitters' light.
    border : pixels left out at each edge (the filters' wrap-around).

    Returns
    -------
    The correlation over the pixels of the two halves' sums, and the share of the noise
    band's power that the pattern they agree on explains (a lower bound: the band holds only
    part of the pattern).
    """
    spectra = np.fft.rfft2(residual)
    shape = residual.shape[1:]
    inner = (slice(None), slice(border, -border), slice(border, -border))
    noise = np.fft.irfft2(spectra * band, s=shape)[inner]
    smooth = np.fft.irfft2(spectra * light, s=shape)[inner]
    sums, powers = [], []
    for half in (slice(0, None, 2), slice(1, None, 2)):
        sums.append((noise[half] * smooth[half]).sum(axis=0).ravel())
        powers.append((smooth[half] ** 2).sum(axis=0).ravel())
    (even, odd), both = sums, float((sums[0] * sums[1]).sum())
    agreement = both / math.sqrt(float((even**2).sum() * (odd**2).sum()))
    pattern = both / float((powers[0] * powers[1]).sum())  # δ², the pattern's variance
    share = pattern * float((smooth**2).mean()) / float((noise**2).mean())
    return agreement, share


@dataclass(frozen=True)
class PhotonTransfer:
    """The gain read off a stack (:func:`photon_transfer`), how, and any doubt about it.

    Attributes
    ----------
    gain : ADU per photo-electron, EM gain included.
    method : ``finest detail`` (:func:`spatial_noise_gain`) or ``dimmest pixels``
        (:func:`photon_transfer_gain`).
    spatial : the spatial estimate and its checks, None for frames under 16 × 16 pixels.
    dimmest_pixels : the dimmest pixels' estimate.
    warnings : what makes the gain doubtful and what to do (also emitted as AbbeWarning).
    """

    gain: float
    method: str
    spatial: SpatialNoise | None
    dimmest_pixels: float
    warnings: tuple[str, ...] = ()

    def record(self) -> dict[str, Any]:
        """The numbers behind the gain, for a camera file."""
        s = self.spatial
        return {
            "method": self.method,
            "adu_per_photoelectron": round(self.gain, 5),
            "finest_detail": None if s is None else round(s.gain, 5),
            "dimmest_pixels": round(self.dimmest_pixels, 5),
            "psf_sigma_px": None if s is None else round(s.psf_sigma_px, 3),
        }


def photon_transfer(
    stack: np.ndarray,
    *,
    offset: float | np.ndarray,
    excess_noise_factor: float = 1.0,
    read_noise_e: float = 0.0,
) -> PhotonTransfer:
    """Overall gain (ADU per photo-electron) read off a stack's own noise, at any density.

    Two estimates that fail in different ways: :func:`spatial_noise_gain` (the shot noise of
    the frames' finest detail; emitters do not reach it when the PSF spans a pixel or more)
    and :func:`photon_transfer_gain` (the dimmest pixels over time; too high where emitters
    light every pixel now and then, as random emitters at a few per µm² do). Both err
    mostly high. The spatial one is used when its checks pass, unless the dimmest pixels give
    over 20 % less (then noise that is not shot noise inflates the spatial one; warned).
    Otherwise the dimmest pixels' estimate is used, or the spatial one where that is an upper
    bound below it, with a warning (:class:`~abbe.errors.AbbeWarning`) that says why and what
    to do.

    Parameters
    ----------
    stack : (T, Y, X) raw frames in ADU, T ≥ 10.
    offset : the camera's baseline in ADU (a number or a (Y, X) map).
    excess_noise_factor : F², 2 for an EMCCD, 1 otherwise.
    read_noise_e : read noise in photo-electrons (e⁻ rms at the output over the EM gain).
    """
    dim = photon_transfer_gain(
        stack, offset=offset, excess_noise_factor=excess_noise_factor, read_noise_e=read_noise_e
    )
    spatial = None
    if min(np.shape(stack)[1:]) >= 16:
        spatial = spatial_noise_gain(
            stack, offset=offset, excess_noise_factor=excess_noise_factor, read_noise_e=read_noise_e
        )
    messages: list[str] = []
    dense = "which read high where emitters light them in most frames (dense random emitters)"
    if spatial is not None and spatial.reason is None:
        gain, method = spatial.gain, "finest detail"
        if dim < (1.0 - _AGREEMENT) * spatial.gain:
            gain, method = dim, "dimmest pixels"
            messages.append(
                f"the shot noise of the finest detail gives {spatial.gain:.3g} ADU/e⁻ but the "
                f"dimmest pixels over time only {dim:.3g}: noise that is not shot noise (read "
                "noise: give --read-noise; per-pixel offsets or gains of an sCMOS) inflates the "
                f"first, so the second is used; {_CHECK}"
            )
    elif spatial is None:
        gain, method = dim, "dimmest pixels"
        messages.append(
            f"frames under 16 × 16 pixels: the gain ({dim:.3g} ADU/e⁻) comes from the dimmest "
            f"pixels alone, {dense}; calibrate on a larger field, or {_CHECK}"
        )
    elif dim <= spatial.gain or not spatial.upper_bound:
        gain, method = dim, "dimmest pixels"
        messages.append(
            f"{spatial.reason}; the gain ({dim:.3g} ADU/e⁻) comes from the dimmest pixels "
            f"alone (the finest detail gives {spatial.gain:.3g}), {dense}; {_CHECK}"
        )
    else:
        gain, method = spatial.gain, "finest detail"
        messages.append(
            f"{spatial.reason}; the gain ({spatial.gain:.3g} ADU/e⁻) is only an upper bound "
            f"(the dimmest pixels give {dim:.3g}, {dense}); {_CHECK}"
        )
    for message in messages:
        warnings.warn(message, AbbeWarning, stacklevel=2)
    return PhotonTransfer(
        gain=gain, method=method, spatial=spatial, dimmest_pixels=dim, warnings=tuple(messages)
    )


def camera_by_photon_transfer(
    stack: np.ndarray,
    *,
    offset: float,
    em_gain: float = 1.0,
    qe: float = 1.0,
    read_noise: float = 0.0,
) -> Camera:
    """A uniform camera whose overall gain is read off ``stack`` by :func:`photon_transfer`;
    an EM gain above 1 makes it an EMCCD (excess noise F² = 2). ``read_noise`` is in e⁻ rms at
    the output, as in :class:`Camera`. The numbers behind the gain are in
    ``camera.extra["photon_transfer"]``; a doubtful gain is warned about (AbbeWarning)."""
    emccd = em_gain > 1
    transfer = photon_transfer(
        stack,
        offset=offset,
        excess_noise_factor=2.0 if emccd else 1.0,
        read_noise_e=read_noise / em_gain,
    )
    return Camera(
        kind="emccd" if emccd else "ccd",
        qe=qe,
        gain=transfer.gain / em_gain,
        offset=offset,
        read_noise=read_noise,
        em_gain=em_gain,
        extra={"photon_transfer": transfer.record(), "warnings": list(transfer.warnings)},
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
    pixel = np.broadcast_to((np.sinc(ky) * np.sinc(kx)) ** 2, power.shape)
    _, sigma, _ = _fit_spectrum(power[use], k[use], pixel[use])
    return float(sigma * pixel_size_nm)
