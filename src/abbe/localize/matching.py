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
from abbe.train.config import LOCALIZE_STEPS  # the budgets live where the CLI imports them cheaply

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
    sparse_density: tuple[float, float] | None = None,
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
        are then read from the frames' total signal), or None to read it off the stack's
        fluctuations (:func:`estimate_conditions`).
    density : (min, max) emitters per µm² per frame to train for; None trains for
        0.1·top to top, top being twice the stack's density where it is given or dense
        (≥ ``DENSE``), else ``sparse_density`` (default 0.4 to 4).
    sparse_density : (min, max) to train for when ``density`` is None and the stack is
        sparse or unknown.
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
    config, _ = _matched(
        kind,
        pixel_size_nm=pixel_size_nm,
        stack=stack,
        camera=camera,
        psf_sigma_nm=psf_sigma_nm,
        photons=photons,
        background=background,
        stack_density=stack_density,
        density=density,
        sparse_density=sparse_density,
        structured=structured,
        training=training,
        **options,
    )
    return config


def _matched(
    kind: Literal["localizer", "deepstorm"], *, pixel_size_nm: float, **given: Any
) -> tuple[SimulationMatch, dict[str, Any]]:
    """:func:`match_config` (``given`` holds its keyword arguments; those absent take its
    defaults), also returning what :func:`matched_settings` read off the stack."""
    from abbe.localize.calibration import camera_record
    from abbe.models.base import revalidated

    config_class = _config_class(kind)
    stack, camera = given.pop("stack", None), given.pop("camera", None)
    stack_density = given.pop("stack_density", None)
    frames = None
    if stack is not None:
        frames = np.asarray(stack[: min(len(stack), MATCH_FRAMES)], dtype=np.float32)
    settings = matched_settings(
        stack=frames,
        pixel_size_nm=pixel_size_nm,
        camera=camera,
        psf_sigma_nm=given.pop("psf_sigma_nm", None),
        photons=given.pop("photons", None),
        background=given.pop("background", None),
        stack_density=stack_density,
    )
    density, sparse_density = given.pop("density", None), given.pop("sparse_density", None)
    if density is None:
        # The stack's density, given or read off its fluctuations, sets the range trained.
        # Sparse stacks (read below DENSE) keep the wide default: fits there need no crowding
        # to be learned, but some margin above what a short stack happens to show.
        seen = settings["stack_density"]
        if seen and (stack_density or seen >= DENSE):
            density = (0.2 * seen, 2 * seen)
        else:
            density = sparse_density or (0.4, 4.0)
    base = config_class()
    config = config_class(
        pixel_size_nm=pixel_size_nm,
        psf_sigma_nm=settings["psf_sigma_nm"],
        photons=settings["photons"],
        background=settings["background"],
        density=density,
        camera=camera_record(camera) if camera is not None else {"kind": "ideal"},
        structured=given.pop("structured", 0.0),
        training=revalidated(base.training, given.pop("training", None) or {}),
        **given,
    )
    return config, settings


