"""Planted artifacts: known mistakes put into a result, to test that error maps reveal them.

A reconstruction method can delete real structure or invent structure that is not there
(hallucination). Planting each kind at a known place in an otherwise perfect result lets a test
measure whether an error map or an uncertainty map points at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

from abbe.errors import InputError
from abbe.simulate.specimens import _splat

ArtifactKind = Literal["deletion", "addition"]


@dataclass(frozen=True, eq=False)
class PlantedArtifact:
    """A specimen density with one artifact, and where it is.

    Attributes
    ----------
    density : (Y, X) density with the artifact.
    region : (Y, X) bool, the artifact's footprint.
    kind : ``deletion`` or ``addition``.
    """

    density: np.ndarray
    region: np.ndarray
    kind: str


def plant(
    density: np.ndarray,
    kind: ArtifactKind,
    *,
    pixel_size_nm: float,
    size_nm: float = 1500.0,
    seed: int | np.random.Generator | None = 0,
) -> PlantedArtifact:
    """Delete a patch of real structure, or add a fake straight filament, at a random place.

    Parameters
    ----------
    density : fine-grid specimen density (e.g. :attr:`Specimen.density`).
    kind : ``deletion`` removes everything within a disc of diameter ``size_nm`` centred on a
        bright structure; ``addition`` draws a straight filament of length ``size_nm`` with the
        brightness of the specimen's typical filament, away from the border.
    pixel_size_nm : pixel size of ``density``.
    seed : random seed or generator.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    out = np.array(density, dtype=np.float64, copy=True)
    h, w = out.shape
    margin = int(np.ceil(size_nm / pixel_size_nm))
    if min(h, w) <= 2 * margin + 2:
        raise InputError(f"image too small to plant a {size_nm:g} nm artifact")
    inner = np.zeros_like(out, dtype=bool)
    inner[margin:-margin, margin:-margin] = True
    if kind == "deletion":
        bright = np.flatnonzero((out > np.percentile(out[out > 0], 75)) & inner)
        if bright.size == 0:
            raise InputError("no structure to delete")
        cy, cx = np.unravel_index(bright[rng.integers(bright.size)], out.shape)
        yy, xx = np.ogrid[:h, :w]
        region = (yy - cy) ** 2 + (xx - cx) ** 2 <= (size_nm / 2 / pixel_size_nm) ** 2
        out[region] = 0.0
    elif kind == "addition":
        cy, cx = rng.integers(margin, h - margin), rng.integers(margin, w - margin)
        angle = rng.uniform(0, np.pi)
        n = int(2 * size_nm / pixel_size_nm)
        t = np.linspace(-0.5, 0.5, n) * size_nm / pixel_size_nm
        ys, xs = cy + t * np.sin(angle), cx + t * np.cos(angle)
        line = np.zeros_like(out)
        # A real filament of this length carries about this much density per sample.
        per_step = np.median(out[out > 0]) if np.any(out > 0) else 1.0
        _splat(line, ys, xs, np.full(n, 2 * per_step))
        out += line
        region = ndimage.binary_dilation(line > 0, iterations=1)
    else:
        raise InputError(f"unknown artifact {kind!r}; use deletion or addition")
    return PlantedArtifact(out.astype(np.float32), region, kind)
