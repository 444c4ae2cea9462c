"""Image metadata that travels with every array: axes, pixel size and where it came from."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from abbe.errors import InputError

#: Axis letters abbe understands. ``S`` is a stack of independent samples (e.g. training patches),
#: ``C`` a channel (including RGB), ``T`` time, ``Z`` depth, ``Y``/``X`` the image plane.
AXES_LETTERS = "STCZYX"


@dataclass(frozen=True)
class Meta:
    """What abbe knows about an image besides its pixels.

    Parameters
    ----------
    axes : one letter per array dimension, from ``STCZYX``; must contain ``Y`` and ``X``.
    pixel_size_nm : lateral (Y and X) pixel size in nm, or None when unknown.
    z_step_nm : axial step in nm for ``Z`` stacks, or None.
    frame_interval_s : time between frames for ``T`` series, or None.
    source : the file the image was read from, if any.
    extra : free-form provenance (e.g. simulation parameters); written to TIFF descriptions as JSON.
    """

    axes: str
    pixel_size_nm: float | None = None
    z_step_nm: float | None = None
    frame_interval_s: float | None = None
    source: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def replace(self, **changes: Any) -> Meta:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def check_axes(axes: str, ndim: int, *, path: str | None = None) -> str:
    """Validate an axes string against an array's number of dimensions and return it upper-cased.

    Raises
    ------
    InputError
        If a letter is unknown or repeated, ``Y`` or ``X`` is missing, or the length differs from
        ``ndim``.
    """
    up = axes.upper()
    bad = sorted(set(up) - set(AXES_LETTERS))
    if bad:
        raise InputError(
            f"axes {axes!r} contain unknown letter(s) {''.join(bad)}; "
            f"use letters from {AXES_LETTERS}",
            path,
        )
    if len(set(up)) != len(up):
        raise InputError(f"axes {axes!r} repeat a letter", path)
    if "Y" not in up or "X" not in up:
        raise InputError(f"axes {axes!r} must contain Y and X", path)
    if len(up) != ndim:
        raise InputError(
            f"axes {axes!r} have {len(up)} letters but the image has {ndim} dimensions; "
            "give --axes with one letter per dimension",
            path,
        )
    return up


def default_axes(ndim: int) -> str:
    """Axes assumed for an array of ``ndim`` dimensions when nothing says otherwise."""
    guesses = {2: "YX", 3: "ZYX", 4: "TZYX", 5: "TCZYX"}
    if ndim not in guesses:
        raise InputError(f"cannot guess axes of a {ndim}-dimensional image; give axes explicitly")
    return guesses[ndim]


def transpose_to(arr: np.ndarray, axes: str, target: str) -> np.ndarray:
    """Lay out ``arr`` (with ``axes``) as ``target``: reorder, add and drop length-1 dimensions.

    Letters of ``target`` absent from ``axes`` become new length-1 dimensions; letters of ``axes``
    absent from ``target`` must have length 1 and are dropped.
    """
    for i, a in enumerate(axes):
        if a not in target and arr.shape[i] != 1:
            raise InputError(f"axis {a} of length {arr.shape[i]} has no place in {target}")
    kept = [a for a in axes if a in target]
    arr = arr.reshape([n for a, n in zip(axes, arr.shape, strict=True) if a in target])
    order = [kept.index(a) for a in target if a in kept]
    arr = np.transpose(arr, order)
    ordered = [a for a in target if a in kept]
    shape = [arr.shape[ordered.index(a)] if a in ordered else 1 for a in target]
    return arr.reshape(shape)