def steps_training(steps: int, seed: int, steps_per_epoch: int = 50) -> dict[str, Any]:
    """Training settings for exactly ``steps`` batches (rounded up to whole epochs of
    ``steps_per_epoch``), with no time limit: what a learned SMLM model trains by."""
    per_epoch = min(steps_per_epoch, steps)
    return {
        "max_time_s": None,
        "steps_per_epoch": per_epoch,
        "max_epochs": -(-steps // per_epoch),
        "seed": seed,
    }


def match_stack(
    kind: Literal["localizer", "deepstorm"],
    stack: np.ndarray,
    *,
    pixel_size_nm: float,
    camera: Camera | None = None,
    psf_sigma_nm: float | None = None,
    stack_density: float | None = None,
    steps: int = LOCALIZE_STEPS,
    seed: int = 0,
    **options: Any,
) -> tuple[SimulationMatch, dict[str, Any]]:
    """The configuration ``abbe localize --method deepstorm`` trains, and what was read off
    the stack: given only the camera, the PSF σ, photons, background and density all come
    from ``stack`` (:func:`estimate_conditions`). Benchmarks call this to run the user's path.

    Parameters
    ----------
    kind, pixel_size_nm, camera, psf_sigma_nm, stack_density : as :func:`match_config`.
    stack : (T, Y, X) frames in camera units.
    steps : training batches (no time limit).
    seed : seed of the simulations and the network's initialization.
    **options : further fields of the configuration.

    Returns
    -------
    (configuration, settings) where settings holds ``psf_sigma_nm``, ``photons``,
    ``background``, ``stack_density`` and ``density_source``.
    """
    return _matched(
        kind,
        pixel_size_nm=pixel_size_nm,
        stack=stack,
        camera=camera,
        psf_sigma_nm=psf_sigma_nm,
        stack_density=stack_density,
        training=steps_training(steps, seed),
        **options,
    )


def check_found_density(
    locs: Any, *, shape: tuple[int, int, int], pixel_size_nm: float, expected: float
) -> float:
    """Compare the density of a matched model's localizations with the density read off the
    stack, and warn (:class:`~abbe.errors.AbbeWarning`) where they disagree by more than ×2:
    then either the stack's conditions were misread (a wrong camera file) or the model misses
    most emitters, and its localizations should not be trusted as they are. A model that
    localizes well finds 60–100 % of the emitters (recall) plus a few false ones, well inside
    the ×2; the estimate itself errs by under 20 % on simulations.

    Returns
    -------
    The density found, emitters per µm² per frame.
    """
    import warnings

    from abbe.errors import AbbeWarning

    area_um2 = shape[1] * shape[2] * (pixel_size_nm / 1e3) ** 2
    found = len(locs) / max(shape[0] * area_um2, 1e-12)
    if expected > 0 and not 0.5 <= found / expected <= 2.0:
        warnings.warn(
            f"the model found {found:.2g} emitters/µm² per frame where the stack's fluctuations "
            f"say {expected:.2g}: check the camera file (offset, gain), train longer "
            "(--train-steps), or give the density (--stack-density)",
            AbbeWarning,
            stacklevel=2,
        )
    return found


def _config_class(kind: str) -> type[SimulationMatch]:
    from abbe.models.registry import METHODS, model_class

    if kind not in ("localizer", "deepstorm") or kind not in METHODS:
        raise InputError(f"unknown kind {kind!r} of learned localizer: use localizer or deepstorm")
    return model_class(kind).config_class


#: Emitters per µm² per frame above which a stack counts as dense: its photons, background and
#: density come from its fluctuations, not from fits of single spots (which merge neighbours).
DENSE = 1.0


def estimate_conditions(
    stack: np.ndarray,
    *,
    pixel_size_nm: float,
    camera: Camera | None = None,
    density: float | None = None,
) -> dict[str, Any]:
    """Simulation settings a learned localizer should match, read off the user's stack.

    The stack's emitter density, mean photons and background are first read off its
    fluctuations (:func:`abbe.localize.fluctuation.stack_conditions`, number-and-brightness
    analysis; Digman et al. 2008). Dense data (that density, or ``density`` given in emitters
    per µm² per frame, ≥ ``DENSE``, where few spots are isolated and fits merge neighbours
    into broad blobs): σ from the frames' power spectrum
    (:func:`abbe.localize.calibration.psf_sigma_from_spectrum`), the background by
    :func:`dense_background` (or the fluctuations' lower estimate) and the photons from the
    frames' mean signal above it shared among the emitters (a range of ×0.5 to ×1.5 around
    that mean). Sparse data: PSF σ is the median fitted σ of clear spots (classical
    fitting), photons and background the 5th–95th percentiles of the same fits.

    Returns
    -------
    ``psf_sigma_nm``, ``photons`` (min, max), ``background`` (min, max), ``stack_density``
    (emitters per µm² per frame) and ``density_source`` (``"given"`` or ``"fluctuations"``);
    ``spots`` (clear spots fitted) for sparse data.
    """
    from abbe.localize.calibration import psf_sigma_from_spectrum
    from abbe.localize.fit import fit, to_electrons
    from abbe.localize.fluctuation import stack_conditions

    frames = np.asarray(stack)[: min(len(stack), MATCH_FRAMES)]
    read = None
    if density is None and len(frames) >= 30:
        try:
            read = stack_conditions(frames, pixel_size_nm=pixel_size_nm, camera=camera)
        except InputError:
            read = None  # no fluctuation above the noise: sparse fits decide
    if density is not None or (read is not None and read.density_per_um2 >= DENSE):
        e = to_electrons(frames, camera)
        qe = e.qe
        if density is None and read is not None:
            sigma, bg, mean_photons = read.psf_sigma_nm, read.background, read.photons
            used, source = read.density_per_um2, "fluctuations"
        else:
            sigma = psf_sigma_from_spectrum(e.data, pixel_size_nm)
            bg = dense_background(e) / qe
            signal = float(np.mean(e.data)) / qe - bg  # photons per pixel above background
            mean_photons = signal / max(density * (pixel_size_nm / 1e3) ** 2, 1e-9)
            used, source = density, "given"
        return {
            "psf_sigma_nm": round(sigma, 1),
            "photons": (round(0.5 * mean_photons, 1), round(1.5 * mean_photons, 1)),
            "background": (round(0.5 * bg, 2), round(1.5 * bg + 1.0, 2)),
            "stack_density": round(float(used), 2),
            "density_source": source,
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
        "stack_density": round(float(read.density_per_um2), 2) if read is not None else None,
        "density_source": "fluctuations" if read is not None else None,
    }


def dense_background(e: Electrons) -> float:
    """Background (photo-electrons per pixel) of dense frames: the lower of two estimates
    that each err only upwards. (a) The 5th percentile of the pixels' means over the frames:
    off the structure molecules carry, pixels hold background alone. (b) The 5th percentile
    q of all pixel values, taken as the background's own 5th percentile under shot noise,
    b − 1.645·√(F²·b) = q, solved for b. (a) is exact on structured samples (within 6 % on
    simulated filaments at 1–5 emitters/µm²; 19.6 e⁻ on the Deep-STORM stack, whose
    photon-transfer background is 19.5); where emitters are placed at random in every frame
    no pixel stays dark and (b) is used, about 45 % high at 5 emitters/µm². (b) is taken
    frame by frame and averaged, so that a background changing between frames counts at its
    mean.
    """
    return max(min(background_estimates(e)), 0.0)


def background_estimates(e: Electrons) -> tuple[float, float]:
    """The two estimates (a) and (b) of :func:`dense_background`, photo-electrons per pixel:
    (over time, from shot noise). (a) far above (b) says that no pixel stays dark."""
    over_time = float(np.percentile(e.data.mean(0), 5))
    # (b) frame by frame, then averaged: a background that changes between frames would
    # otherwise put the pooled 5th percentile in the dimmest frames.
    q = np.clip(np.percentile(e.data.reshape(len(e.data), -1), 5, axis=1), 0.0, None)
    z = 1.645 * math.sqrt(e.excess)
    shot = float(np.mean(((z + np.sqrt(z * z + 4 * q)) / 2) ** 2))
    return over_time, shot


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
    return {
        **settings,
        "spots": found.get("spots"),
        "stack_density": stack_density or found.get("stack_density"),
        "density_source": "given" if stack_density else found.get("density_source"),
    }
