"""Simulations matched to the user's data: the settings a learned SMLM model trains for.

A learned localizer (DECODE-style, :mod:`abbe.localize.learned`) or Deep-STORM
(:mod:`abbe.localize.deepstorm`) learns only the conditions it was simulated in. The PSF width,
brightness and background given by the user are kept; the rest are read off the user's stack.
:func:`match_config` turns both into the model's validated configuration.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from abbe.errors import InputError
from abbe.simulate.camera import Camera

if TYPE_CHECKING:
    from abbe.localize.fit import Electrons
    from abbe.localize.learned import SimulationMatch

#: Frames of the user's stack read to estimate the conditions.
MATCH_FRAMES = 200


def match_config(
    kind: Literal["localizer", "deepstorm"],
    *,
    pixel_size_nm: float,
    stack: np.ndarray | None = None,
    camera: Camera | None = None,
    psf_sigma_nm: float | None = None,
    photons: tuple[float, float] | None = None,
    background: tuple[float, float] | None = None,
    stack_density: float | None = None,
    density: tuple[float, float] | None = None,
    structured: float = 0.0,
    training: dict[str, Any] | None = None,
    **options: Any,
) -> SimulationMatch:
    """The training configuration of a learned SMLM model matched to the user's data.

    Settings given are kept; PSF σ, photons and background not given are read off the first
    200 frames of ``stack`` by :func:`matched_settings`.

    Parameters
    ----------
    kind : ``"localizer"`` (:class:`~abbe.localize.learned.LocalizerConfig`) or ``"deepstorm"``
        (:class:`~abbe.localize.deepstorm.DeepStormConfig`).
    pixel_size_nm : camera pixel size.
    stack : (T, Y, X) frames in camera units (ADU with ``camera``, else photons), or None.
    camera : the camera that recorded ``stack`` and that the simulations imitate; None is an
        ideal detector.
    psf_sigma_nm, photons, background : PSF σ, photons per emitter (min, max) and background
        photons per pixel (min, max); None reads them off ``stack``.
    stack_density : typical emitters per µm² per frame in ``stack`` for dense data (photons
        are then read from the frames' total signal), or None for sparse data.
    density : (min, max) emitters per µm² per frame to train for; None trains for
        0.1·top to top, top being twice ``stack_density`` (4 without it).
    structured : fraction of training frames with molecules on filaments.
    training : changes to the kind's default :class:`~abbe.train.TrainingConfig`
        (e.g. ``max_time_s``, ``max_epochs``, ``seed``).
    **options : further fields of the configuration (e.g. ``upsampling`` for Deep-STORM).

    Returns
    -------
    The validated configuration.

    Raises
    ------
    InputError
        If a setting is neither given nor readable off ``stack``.
    """
    from abbe.localize.calibration import camera_record
    from abbe.models.base import revalidated

    config_class = _config_class(kind)
    frames = None
    if stack is not None:
        frames = np.asarray(stack[: min(len(stack), MATCH_FRAMES)], dtype=np.float32)
    settings = matched_settings(
        stack=frames,
        pixel_size_nm=pixel_size_nm,
        camera=camera,
        psf_sigma_nm=psf_sigma_nm,
        photons=photons,
        background=background,
        stack_density=stack_density,
    )
    if density is None:
        top = 2 * stack_density if stack_density else 4.0
        density = (0.1 * top, top)
    base = config_class()
    return config_class(
        pixel_size_nm=pixel_size_nm,
        psf_sigma_nm=settings["psf_sigma_nm"],
        photons=settings["photons"],
        background=settings["background"],
        density=density,
        camera=camera_record(camera) if camera is not None else {"kind": "ideal"},
        structured=structured,
        training=revalidated(base.training, training or {}),
        **options,
    )


def _config_class(kind: str) -> type[SimulationMatch]:
    from abbe.models.registry import METHODS, model_class

    if kind not in ("localizer", "deepstorm") or kind not in METHODS:
        raise InputError(f"unknown kind {kind!r} of learned localizer: use localizer or deepstorm")
    return model_class(kind).config_class


def estimate_conditions(
    stack: np.ndarray,
    *,
    pixel_size_nm: float,
    camera: Camera | None = None,
    density: float | None = None,
) -> dict[str, Any]:
    """Simulation settings a learned localizer should match, read off the user's stack.

    Sparse data (``density`` not given): PSF σ is the median fitted σ of clear spots
    (classical fitting), photons and background the 5th–95th percentiles of the same fits.
    Dense data (``density`` in emitters per µm² per frame, where few spots are isolated and
    fits merge neighbours into broad blobs): σ from the frames' power spectrum
    (:func:`abbe.localize.calibration.psf_sigma_from_spectrum`), the background by
    :func:`dense_background` and the photons from the frames' mean signal above it shared
    among ``density`` emitters per µm² (a range of ×0.5 to ×1.5 around that mean).
    """
    from abbe.localize.calibration import psf_sigma_from_spectrum
    from abbe.localize.fit import fit, to_electrons

    frames = np.asarray(stack)[: min(len(stack), 200)]
    if density is not None:
        e = to_electrons(frames, camera)
        qe = e.qe
        sigma = psf_sigma_from_spectrum(e.data, pixel_size_nm)
        bg = dense_background(e) / qe
        signal = float(np.mean(e.data)) / qe - bg  # photons per pixel above the background
        mean_photons = signal / max(density * (pixel_size_nm / 1e3) ** 2, 1e-9)
        return {
            "psf_sigma_nm": round(sigma, 1),
            "photons": (round(0.5 * mean_photons, 1), round(1.5 * mean_photons, 1)),
            "background": (round(0.5 * bg, 2), round(1.5 * bg + 1.0, 2)),
        }
    locs = fit(
        frames,
        pixel_size_nm=pixel_size_nm,
        camera=camera,
        psf_sigma_nm=None,
        max_emitters=1,
        passes=1,
        refine=False,
        snr=10.0,
    )
    if len(locs) < 20:
        raise InputError("too few clear spots to estimate the PSF and brightness from")
    good = locs[(locs["sigma_nm"] > 0.5 * pixel_size_nm) & (locs["sigma_nm"] < 4 * pixel_size_nm)]
    photons = np.percentile(good["photons"], [5, 95])
    background = np.percentile(good["background"], [5, 95])
    return {
        "psf_sigma_nm": round(float(np.median(good["sigma_nm"])), 1),
        "spots": len(good),
        "photons": (float(max(photons[0], 50.0)), float(photons[1])),
        "background": (float(max(background[0], 0.0)), float(max(background[1], 1.0))),
    }


def dense_background(e: Electrons) -> float:
    """Background (photo-electrons per pixel) of dense frames: the lower of two estimates
    that each err only upwards. (a) The 5th percentile of the pixels' means over the frames:
    off the structure molecules carry, pixels hold background alone. (b) The 5th percentile
    q of all pixel values, taken as the background's own 5th percentile under shot noise,
    b − 1.645·√(F²·b) = q, solved for b. (a) is exact on structured samples (within 6 % on
    simulated filaments at 1–5 emitters/µm²; 19.6 e⁻ on the Deep-STORM stack, whose
    photon-transfer background is 19.5); where emitters are placed at random in every frame
    no pixel stays dark and (b) is used, about 45 % high at 5 emitters/µm².
    """
    over_time = float(np.percentile(e.data.mean(0), 5))
    q = max(float(np.percentile(e.data, 5)), 0.0)
    z = 1.645 * math.sqrt(e.excess)
    shot = ((z + math.sqrt(z * z + 4 * q)) / 2) ** 2
    return max(min(over_time, shot), 0.0)


def matched_settings(
    *,
    stack: np.ndarray | None,
    pixel_size_nm: float,
    camera: Camera | None = None,
    psf_sigma_nm: float | None = None,
    photons: tuple[float, float] | None = None,
    background: tuple[float, float] | None = None,
    stack_density: float | None = None,
) -> dict[str, Any]:
    """Simulation settings (PSF σ, photons, background) for a learned model: what the user
    gave, the rest read off ``stack`` with :func:`estimate_conditions`."""
    found: dict[str, Any] = {}
    if stack is not None and (psf_sigma_nm is None or photons is None or background is None):
        found = estimate_conditions(
            stack, pixel_size_nm=pixel_size_nm, camera=camera, density=stack_density
        )
    settings = {
        "psf_sigma_nm": psf_sigma_nm or found.get("psf_sigma_nm"),
        "photons": tuple(photons) if photons is not None else found.get("photons"),
        "background": tuple(background) if background is not None else found.get("background"),
    }
    missing = [k for k, v in settings.items() if v is None]
    if missing:
        raise InputError(
            f"cannot set up training simulations: {', '.join(missing)} unknown; give a stack "
            "to read them from, or give them"
        )
    return {**settings, "spots": found.get("spots")}
