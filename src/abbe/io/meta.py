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
    axes_guessed : True when the file did not say what its axes are and ``axes`` is abbe's guess
        (a plain multi-page TIFF is read as ``TYX``); not written to files.
    """

    axes: str
    pixel_size_nm: float | None = None
    z_step_nm: float | None = None
    frame_interval_s: float | None = None
    source: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    axes_guessed: bool = field(default=False, compare=False)

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


def pixel_size(meta: Meta, given: float | None = None, *, path: str | None = None) -> float:
    """The pixel size in nm: ``given`` if set, else the file's; an error when neither has it.

    Raises
    ------
    InputError
        If neither ``given`` nor ``meta`` holds a pixel size.
    """
    value = given if given is not None else meta.pixel_size_nm
    if value is None:
        raise InputError("pixel size unknown: give --pixel-size NM", path)
    return float(value)


def plane_yx(
    data: Any, axes: str, *, path: str | None = None, needs: str = "a 2D image is needed"
) -> np.ndarray:
    """The (Y, X) plane of an image whose other axes all have length 1, as float64.

    Parameters
    ----------
    data : the image, laid out as ``axes``.
    axes : its axes, e.g. ``YX`` or ``TYX`` with one frame.
    path : the file it came from, named in errors.
    needs : what the caller takes, the start of the error message.

    Raises
    ------
    InputError
        If an axis other than Y and X is longer than 1.
    """
    arr = np.asarray(data, dtype=np.float64)
    if axes == "YX":
        return arr
    if all(arr.shape[i] == 1 for i, a in enumerate(axes) if a not in "YX"):
        return transpose_to(arr, axes, "YX")
    raise InputError(f"{needs}; got axes {axes}", path)


def as_tyx(data: Any, axes: str, *, path: str | None = None, what: str = "this step") -> Any:
    """A stack of frames laid out (T, Y, X): a single image becomes one frame.

    Axes besides T, Y and X must have length 1; a Z stack without T is returned as (Z, Y, X),
    its planes taken as frames.

    Parameters
    ----------
    data : the image, laid out as ``axes``.
    axes : its axes.
    path : the file it came from, named in errors.
    what : what takes the stack, named in errors (``"localization"``).

    Raises
    ------
    InputError
        If the image cannot be read as a series of frames.
    """
    if axes == "YX":
        return np.asarray(data)[None]
    if sorted(axes) != sorted("TYX"):
        extra = [a for a in axes if a not in "TYX"]
        if all(data.shape[axes.index(a)] == 1 for a in extra) and "T" in axes:
            return np.asarray(data).reshape([data.shape[axes.index(a)] for a in "TYX"])
        if "Z" in axes and "T" not in axes:
            return transpose_to(np.asarray(data), axes, "ZYX")
        raise InputError(f"{what} takes a TYX stack; got axes {axes}", path)
    return transpose_to(data, axes, "TYX")
