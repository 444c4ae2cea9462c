"""Training patches: sampling biased to foreground, dihedral augmentation and N2V masking.

Every sampler takes a ``numpy.random.Generator``; batch ``i`` of epoch ``e`` is drawn from a
generator seeded by ``(seed, e, i)``, so a resumed run sees exactly the batches the interrupted
run would have seen.

References
----------
Krull, Buchholz & Jug, CVPR 2019 (Noise2Void masking).
Höck et al., ECCV Workshops 2022 (N2V2: median replacement).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from abbe.errors import InputError


class N2VMasking(BaseModel):
    """How Noise2Void hides pixels from the network."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fraction: float = Field(0.05, gt=0, le=0.25, description="Fraction of pixels masked.")
    strategy: Literal["uniform", "median"] = Field(
        "uniform", description="Replace by a random neighbour (N2V) or the neighbours' median."
    )
    radius: int = Field(2, ge=1, le=5, description="Neighbourhood half-size for replacement.")


def batch_rng(seed: int, epoch: int, index: int, stream: int = 0) -> np.random.Generator:
    """The generator for batch ``index`` of ``epoch``: independent of what came before.

    ``stream`` separates independent uses of one seed (0 training, 1 validation).
    """
    return np.random.default_rng([seed, stream, epoch, index])


