"""Instance labels from the maps of a foreign segmentation package.

A bioimage.io segmentation package outputs maps (probabilities, boundaries), not labels; how to
turn them into labels is not part of the spec. abbe reads the output's channel names, its
declared data range and its last postprocessing step, and assumes:

- a channel named like a foreground (``prob``, ``foreground``, ``fg``, ``mask``, ``nucle``,
  ``cell``), or the only channel when the output is declared in [0, 1] or ends with ``sigmoid``
  or ``binarize``, is a foreground probability;
- a channel named like a boundary (``bound``, ``contour``, ``edge``) is a boundary probability.

Labels are then the connected components of foreground > 0.5 (objects under
:data:`MIN_OBJECT_PX` pixels dropped); with a boundary channel, seeds are foreground > 0.5 and
boundary < 0.5, grown by watershed over the boundary map within the foreground. Touching objects
without a boundary channel are not split. When the foreground is only inferred from the range
(no channel name says so), an :class:`~abbe.errors.AbbeWarning` says labels were guessed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from abbe.errors import AbbeWarning, InputError
from abbe.models.packages.spec import PackageSpec

THRESHOLD = 0.5
MIN_OBJECT_PX = 10
_FOREGROUND = ("prob", "foreground", "fg", "mask", "nucle", "cell")
_BOUNDARY = ("bound", "contour", "edge")


@dataclass(frozen=True)
class Reading:
    """How an output's channels are read: the foreground channel, the boundary channel (or
    None), whether this is a guess, and a sentence saying so."""

    foreground: int
    boundary: int | None
    guessed: bool
    description: str


def read_channels(spec: PackageSpec) -> Reading:
    """Decide which output channel is the foreground (and boundary) probability.

    Raises
    ------
    InputError
        When the channels cannot be read as probabilities (e.g. a restoration package); the
        message suggests ``abbe restore`` for the maps.
    """
    out = spec.output
    names = [n.lower() for n in out.channel_names]
    n = out.channels
    fg = next((i for i, s in enumerate(names) if any(k in s for k in _FOREGROUND)), None)
    bd = next((i for i, s in enumerate(names) if any(k in s for k in _BOUNDARY)), None)
    bounded = out.data_range is not None and tuple(out.data_range) == (0.0, 1.0)
    squashed = bool(out.processing) and any(
        op.id in ("sigmoid", "binarize") for op in out.processing[-2:]
    )
    guessed = False
    if fg is None and n == 1 and (bounded or squashed):
        fg, guessed = 0, True
    if fg is None or fg == bd:
        shown = ", ".join(names) or f"{n} unnamed"
        raise InputError(
            f"abbe cannot tell which output channel ({shown}) is a foreground probability, so it "
            "makes no labels; write the maps with 'abbe restore IN -m PACKAGE -o maps.tif'",
            spec.path,
        )
    what = f"channel {fg}" + (f" ({names[fg]})" if names else "")
    text = f"labels: {what} > {THRESHOLD} as foreground"
    if bd is not None:
        text += f", split by watershed on channel {bd} ({names[bd]})"
    else:
        text += ", connected components (touching objects are not split)"
    return Reading(fg, bd, guessed, text + f"; objects under {MIN_OBJECT_PX} px dropped")


def labels_from_maps(maps: np.ndarray, reading: Reading) -> np.ndarray:
    """Instance labels (0 background, 1…n) of a ``(C, Y, X)`` map as ``reading`` says.

    Warns (:class:`AbbeWarning`) when the reading is a guess.
    """
    from scipy import ndimage
    from skimage.segmentation import relabel_sequential, watershed

    if reading.guessed:
        warnings.warn(
            AbbeWarning(
                f"the package's output channel is not named; {reading.description} (a guess: "
                "check the maps, e.g. with --maps)"
            ),
            stacklevel=2,
        )
    fg = maps[reading.foreground] > THRESHOLD
    if reading.boundary is None:
        labels, _ = ndimage.label(fg)
    else:
        boundary = maps[reading.boundary]
        seeds, _ = ndimage.label(fg & (boundary < THRESHOLD))
        labels = watershed(boundary, seeds, mask=fg)
    sizes = np.bincount(labels.ravel())
    small = sizes < MIN_OBJECT_PX
    small[0] = False
    labels[small[labels]] = 0
    return relabel_sequential(labels)[0].astype(np.int32)
