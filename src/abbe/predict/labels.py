"""Instance labels of one huge image segmented tile by tile: objects cut by tile borders joined
again, faint objects dropped with the whole image's statistics, ids made consecutive.

Each tile (a core of the plan of :func:`abbe.predict.tiling.plan_tiles`) is labelled on its
core grown by a halo of context, so near its core's edges the tile sees what a one-process run
sees. It keeps only its core, numbered ``offset + 1 … offset + count`` (``offset`` = tile index ×
the core's pixel count: unique without any exchange between tasks), and records
(:class:`TileLabels`) per object its area and intensity sum, a histogram of its background,
and for each side facing another tile the ids along the core's edge line and whether its own
labelling continues each of those pixels' object one pixel across the side.

**Merge rule** (:func:`border_merges`): two ids ``a`` and ``b`` that face each other across a
border, at ``n`` pixel pairs, are one object when the two tiles' own "continues across"
flags at those pairs add up to at least ``n``, i.e. when, on average over the contact, at
least one of the two tiles (each with the context of both sides) labels the pair as one object.
Both tiles say so all along an object cut by the border (2n); neither says so where two
touching nuclei meet on it (0), since the one-process watershed separates them there. The rule
thus reproduces the one-process labels without a size threshold, and a disagreement between the
two tiles (rare, where their halos end) is settled by the majority of pixel votes. A nucleus
over a tile corner is joined through the side borders of its four parts (connected components
of all merges).

Faint objects (:func:`abbe.segment.postprocess.drop_faint`) are decided on the merged objects'
summed statistics; the background median comes from the summed histograms (bins of 1/2¹⁶ of
twice the normalization range, interpolated within the bin).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: The four sides of a 2D core, and the side of the neighbour that faces each.
SIDES = ("top", "bottom", "left", "right")
OPPOSITE = {"top": "bottom", "bottom": "top", "left": "right", "right": "left"}

#: Bins of the background histograms (over twice the normalization range, see
#: :func:`background_bins`): the median is known to 1/32 768 of that range.
BACKGROUND_BINS = 2**16


@dataclass(frozen=True)
class TileLabels:
    """What one tile's task records beside the label store (see the module docstring).

    Attributes
    ----------
    index, offset : the tile's index in the plan; its ids are ``offset + 1 … offset + count``.
    count : objects in its core.
    areas, sums : per object (id − offset − 1), pixels and intensity sum in the core.
    background : histogram of the core's background intensities (:func:`background_bins`).
    edges : per side facing another tile, the ids (0: background) along the core's edge line.
    same : per such side, whether the tile's own labelling gives the pixel one step across
        the side the same (non-zero) object as the edge pixel.
    """

    index: int
    offset: int
    count: int
    areas: np.ndarray
    sums: np.ndarray
    background: np.ndarray
    edges: Mapping[str, np.ndarray] = field(default_factory=dict)
    same: Mapping[str, np.ndarray] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        """Write to ``path`` (.npz) atomically: a task rerun after a lost worker replaces it."""
        from abbe.io.atomic import temp_sibling

        arrays = {
            "head": np.array([self.index, self.offset, self.count], dtype=np.int64),
            "areas": self.areas,
            "sums": self.sums,
            "background": self.background,
        }
        for side in self.edges:
            arrays[f"edge_{side}"] = self.edges[side]
            arrays[f"same_{side}"] = self.same[side]
        tmp = temp_sibling(path)
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> TileLabels:
        with np.load(path) as z:
            index, offset, count = (int(v) for v in z["head"])
            sides = [s for s in SIDES if f"edge_{s}" in z]
            return cls(
                index=index,
                offset=offset,
                count=count,
                areas=z["areas"],
                sums=z["sums"],
                background=z["background"],
                edges={s: z[f"edge_{s}"] for s in sides},
                same={s: z[f"same_{s}"] for s in sides},
            )


def background_bins(levels: tuple[float, float]) -> np.ndarray:
    """Edges of the background histograms: the normalization range widened by half its width
    on both sides (the background median lies near its low end); values beyond are counted in
    the end bins."""
    lo, hi = float(levels[0]), float(levels[1])
    width = max(hi - lo, 1e-6)
    return np.linspace(lo - width / 2, hi + width / 2, BACKGROUND_BINS + 1)


def tile_record(
    labels: np.ndarray,
    core: tuple[slice, slice],
    image: np.ndarray,
    *,
    index: int,
    offset: int,
    sides: Sequence[str],
    bins: np.ndarray,
) -> tuple[np.ndarray, TileLabels]:
    """A tile's core labels, renumbered from ``offset + 1``, and its :class:`TileLabels`.

    Parameters
    ----------
    labels : the tile's labels of its core grown by a halo (Y, X).
    core : the core within ``labels``; each side in ``sides`` must have one more row or
        column of ``labels`` beyond it.
    image : the intensities of the core (for the faint-object statistics).
    index, offset : the tile's index and id offset.
    sides : the sides of the core that face another tile.
    bins : :func:`background_bins`.
    """
    lab = np.asarray(labels)
    inner = lab[core]
    ids, local = np.unique(inner, return_inverse=True)
    local = local.reshape(inner.shape)
    if ids[0] != 0:  # no background in the core: ids start at 1
        local = local + 1
    count = int(ids.size - (ids[0] == 0))
    out = np.where(local > 0, local.astype(np.int64) + offset, 0).astype(np.uint32)
    flat = local.ravel()
    areas = np.bincount(flat, minlength=count + 1)[1:]
    values = np.asarray(image, dtype=np.float64).ravel()
    sums = np.bincount(flat, weights=values, minlength=count + 1)[1:]
    bg = np.clip(values[flat == 0], bins[0], bins[-1])
    background = np.histogram(bg, bins=bins)[0].astype(np.int64)
    edges: dict[str, np.ndarray] = {}
    same: dict[str, np.ndarray] = {}
    (y0, y1), (x0, x1) = (core[0].start, core[0].stop), (core[1].start, core[1].stop)
    for side in sides:
        # The core's edge line, and the line one step beyond it, in the grown labels.
        if side == "top":
            edge, beyond, mine = lab[y0, x0:x1], lab[y0 - 1, x0:x1], out[0, :]
        elif side == "bottom":
            edge, beyond, mine = lab[y1 - 1, x0:x1], lab[y1, x0:x1], out[-1, :]
        elif side == "left":
            edge, beyond, mine = lab[y0:y1, x0], lab[y0:y1, x0 - 1], out[:, 0]
        elif side == "right":
            edge, beyond, mine = lab[y0:y1, x1 - 1], lab[y0:y1, x1], out[:, -1]
        else:
            raise ValueError(f"unknown side {side!r}")
        edges[side] = mine.copy()
        same[side] = (edge > 0) & (edge == beyond)
    record = TileLabels(index, offset, count, areas, sums, background, edges, same)
    return out, record


def border_merges(
    a_edge: np.ndarray, b_edge: np.ndarray, a_same: np.ndarray, b_same: np.ndarray
) -> list[tuple[int, int]]:
    """The id pairs ``(a, b)`` to join across one border (the module's merge rule).

    Parameters
    ----------
    a_edge, b_edge : ids along the two facing edge lines (same length, pixel by pixel).
    a_same, b_same : each tile's flags: its own labelling continues the pixel's object across.
    """
    a = np.asarray(a_edge, dtype=np.int64)
    b = np.asarray(b_edge, dtype=np.int64)
    votes = np.asarray(a_same, dtype=np.int64) + np.asarray(b_same, dtype=np.int64)
    facing = (a > 0) & (b > 0)
    if not facing.any():
        return []
    pairs, inverse = np.unique(np.stack([a[facing], b[facing]]), axis=1, return_inverse=True)
    inverse = np.asarray(inverse).ravel()
    contact = np.bincount(inverse, minlength=pairs.shape[1])
    agree = np.bincount(inverse, weights=votes[facing], minlength=pairs.shape[1])
    keep = agree >= contact
    return [(int(x), int(y)) for x, y in pairs[:, keep].T]


def grid_neighbours(cores: Sequence[tuple[slice, slice]]) -> list[tuple[int, str, int]]:
    """``(i, side, j)`` for each pair of tiles whose cores share a border (``side`` of ``i``
    faces tile ``j``), from the cores of a plan (a grid)."""
    at = {(c[0].start, c[1].start): i for i, c in enumerate(cores)}
    out = []
    for i, (ys, xs) in enumerate(cores):
        below = at.get((ys.stop, xs.start))
        right = at.get((ys.start, xs.stop))
        if below is not None:
            out.append((i, "bottom", below))
        if right is not None:
            out.append((i, "right", right))
    return out


@dataclass(frozen=True)
class MergedLabels:
    """The final numbering: ``lookup[i]`` maps tile ``i``'s ids (id − offset, 0 for
    background) to the final consecutive ids (0: background or a faint object)."""

    lookup: dict[int, np.ndarray]
    objects: int
    merged: int  # pieces joined to another across a border
    faint: int  # objects dropped as faint


def merge_tiles(
    records: Sequence[TileLabels],
    neighbours: Sequence[tuple[int, str, int]],
    *,
    bins: np.ndarray,
    min_contrast: float,
    background: np.ndarray | None = None,
) -> MergedLabels:
    """Join the pieces of objects cut by tile borders (:func:`border_merges`), drop faint
    objects as :func:`~abbe.segment.postprocess.drop_faint` does on the whole image, and number
    the rest 1 … n in the order of their first piece (tile order).

    ``background`` is the sum of the records' histograms when the caller summed them while
    loading (:func:`load_records`: thousands of tiles' histograms are not held at once)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from abbe.segment.postprocess import faint_objects

    by_index = {r.index: r for r in records}
    order = sorted(by_index)
    base: dict[int, int] = {}  # node number of each tile's first piece
    total = 0
    for i in order:
        base[i] = total
        total += by_index[i].count

    def node(global_id: int, tile: int) -> int:
        return base[tile] + global_id - by_index[tile].offset - 1

    rows: list[int] = []
    cols: list[int] = []
    for i, side, j in neighbours:
        a, b = by_index[i], by_index[j]
        opposite = OPPOSITE[side]
        for x, y in border_merges(a.edges[side], b.edges[opposite], a.same[side], b.same[opposite]):
            rows.append(node(x, i))
            cols.append(node(y, j))
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(total, total))
    n, component = connected_components(graph, directed=False)
    areas = np.concatenate([by_index[i].areas for i in order]) if total else np.zeros(0)
    sums = np.concatenate([by_index[i].sums for i in order]) if total else np.zeros(0)
    comp_area = np.bincount(component, weights=areas, minlength=n)
    comp_sum = np.bincount(component, weights=sums, minlength=n)
    if background is None:
        background = np.sum([by_index[i].background for i in order], axis=0)
    faint = np.zeros(n, bool)
    if min_contrast > 0 and n > 0 and background.sum() > 0:
        faint = faint_objects(comp_sum / comp_area, comp_area, histogram_median(background, bins),
                              min_contrast)  # fmt: skip
    # Consecutive ids in the order of each object's first piece.
    first = np.full(n, total, dtype=np.int64)
    np.minimum.at(first, component, np.arange(total))
    final = np.zeros(n, dtype=np.int64)
    kept = np.flatnonzero(~faint)
    final[kept[np.argsort(first[kept])]] = np.arange(1, kept.size + 1)
    lookup = {}
    for i in order:
        r = by_index[i]
        table = np.zeros(r.count + 1, dtype=np.uint32)
        table[1:] = final[component[base[i] : base[i] + r.count]]
        lookup[i] = table
    return MergedLabels(lookup, int(kept.size), int(total - n), int(faint.sum()))