@dataclass
class PatchPool:
    """Normalized training images (each ``(C, *spatial)``) with their foreground positions.

    Parameters
    ----------
    inputs : list of float32 arrays ``(C, Y, X)`` or ``(C, Z, Y, X)``.
    targets : same shapes (spatial axes ``scale`` times larger), or None (self-supervised).
    patch_shape : spatial patch shape of the inputs.
    foreground_threshold : normalized target (or input) value above which a pixel is foreground.
    scale : target pixels per input pixel along each spatial axis (super-resolution pairs).
    """

    inputs: list[np.ndarray]
    targets: list[np.ndarray] | None
    patch_shape: tuple[int, ...]
    foreground_threshold: float = 0.2
    scale: int = 1

    def __post_init__(self) -> None:
        if not self.inputs:
            raise InputError("no training images")
        ndim = len(self.patch_shape)
        for i, x in enumerate(self.inputs):
            if x.ndim != ndim + 1:
                raise InputError(f"training image {i} has shape {x.shape}; expected (C, *spatial)")
            if any(s < p for s, p in zip(x.shape[1:], self.patch_shape, strict=True)):
                raise InputError(
                    f"training image {i} of shape {x.shape[1:]} is smaller than the patch "
                    f"{self.patch_shape}; use a smaller patch_size"
                )
        ref = self.targets if self.targets is not None else self.inputs
        if self.scale > 1 and self.targets is not None:
            ref = [_block_max(t, self.scale) for t in self.targets]
        self._foreground = []
        self._weights = []
        for img in ref:
            valid = _valid_starts_mask(img.shape[1:], self.patch_shape)
            fg = np.flatnonzero((img.max(axis=0) > self.foreground_threshold) & valid)
            self._foreground.append(fg)
            self._weights.append(np.prod(np.array(img.shape[1:]) - self.patch_shape + 1))
        w = np.asarray(self._weights, dtype=np.float64)
        self._image_p = w / w.sum()

    def sample(
        self, n: int, rng: np.random.Generator, *, foreground_fraction: float = 0.5
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Draw ``n`` patches (``(n, C, *patch)``) and their targets (or None)."""
        which = rng.choice(len(self.inputs), size=n, p=self._image_p)
        xs, ys = [], []
        for k in which:
            shape = self.inputs[k].shape[1:]
            fg = self._foreground[k]
            if fg.size and rng.random() < foreground_fraction:
                centre = np.unravel_index(fg[rng.integers(fg.size)], shape)
                start = [
                    int(np.clip(c - p // 2 + rng.integers(-(p // 4), p // 4 + 1), 0, s - p))
                    for c, p, s in zip(centre, self.patch_shape, shape, strict=True)
                ]
            else:
                start = [
                    int(rng.integers(0, s - p + 1))
                    for s, p in zip(shape, self.patch_shape, strict=True)
                ]
            sl = (
                slice(None),
                *(slice(a, a + p) for a, p in zip(start, self.patch_shape, strict=True)),
            )
            xs.append(self.inputs[k][sl])
            if self.targets is not None:
                s = self.scale
                big = (
                    slice(None),
                    *(
                        slice(a * s, (a + p) * s)
                        for a, p in zip(start, self.patch_shape, strict=True)
                    ),
                )
                ys.append(self.targets[k][big])
        x = np.stack(xs)
        return x, (np.stack(ys) if self.targets is not None else None)


def _block_max(a: np.ndarray, s: int) -> np.ndarray:
    """Max over s×s blocks of the spatial axes of a ``(C, *spatial)`` array."""
    c, *spatial = a.shape
    n = [d // s for d in spatial]
    a = a[(slice(None), *(slice(0, k * s) for k in n))]
    shape = [c] + [v for k in n for v in (k, s)]
    return a.reshape(shape).max(axis=tuple(range(2, 2 + 2 * len(n), 2)))


def _valid_starts_mask(shape: tuple[int, ...], patch: tuple[int, ...]) -> np.ndarray:
    """True where a pixel can be the centre of a patch lying fully inside the image."""
    mask = np.zeros(shape, dtype=bool)
    inner = tuple(slice(p // 2, s - (p - p // 2) + 1) for s, p in zip(shape, patch, strict=True))
    mask[inner] = True
    return mask


def augment_dihedral(
    arrays: list[np.ndarray | None], rng: np.random.Generator
) -> list[np.ndarray | None]:
    """Apply one random symmetry of the square (flips and 90° turns in Y, X) per sample.

    The same transform is applied to every array of the list (input, target, mask); arrays are
    ``(N, C, *spatial)`` with Y and X last.
    """
    n = next(a for a in arrays if a is not None).shape[0]
    ops = rng.integers(0, 8, size=n)
    out = [None if a is None else np.empty_like(a) for a in arrays]
    for op in range(8):
        idx = np.flatnonzero(ops == op)
        if idx.size == 0:
            continue
        for a, o in zip(arrays, out, strict=True):
            if a is not None:
                o[idx] = _dihedral(a[idx], op)
    return out


def _dihedral(a: np.ndarray, op: int) -> np.ndarray:
    if op >= 4:
        a = a[..., ::-1]
    return np.rot90(a, k=op % 4, axes=(-2, -1))


def n2v_mask(
    patches: np.ndarray, masking: N2VMasking, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Hide a stratified random subset of pixels and return (masked patches, mask).

    One pixel is chosen in each cell of a grid whose cells hold about ``1/fraction`` pixels, so
    masked pixels are spread evenly; each is replaced by a random neighbour within ``radius``
    (never itself) or by the median of its neighbours. The loss is then taken only where the
    mask is 1: the network cannot copy a pixel it does not see.

    Parameters
    ----------
    patches : ``(N, C, *spatial)`` float32.
    """
    n, c, *spatial = patches.shape
    ndim = len(spatial)
    cell = max(1, round((1 / masking.fraction) ** (1 / ndim)))
    grids = [np.arange(0, s, cell) for s in spatial]
    corner = np.stack(np.meshgrid(*grids, indexing="ij"), axis=-1).reshape(-1, ndim)
    n_cells = corner.shape[0]
    offsets = rng.integers(0, cell, size=(n, n_cells, ndim))
    coords = np.minimum(corner[None] + offsets, np.array(spatial) - 1)  # (N, cells, ndim)
    masked = patches.copy()
    mask = np.zeros_like(patches)
    sample = np.repeat(np.arange(n), n_cells)
    pos = coords.reshape(-1, ndim)
    r = masking.radius
    if masking.strategy == "uniform":
        shift = rng.integers(-r, r + 1, size=pos.shape)
        zero = np.all(shift == 0, axis=1)
        while zero.any():  # never replace a pixel by itself
            shift[zero] = rng.integers(-r, r + 1, size=(int(zero.sum()), ndim))
            zero = np.all(shift == 0, axis=1)
        src = _reflect(pos + shift, spatial)
        for ch in range(c):
            masked[(sample, ch, *pos.T)] = patches[(sample, ch, *src.T)]
    else:
        neigh = np.stack(np.meshgrid(*[np.arange(-r, r + 1)] * ndim, indexing="ij"), -1)
        neigh = neigh.reshape(-1, ndim)
        neigh = neigh[np.any(neigh != 0, axis=1)]
        for ch in range(c):
            values = np.stack([patches[(sample, ch, *_reflect(pos + d, spatial).T)] for d in neigh])
            masked[(sample, ch, *pos.T)] = np.median(values, axis=0)
    for ch in range(c):
        mask[(sample, ch, *pos.T)] = 1.0
    return masked, mask


def _reflect(pos: np.ndarray, shape: list[int]) -> np.ndarray:
    size = np.array(shape)
    pos = np.abs(pos)
    return np.where(pos >= size, 2 * (size - 1) - pos, pos)
