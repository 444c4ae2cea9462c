"""Checks that flag SMLM inputs and results abbe cannot stand behind.

Each check emits an :class:`~abbe.errors.AbbeWarning` whose message says what looks wrong and
what to do; nothing is changed or refused. The remedies name options of the caller (``hint``,
``remedy``), so the command line can point to its own flags.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from abbe.errors import AbbeWarning
from abbe.localize.calibration import looks_offset
from abbe.simulate.camera import Camera

#: Fewer frames than this are not a blink stack: SMLM records hundreds to thousands of frames,
#: so that each molecule is seen alone in some of them.
MIN_FRAMES = 10
#: A median fitted PSF σ above this is not a single molecule's image: through the high-NA
#: objectives SMLM needs (NA ≥ 1.2, λ 500–700 nm) σ ≈ 0.21·λ/NA is 90–125 nm, and defocus within
#: a fit's reach broadens it to about 180 nm. Widefield nuclei fit at 240–350 nm (measured on
#: ``abbe.simulate.widefield`` nuclei; random SMLM emitters up to 5 per µm² fit at 130–170 nm).
BROAD_SIGMA_NM = 250.0
#: Localizations per µm² per frame that single-emitter fitting still separates; dense SMLM
#: needs a learned model (the SMLM challenge's high-density sets hold 1–2 per µm²).
FIT_DENSITY_PER_UM2 = 2.0


def check_photon_units(
    stack: np.ndarray,
    *,
    camera: Camera | None,
    units: str | None,
    remedy: str = "give the camera's offset and gain",
) -> bool:
    """Warn when a stack read as photons looks like camera ADU.

    Parameters
    ----------
    stack : (T, Y, X) frames as read.
    camera : the camera given for the stack; with one, values are converted and nothing is said.
    units : the units the file's metadata declares (``"photons"`` silences the check).
    remedy : what the user should give, in the caller's words (e.g. its options).

    Returns
    -------
    True when the warning was emitted.
    """
    if camera is not None or units == "photons" or not looks_offset(stack):
        return False
    warnings.warn(
        "values read as photons, but the data look like camera output with a baseline "
        f"(1st percentile {np.percentile(np.asarray(stack[:20], np.float64), 1):.0f}); "
        f"{remedy} for correct photons",
        AbbeWarning,
        stacklevel=2,
    )
    return True


def check_localizations(
    locs: pd.DataFrame,
    *,
    shape: tuple[int, int, int],
    pixel_size_nm: float,
    sigma_fitted: bool,
    density_limit: float = FIT_DENSITY_PER_UM2,
    density_remedy: str = "for dense SMLM use a learned model",
    empty_hint: str = "",
) -> list[str]:
    """Warn when localizations of a stack are empty or the stack does not look like SMLM data.

    Not a sparse blink stack (a widefield or confocal image of continuous structures, or
    emitters too dense for the method) shows as: few or one frame (:data:`MIN_FRAMES`), a
    median fitted PSF σ far above a single molecule's (:data:`BROAD_SIGMA_NM`, only when σ was
    fitted), or more localizations per µm² per frame than the method separates
    (``density_limit``). The reasons found are named in one warning, with what to do.

    Parameters
    ----------
    locs : localizations (abbe's columns: ``frame`` from 1, ``sigma_nm``).
    shape : (T, Y, X) of the stack.
    pixel_size_nm : camera pixel size.
    sigma_fitted : whether ``sigma_nm`` was fitted per emitter (else it is a fixed setting).
    density_limit : localizations per µm² per frame that the method separates.
    density_remedy : what to do about a density above ``density_limit``, in the caller's words.
    empty_hint : what to do when there are no localizations, in the caller's words.

    Returns
    -------
    The messages warned.
    """
    t, h, w = shape
    messages = []
    if len(locs) == 0:
        messages.append(f"no localizations in {_frames(t)}; {empty_hint}")
    reasons, remedies = [], []
    if t < MIN_FRAMES:
        reasons.append(f"only {_frames(t)}")
    if sigma_fitted and len(locs) >= 5 and "sigma_nm" in locs.columns:
        sigma = float(np.median(locs["sigma_nm"]))
        if sigma > BROAD_SIGMA_NM:
            reasons.append(
                f"median fitted PSF σ {sigma:.0f} nm, where a single molecule images at about "
                "100–180 nm"
            )
    if reasons:
        remedies.append(
            "SMLM needs hundreds of frames of sparse blinking molecules (give the whole "
            "stack); for a widefield or confocal image use abbe restore or abbe segment"
        )
    density = len(locs) / (t * h * w * (pixel_size_nm / 1e3) ** 2)
    if density > density_limit:
        reasons.append(
            f"{density:.1f} localizations per µm² per frame, more than the method separates "
            f"(about {density_limit:g})"
        )
        remedies.append(density_remedy)
    if reasons:
        messages.append(
            f"this does not look like a sparse SMLM blink stack ({'; '.join(reasons)}): the "
            f"localizations are doubtful; {'; '.join(remedies)}"
        )
    for m in messages:
        warnings.warn(m, AbbeWarning, stacklevel=2)
    return messages


def _frames(t: int) -> str:
    return f"{t} frame{'s' if t != 1 else ''}"