def load_records(paths: Sequence[Path]) -> tuple[list[TileLabels], np.ndarray]:
    """The tiles' records, without their background histograms, and those histograms' sum."""
    import dataclasses

    records, total = [], None
    for path in paths:
        r = TileLabels.load(path)
        total = r.background.copy() if total is None else total + r.background
        records.append(dataclasses.replace(r, background=np.zeros(0, np.int64)))
    return records, total if total is not None else np.zeros(BACKGROUND_BINS, np.int64)


def histogram_median(counts: np.ndarray, bins: np.ndarray) -> float:
    """The median of the values counted in ``counts`` over ``bins`` (edges), interpolated
    linearly within its bin."""
    counts = np.asarray(counts, dtype=np.float64)
    cumulative = np.cumsum(counts)
    half = 0.5 * cumulative[-1]
    k = int(np.searchsorted(cumulative, half))
    before = cumulative[k - 1] if k > 0 else 0.0
    fraction = (half - before) / counts[k] if counts[k] > 0 else 0.5
    return float(bins[k] + fraction * (bins[k + 1] - bins[k]))


def relabel(block: np.ndarray, offset: int, table: np.ndarray) -> np.ndarray:
    """A tile's core ``block`` (ids ``offset + 1 …``, 0 background) in the final ids."""
    local = np.where(block > 0, block.astype(np.int64) - offset, 0)
    return table[local]
