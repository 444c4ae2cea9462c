"""Spectroscopic SMLM, the classical way: each localization's spectral centroid and its dye.

For every localization the spectral crop (:class:`~abbe.simulate.spectral.Spectrometer`: the
pass band's columns plus margins, ``crop_height`` rows around the localization's row) is cut
from the frame. The spectral centroid is the background-subtracted, photon-weighted mean
wavelength ``c = Σ λ_j a_j / Σ a_j`` (Zhang et al., Nat Methods 12:935 (2015)), where ``a_j`` is
column ``j``'s photons read across rows with the PSF's row profile as weights, and the
background is the mean of the crop's top and bottom rows (a spot of σ ≤ 1.5 px puts under
1 % of its light there). Each column's wavelength is placed from the localization's x, so the
spatial precision enters the centroid as it does in the instrument.

The dye is the one whose reference centroid (the estimator applied to that dye's noise-free
crop) lies nearest. Two Cramér–Rao bounds under Poisson noise and a uniform background (Smith
et al., Nat Methods 7:373 (2010), for the same construction in space):
:func:`centroid_crlb`, the bound of the centroid when the spectrum's shape is unknown (each
column free), which the weighted centroid nearly reaches; and :func:`shift_crlb`, the bound on
the position of a *known* spectrum, which only an estimator that knows the dyes' shapes can
approach (Gaire et al., Biomed Opt Express 11:2705 (2020), read the centroid off a network
trained on them).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from abbe.errors import AbbeWarning, InputError
from abbe.simulate.spectral import SpectralSetup, row_profiles, spectral_profiles

UNASSIGNED = "unassigned"


@dataclass(frozen=True, eq=False)
class CropSet:
    """Spectral crops cut at localizations.

    Attributes
    ----------
    crops : (N, H, W) float32 photons (NaN-free; outside the frame filled with the crop's
        median).
    frac : (N,) where the pass band's lower edge falls inside its first crop column (0…1).
    wavelengths : (N, W) nm at each crop column's centre.
    inside : (N,) whether the whole crop lay inside the frame.
    row_centre : (N,) the localization's continuous row within its crop.
    x_px, y_px : (N,) the localizations the crops belong to (pixels).
    """

    crops: np.ndarray
    frac: np.ndarray
    wavelengths: np.ndarray
    inside: np.ndarray
    row_centre: np.ndarray
    x_px: np.ndarray
    y_px: np.ndarray


def spectral_crops(
    frames: np.ndarray, locs: pd.DataFrame, setup: SpectralSetup, *, pixel_size_nm: float
) -> CropSet:
    """Cut each localization's spectral crop from its frame.

    Parameters
    ----------
    frames : (T, Y, X) in photons (convert ADU with the camera first).
    locs : ``frame`` (from 1, into ``frames``), ``x_nm``, ``y_nm``.
    setup : dyes and spectrometer (``dyes.yaml``).
    pixel_size_nm : camera pixel.
    """
    spec = setup.spectrometer
    frames = np.asarray(frames, np.float32)
    if frames.ndim != 3:
        raise InputError(f"spectral crops need (T, Y, X) frames, got shape {frames.shape}")
    if frames.shape[2] <= spec.region_x0:
        raise InputError(
            f"the frames are {frames.shape[2]} columns wide but dyes.yaml puts the spectral "
            f"region at column {spec.region_x0}; check spectral.region_x0"
        )
    x = locs["x_nm"].to_numpy(np.float64) / pixel_size_nm
    y = locs["y_nm"].to_numpy(np.float64) / pixel_size_nm
    t = locs["frame"].to_numpy(np.int64) - 1
    col0, row0 = spec.crop_origin(x, y)
    h, w = spec.crop_height, spec.crop_width
    n = len(x)
    crops = np.empty((n, h, w), np.float32)
    inside = (
        (col0 >= spec.region_x0)
        & (col0 + w <= frames.shape[2])
        & (row0 >= 0)
        & (row0 + h <= frames.shape[1])
    )
    rows = row0[:, None] + np.arange(h)[None, :]
    cols = col0[:, None] + np.arange(w)[None, :]
    for i in range(n):
        r = np.clip(rows[i], 0, frames.shape[1] - 1)
        c = np.clip(cols[i], 0, frames.shape[2] - 1)
        crop = frames[t[i]][np.ix_(r, c)]
        if not inside[i]:
            # Columns or rows outside the spectral region hold nothing of this spectrum.
            bad = (
                ~((rows[i] >= 0) & (rows[i] < frames.shape[1]))[:, None]
                | ~((cols[i] >= spec.region_x0) & (cols[i] < frames.shape[2]))[None, :]
            )
            crop = np.where(bad, np.median(crop[~bad]) if (~bad).any() else 0.0, crop)
        crops[i] = crop
    u_lo = spec.column(x, spec.range_nm[0])
    return CropSet(
        crops=crops,
        frac=(u_lo - np.floor(u_lo)).astype(np.float32),
        wavelengths=spec.crop_wavelengths(x, col0),
        inside=inside,
        row_centre=y + spec.offset_y_px - row0,
        x_px=x,
        y_px=y,
    )


def crop_background(crops: np.ndarray) -> np.ndarray:
    """Background per crop (photons per pixel): mean of its top and bottom rows (a median of
    Poisson counts is biased by up to half a photon, which the sum over a crop multiplies)."""
    edge = np.concatenate([crops[:, 0, :], crops[:, -1, :]], axis=1)
    return edge.mean(axis=1)


@dataclass(frozen=True, eq=False)
class Centroids:
    """Classical spectral estimates per crop: ``centroid_nm``, ``photons`` (spectral,
    background subtracted) and ``background`` (photons per pixel)."""

    centroid_nm: np.ndarray
    photons: np.ndarray
    background: np.ndarray


def spectral_centroid(
    crops: np.ndarray,
    wavelengths: np.ndarray,
    *,
    sigma_px: float,
    row_centre: np.ndarray | None = None,
    background: np.ndarray | None = None,
) -> Centroids:
    """Background-subtracted, photon-weighted mean wavelength of each crop (Zhang 2015).

    Each column's photons are read across rows with the PSF's row profile as weights
    (``a_j = Σ_i q_i (I_ij − b) / Σ_i q_i²``, unbiased, and of least variance where the
    background dominates), then ``c = Σ λ_j a_j / Σ a_j``.

    Parameters
    ----------
    crops : (N, H, W) photons.
    wavelengths : (N, W) nm at each column's centre.
    sigma_px : PSF σ.
    row_centre : (N,) continuous row of the localization in its crop; default the middle.
    background : (N,) photons per pixel; default :func:`crop_background`.

    Returns
    -------
    Centroids; a crop with no light above the background gets the band's middle wavelength.
    """
    crops = np.asarray(crops, np.float64)
    n, h, _ = crops.shape
    b = crop_background(crops) if background is None else np.asarray(background, np.float64)
    v = np.full(n, h // 2 + 0.5) if row_centre is None else np.asarray(row_centre, np.float64)
    q = row_profiles(v, h, sigma_px=sigma_px)  # (N, H)
    spectrum = np.einsum("ni,niw->nw", q, crops - b[:, None, None]) / (q**2).sum(1)[:, None]
    total = spectrum.sum(axis=1)
    lo, hi = wavelengths.min(axis=1), wavelengths.max(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = (spectrum * wavelengths).sum(axis=1) / total
    # A negative or tiny total makes the ratio meaningless: say "the middle of the band".
    c = np.where((total > 0) & np.isfinite(c), np.clip(c, lo, hi), 0.5 * (lo + hi))
    return Centroids(centroid_nm=c, photons=np.maximum(total, 0.0), background=b)


def reference_centroids(setup: SpectralSetup, *, sigma_px: float) -> np.ndarray:
    """What :func:`spectral_centroid` returns, without noise, for each dye (averaged over
    where the band falls within a pixel): the references for :func:`assign_nearest`."""
    spec = setup.spectrometer
    fr = np.linspace(0.05, 0.95, 10)
    out = []
    for k in range(len(setup.dyes)):
        mean = _expected_crops(setup, np.full(fr.size, k), fr, 1000.0, sigma_px)
        # The band's lower edge lies at column margin + frac of these crops.
        j = np.arange(spec.crop_width)[None, :] + 0.5 - spec.margin_px - fr[:, None]
        wl = spec.range_nm[0] + j * spec.dispersion_nm_per_px
        est = spectral_centroid(mean, wl, sigma_px=sigma_px, background=np.zeros(fr.size))
        out.append(float(est.centroid_nm.mean()))
    return np.array(out)


def _expected_crops(
    setup: SpectralSetup,
    dye: np.ndarray,
    frac: np.ndarray,
    photons: np.ndarray | float,
    sigma_px: float,
    shift_nm: np.ndarray | None = None,
) -> np.ndarray:
    """Noise-free crops (no background) of emitters centred on the crop's middle row."""
    spec = setup.spectrometer
    u_lo = spec.margin_px + np.asarray(frac, np.float64)
    p = spectral_profiles(setup, dye, u_lo, spec.crop_width, sigma_px=sigma_px, shift_nm=shift_nm)
    v = np.full(len(u_lo), spec.crop_height // 2 + 0.5)
    q = row_profiles(v, spec.crop_height, sigma_px=sigma_px)
    n = np.broadcast_to(np.asarray(photons, np.float64), (len(u_lo),))
    return n[:, None, None] * q[:, :, None] * p[:, None, :]


def assign_nearest(centroid_nm: np.ndarray, references_nm: np.ndarray) -> np.ndarray:
    """Index of the nearest reference centroid for each centroid."""
    d = np.abs(np.asarray(centroid_nm)[:, None] - np.asarray(references_nm)[None, :])
    return np.argmin(d, axis=1)


def shift_crlb(
    setup: SpectralSetup,
    dye: np.ndarray,
    frac: np.ndarray,
    photons: np.ndarray,
    background: np.ndarray,
    *,
    sigma_px: float,
) -> np.ndarray:
    """Cramér–Rao bound (nm, standard deviation) of the position of a *known* spectrum.

    The expected crop ``μ = N q_i p_j(c) + b`` with unknown position c, photons N and
    background b; Fisher information ``I = Σ_pixels ∂μ ∂μᵀ / μ`` (Poisson), the bound is
    ``√(I⁻¹)_cc``. ``p_j`` is the dye's spectrum blurred by the PSF and binned on the crop;
    its derivative in c is a central difference of ±0.25 nm shifts. An estimator that knows
    the dye's spectral shape (a fit, a network trained on it) can come near it; the centroid,
    which assumes nothing of the shape, is bounded by :func:`centroid_crlb`.
    """
    dye = np.asarray(dye, np.int64)
    n_ph = np.maximum(np.asarray(photons, np.float64), 1.0)
    b = np.maximum(np.asarray(background, np.float64), 1e-3)
    h = 0.25
    unit = _expected_crops(setup, dye, frac, 1.0, sigma_px)
    plus = _expected_crops(setup, dye, frac, 1.0, sigma_px, shift_nm=np.full(len(dye), h))
    minus = _expected_crops(setup, dye, frac, 1.0, sigma_px, shift_nm=np.full(len(dye), -h))
    d_c = (plus - minus) / (2 * h)
    mu = n_ph[:, None, None] * unit + b[:, None, None]
    jac = np.stack([n_ph[:, None, None] * d_c, unit, np.ones_like(unit)], axis=-1).reshape(
        len(dye), -1, 3
    )
    fisher = np.einsum("npi,npj->nij", jac / mu.reshape(len(dye), -1, 1), jac)
    inv = np.linalg.inv(fisher)
    return np.sqrt(np.maximum(inv[:, 0, 0], 0.0))


def centroid_crlb(
    setup: SpectralSetup,
    dye: np.ndarray,
    frac: np.ndarray,
    photons: np.ndarray,
    background: np.ndarray,
    *,
    sigma_px: float,
    row_centre: np.ndarray | None = None,
) -> np.ndarray:
    """Cramér–Rao bound (nm, standard deviation) of the spectral centroid of each crop.

    The spectrum is unknown: each crop column ``j`` has its own photons ``a_j`` and the
    expected crop is ``μ_ij = a_j q_i + b`` (``q`` the PSF's row profile, ``b`` the background,
    known from the crop's many edge pixels). Poisson Fisher information of ``a_j`` is
    ``I_j = Σ_i q_i² / μ_ij``; the centroid ``c = Σ λ_j a_j / Σ a_j`` has
    ``∂c/∂a_j = (λ_j − c) / A``, so its bound is ``Σ_j (λ_j − c)² / (A² I_j)`` (the bound of a
    function of parameters; Kay, *Fundamentals of Statistical Signal Processing I*, 1993,
    §3.8). ``a_j`` is evaluated at the assigned dye's expected spectrum with ``photons`` in
    all. Without background it is ``σ_λ²/N``, the variance of the mean wavelength of N photons.
    """
    dye = np.asarray(dye, np.int64)
    spec = setup.spectrometer
    n_ph = np.maximum(np.asarray(photons, np.float64), 1.0)
    b = np.maximum(np.asarray(background, np.float64), 1e-6)
    h = spec.crop_height
    u_lo = spec.margin_px + np.asarray(frac, np.float64)
    p = spectral_profiles(setup, dye, u_lo, spec.crop_width, sigma_px=sigma_px)
    a = n_ph[:, None] * p  # (N, W)
    v = np.full(len(dye), h // 2 + 0.5) if row_centre is None else np.asarray(row_centre)
    q = row_profiles(v, h, sigma_px=sigma_px)  # (N, H)
    info = (q[:, :, None] ** 2 / (a[:, None, :] * q[:, :, None] + b[:, None, None])).sum(1)
    j = np.arange(spec.crop_width)[None, :] + 0.5 - u_lo[:, None]
    wl = spec.range_nm[0] + j * spec.dispersion_nm_per_px
    total = a.sum(1)
    c = (a * wl).sum(1) / total
    return np.sqrt(((wl - c[:, None]) ** 2 / info).sum(1)) / total


def classify_classical(crops: CropSet, setup: SpectralSetup, *, sigma_px: float) -> pd.DataFrame:
    """The classical columns for each crop: ``dye`` (nearest reference centroid),
    ``centroid_nm``, ``centroid_crlb_nm``, ``spectral_photons``, ``spectral_background``."""
    est = spectral_centroid(
        crops.crops, crops.wavelengths, sigma_px=sigma_px, row_centre=crops.row_centre
    )
    refs = reference_centroids(setup, sigma_px=sigma_px)
    idx = assign_nearest(est.centroid_nm, refs)
    crlb = centroid_crlb(
        setup,
        idx,
        crops.frac,
        est.photons,
        est.background,
        sigma_px=sigma_px,
        row_centre=crops.row_centre,
    )
    names = np.array(setup.names, dtype=object)
    return pd.DataFrame(
        {
            "dye": names[idx],
            "centroid_nm": est.centroid_nm,
            "centroid_crlb_nm": crlb,
            "spectral_photons": est.photons,
            "spectral_background": est.background,
        }
    )


def spectral_columns(
    frames: np.ndarray,
    locs: pd.DataFrame,
    setup: SpectralSetup,
    *,
    pixel_size_nm: float,
    sigma_px: float,
    model: Any = None,
    **compute: Any,
) -> pd.DataFrame:
    """The colour columns of ``locs`` (one row each, same order).

    Classical (:func:`classify_classical`): ``dye``, ``centroid_nm``, ``centroid_crlb_nm``,
    ``spectral_photons``, ``spectral_background``. With a
    :class:`~abbe.localize.spectral_model.SpectralClassifier` ``model``: ``dye`` becomes its
    calibrated choice (``unassigned`` below its ``reject_below``), plus ``p_<dye>`` per dye
    and ``centroid_learned_nm``; ``dye_centroid`` keeps the classical choice.

    Warns (:class:`AbbeWarning`) when spectral crops run outside the spectral region: those
    spectra are cut and their dyes unreliable.

    Parameters
    ----------
    frames : (T, Y, X) whole frames in photons (both regions); ``locs['frame']`` from 1.
    """
    crops = spectral_crops(frames, locs, setup, pixel_size_nm=pixel_size_nm)
    table = classify_classical(crops, setup, sigma_px=sigma_px)
    cut = int((~crops.inside).sum())
    if cut:
        warnings.warn(
            f"{cut} of {len(locs)} localizations have spectral crops that run outside the "
            "spectral region (their spectra are cut, their dye and centroid unreliable); check "
            "spectral.offset_x_px, offset_y_px and range_nm in the dyes file",
            AbbeWarning,
            stacklevel=2,
        )
    if model is not None and len(locs):
        pred = model.predict(crops.crops, crops.frac, **compute)
        table = table.rename(columns={"dye": "dye_centroid"})
        table.insert(0, "dye", pred["dye"])
        for k, name in enumerate(model.dyes):
            table[f"p_{name}"] = pred["probabilities"][:, k]
        table["centroid_learned_nm"] = pred["centroid_nm"]
    elif model is not None:
        table = table.rename(columns={"dye": "dye_centroid"})
        table.insert(0, "dye", pd.Series(dtype=object))
        for name in model.dyes:
            table[f"p_{name}"] = pd.Series(dtype=float)
        table["centroid_learned_nm"] = pd.Series(dtype=float)
    table.index = locs.index
    return table


#: Colours of the dyes in a render (RGB, 0…1), in the order of the dyes file.
DYE_COLOURS = (
    (1.0, 0.2, 0.2),
    (0.2, 1.0, 0.2),
    (0.3, 0.5, 1.0),
    (1.0, 0.9, 0.1),
    (1.0, 0.2, 1.0),
    (0.1, 1.0, 1.0),
)


def render_by_colour(
    locs: pd.DataFrame,
    dyes: Sequence[str],
    *,
    field_nm: tuple[float, float],
    pixel_size_nm: float,
) -> np.ndarray:
    """An RGB render ``(3, Y, X)`` float32 in 0…1: each dye's localizations drawn as Gaussians
    (:func:`abbe.localize.render.render_gaussian`) in its colour of :data:`DYE_COLOURS`;
    unassigned ones are left out. Each dye's image is scaled by its own 99.5th percentile."""
    from abbe.localize.render import render_gaussian

    rgb = None
    for k, name in enumerate(dyes):
        part = locs[locs["dye"] == name]
        img = render_gaussian(part, field_nm=field_nm, pixel_size_nm=pixel_size_nm)
        if rgb is None:
            rgb = np.zeros((3, *img.shape), np.float32)
        top = float(np.percentile(img[img > 0], 99.5)) if (img > 0).any() else 1.0
        colour = np.asarray(DYE_COLOURS[k % len(DYE_COLOURS)], np.float32)
        rgb += colour[:, None, None] * np.clip(img / max(top, 1e-12), 0, 1)[None]
    assert rgb is not None
    return np.clip(rgb, 0.0, 1.0)
