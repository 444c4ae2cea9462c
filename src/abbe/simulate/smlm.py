"""Single-molecule localization microscopy (STORM/PALM) stacks with their ground truth.

Emitters are drawn either independently in each frame at a given density (the protocol of the
EPFL SMLM challenge, Sage et al. 2015/2019) or as fluorophores fixed on a structure (filaments,
puncta) that blink with two-state on/off kinetics and bleach. Each active emitter delivers a
photon count to a pixel-integrated Gaussian or Airy PSF; a uniform background per frame is added
and the camera model records the frame.

Coordinates follow the challenge: nm, origin at the upper-left corner of the first pixel, so a
pixel ``j`` spans ``[j·a, (j+1)·a)`` and its centre is ``(j + ½)·a``. Frames are numbered from 1
in tables, as in ThunderSTORM and the challenge files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from abbe.errors import InputError
from abbe.simulate.camera import Camera
from abbe.simulate.psfmodel import AiryPSF, IntegratedGaussian, PSFModel
from abbe.simulate.specimens import make as make_specimen

PSFKind = Literal["gaussian", "airy"]
TRUTH_COLUMNS = ["frame", "x_nm", "y_nm", "photons", "emitter"]


@dataclass(frozen=True, eq=False)
class SMLMSimulation:
    """A simulated SMLM acquisition.

    Attributes
    ----------
    stack : (T, Y, X) float32 recorded frames (photons for an ideal camera, else ADU).
    truth : one row per active emitter and frame: ``frame`` (from 1), ``x_nm``, ``y_nm``,
        ``photons`` (expected photons reaching the detector), ``emitter`` (identity).
    background : (T,) expected background photons per pixel in each frame.
    camera : the camera that recorded the stack.
    params : every parameter of the simulation, JSON-serializable.
    """

    stack: np.ndarray
    truth: pd.DataFrame
    background: np.ndarray
    camera: Camera
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def pixel_size_nm(self) -> float:
        return float(self.params["pixel_size_nm"])


def psf_model(
    psf: PSFKind | PSFModel,
    *,
    sigma_px: float,
    na: float = 1.4,
    wavelength_nm: float = 600.0,
    pixel_size_nm: float = 100.0,
) -> PSFModel:
    """The PSF model named by ``psf`` (a :class:`PSFModel` is returned as it is).

    ``gaussian``: :class:`IntegratedGaussian` of σ = ``sigma_px``; ``airy``: :class:`AiryPSF` of
    ``na`` and ``wavelength_nm``, integrated on 5×5 sub-pixel samples within ±4 λ/NA.
    """
    if isinstance(psf, PSFModel):
        return psf
    if psf == "gaussian":
        return IntegratedGaussian(sigma_px=sigma_px)
    if psf == "airy":
        return AiryPSF(na=na, wavelength_nm=wavelength_nm, pixel_size_nm=pixel_size_nm)
    raise InputError(f"unknown PSF {psf!r}; choose gaussian or airy, or give a PSFModel")


def render_emitters(
    x_px: np.ndarray,
    y_px: np.ndarray,
    photons: np.ndarray,
    shape: tuple[int, int],
    *,
    sigma_px: float,
    psf: PSFKind | PSFModel = "gaussian",
    na: float = 1.4,
    wavelength_nm: float = 600.0,
    pixel_size_nm: float = 100.0,
) -> np.ndarray:
    """Expected photons per pixel from point emitters (no background), on a (Y, X) grid.

    The PSF is :func:`psf_model` of the arguments; see :meth:`PSFModel.render`.
    """
    model = psf_model(
        psf, sigma_px=sigma_px, na=na, wavelength_nm=wavelength_nm, pixel_size_nm=pixel_size_nm
    )
    return model.render(x_px, y_px, photons, shape)


def _uniform_range(values: tuple[float, float], name: str) -> tuple[float, float]:
    lo, hi = float(values[0]), float(values[1])
    if not (0 <= lo <= hi) or not math.isfinite(hi):
        raise InputError(f"{name} range must satisfy 0 ≤ min ≤ max, got {values}")
    return lo, hi


def smlm(
    *,
    frames: int = 500,
    size: int | tuple[int, int] = 64,
    pixel_size_nm: float = 100.0,
    density: float = 0.1,
    photons: tuple[float, float] = (1000.0, 5000.0),
    background: tuple[float, float] = (20.0, 100.0),
    psf: PSFKind | PSFModel = "gaussian",
    psf_sigma_nm: float = 130.0,
    na: float = 1.4,
    wavelength_nm: float = 600.0,
    camera: str | Camera = "scmos",
    structure: str | None = None,
    on_fraction: float | None = None,
    mean_on_frames: float = 2.0,
    bleach_per_frame: float = 0.0,
    seed: int = 0,
) -> SMLMSimulation:
    """Simulate an SMLM stack and its ground-truth localizations.

    Parameters
    ----------
    frames : number of frames.
    size : frame edge (pixels), or (Y, X).
    pixel_size_nm : camera pixel size referred to the sample.
    density : mean number of active emitters per µm² per frame.
    photons : (min, max) of each emitter's photons per frame, uniform (challenge protocol).
    background : (min, max) of each frame's background, photons per pixel, uniform.
    psf : ``gaussian`` (pixel-integrated, σ = ``psf_sigma_nm``), ``airy`` (from ``na`` and
        ``wavelength_nm``) or any :class:`~abbe.simulate.psfmodel.PSFModel` (in focus, z = 0).
    camera : ``ideal``, ``ccd``, ``scmos``, ``emccd`` or a :class:`Camera`.
    structure : None for emitters placed at random in every frame (independent frames); or
        ``filaments``/``puncta``: fluorophores fixed on that structure, blinking.
    on_fraction : for a structure, the steady-state fraction of fluorophores on; default set so
        that ``density`` emitters/µm² are on per frame.
    mean_on_frames : mean length of an on-period (frames); off periods follow from
        ``on_fraction``.
    bleach_per_frame : probability that an on fluorophore bleaches at the end of a frame.
    seed : seeds every random step (positions, kinetics, photons, camera noise, sCMOS maps).

    Returns
    -------
    SMLMSimulation
    """
    shape = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if frames < 1 or min(shape) < 8:
        raise InputError("need at least 1 frame of at least 8×8 pixels")
    if density < 0 or pixel_size_nm <= 0 or psf_sigma_nm <= 0:
        raise InputError("density, pixel size and PSF σ must be positive")
    p_lo, p_hi = _uniform_range(photons, "photons")
    b_lo, b_hi = _uniform_range(background, "background")
    rng = np.random.default_rng(seed)
    area_um2 = shape[0] * shape[1] * (pixel_size_nm / 1e3) ** 2
    if structure is None:
        positions = _random_emitters(rng, frames, shape, density * area_um2)
    else:
        positions = _blinking_emitters(
            rng,
            frames,
            shape,
            pixel_size_nm,
            structure,
            density * area_um2,
            on_fraction,
            mean_on_frames,
            bleach_per_frame,
        )
    frame_idx, y_px, x_px, ident = positions
    n_photons = rng.uniform(p_lo, p_hi, len(frame_idx))
    bg = rng.uniform(b_lo, b_hi, frames)
    if isinstance(camera, str):
        camera = Camera.from_name(camera, shape, seed=seed + 1)
    model = psf_model(
        psf,
        sigma_px=psf_sigma_nm / pixel_size_nm,
        na=na,
        wavelength_nm=wavelength_nm,
        pixel_size_nm=pixel_size_nm,
    )
    expected = np.empty((frames, *shape), dtype=np.float64)
    order = np.argsort(frame_idx, kind="stable")
    bounds = np.searchsorted(frame_idx[order], np.arange(frames + 1))
    for t in range(frames):
        sel = order[bounds[t] : bounds[t + 1]]
        expected[t] = bg[t] + model.render(x_px[sel], y_px[sel], n_photons[sel], shape)
    stack = camera.expose(expected, seed=rng)
    truth = pd.DataFrame(
        {
            "frame": frame_idx[order] + 1,
            "x_nm": x_px[order] * pixel_size_nm,
            "y_nm": y_px[order] * pixel_size_nm,
            "photons": n_photons[order],
            "emitter": ident[order],
        }
    ).reset_index(drop=True)
    params = {
        "modality": "smlm",
        "frames": frames,
        "size": list(shape),
        "pixel_size_nm": pixel_size_nm,
        "density_per_um2": density,
        "photons": [p_lo, p_hi],
        "background": [b_lo, b_hi],
        "psf": psf if isinstance(psf, str) else repr(psf),
        "psf_sigma_nm": psf_sigma_nm if psf == "gaussian" else None,
        "na": na if psf == "airy" else None,
        "wavelength_nm": wavelength_nm if psf == "airy" else None,
        "camera": camera.describe(),
        "structure": structure,
        "seed": seed,
        "coordinates": "nm from the upper-left corner of the first pixel; frames from 1",
        "units": {"stack": camera.describe()["units"], "photons": "photons at the detector"},
    }
    return SMLMSimulation(stack=stack, truth=truth, background=bg, camera=camera, params=params)


def _random_emitters(rng, frames, shape, mean_count):
    counts = rng.poisson(mean_count, frames)
    total = int(counts.sum())
    frame_idx = np.repeat(np.arange(frames), counts)
    y = rng.uniform(0, shape[0], total)
    x = rng.uniform(0, shape[1], total)
    return frame_idx, y, x, np.arange(total)


def _blinking_emitters(
    rng, frames, shape, pixel_size_nm, structure, mean_on, on_fraction, mean_on_frames, bleach
):
    """Fluorophores sampled from a structure's density; a two-state Markov chain per frame."""
    k = 4
    for _ in range(20):  # long curves can miss a small field: draw again
        spec = make_specimen(
            structure, (shape[0] * k, shape[1] * k), pixel_size_nm=pixel_size_nm / k, seed=rng
        )
        dens = spec.density.astype(np.float64).ravel()
        if dens.sum() > 0:
            break
    else:
        raise InputError(f"the {structure} specimen is empty in this field")
    on_fraction = on_fraction or 0.01
    n_fluor = max(1, round(mean_on / on_fraction))
    cells = rng.choice(dens.size, n_fluor, p=dens / dens.sum())
    fy = (cells // (shape[1] * k) + rng.uniform(0, 1, n_fluor)) / k
    fx = (cells % (shape[1] * k) + rng.uniform(0, 1, n_fluor)) / k
    p_off = 1 / max(mean_on_frames, 1.0)  # on → off
    p_on = p_off * on_fraction / (1 - on_fraction)  # off → on, for the steady state
    state = rng.random(n_fluor) < on_fraction
    alive = np.ones(n_fluor, bool)
    rows_t, rows_i = [], []
    for t in range(frames):
        active = np.flatnonzero(state & alive)
        rows_t.append(np.full(active.size, t))
        rows_i.append(active)
        alive &= ~(state & (rng.random(n_fluor) < bleach))
        flip = rng.random(n_fluor)
        state = np.where(state, flip >= p_off, flip < p_on)
    t_idx = np.concatenate(rows_t)
    ident = np.concatenate(rows_i)
    return t_idx, fy[ident], fx[ident], ident
