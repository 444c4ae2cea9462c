"""Labels of one image segmented tile by tile (abbe.predict.labels): the merge rule across tile
borders, faint objects, consecutive ids, on synthetic label images (no model, no cluster)."""

from __future__ import annotations

import numpy as np
import pytest

from abbe.predict import labels as lab
from abbe.predict.tiling import plan_tiles
from abbe.segment import drop_faint


def same_up_to_relabelling(a: np.ndarray, b: np.ndarray) -> bool:
    """Each label of ``a`` (background included) meets exactly one label of ``b`` and vice
    versa: the two label images are equal up to a permutation of ids."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


def test_relabelling_comparison_is_strict():
    a = np.array([[0, 1, 1, 2]])
    assert same_up_to_relabelling(a, np.array([[0, 7, 7, 3]]))
    assert not same_up_to_relabelling(a, np.array([[0, 7, 7, 7]]))  # two merged
    assert not same_up_to_relabelling(a, np.array([[0, 7, 8, 3]]))  # one split
    assert not same_up_to_relabelling(a, np.array([[0, 0, 7, 3]]))  # a pixel lost


def test_an_object_cut_by_the_border_is_joined_and_touching_nuclei_are_not():
    # Edge lines of tile A (ids 1, 2) and tile B (ids 11, 12): 1 faces 11 over 4 pixels, 2
    # faces 12 over 3. Both tiles see 1|11 as one object; both see 2|12 as two nuclei meeting
    # on the border (the watershed separates them there).
    a_edge = np.array([1, 1, 1, 1, 0, 2, 2, 2])
    b_edge = np.array([11, 11, 11, 11, 0, 12, 12, 12])
    a_same = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    b_same = a_same.copy()
    assert lab.border_merges(a_edge, b_edge, a_same, b_same) == [(1, 11)]


@pytest.mark.parametrize(
    ("votes_a", "votes_b", "joined"),
    [
        (4, 0, True),  # one tile sure on every pixel pair: half the votes, joined
        (3, 1, True),
        (2, 1, False),  # 3 votes of 8: the majority says two objects
        (0, 0, False),
    ],
)
def test_disagreeing_tiles_are_settled_by_the_majority_of_pixel_votes(votes_a, votes_b, joined):
    a_edge, b_edge = np.full(4, 5), np.full(4, 9)
    a_same = np.arange(4) < votes_a
    b_same = np.arange(4) < votes_b
    assert (lab.border_merges(a_edge, b_edge, a_same, b_same) == [(5, 9)]) is joined


def _disks(shape, centres, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    out = np.zeros(shape, np.int32)
    for k, (cy, cx) in enumerate(centres, start=1):
        out[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = k
    return out


def _tiled(truth, image, *, core, halo, min_contrast, folder=None):
    """What the distributed run does, each tile's own labelling being the truth in its grown
    window (a perfect segmenter): records, merge, final relabelling chunk by chunk."""
    _, plan = plan_tiles(truth.shape, tile=(core, core), margin=(halo, halo), multiple=(1, 1))
    cores = [t.core for t in plan]
    bound = core * core
    bins = lab.background_bins((float(image.min()), float(image.max())))
    raw = np.zeros(truth.shape, np.uint32)
    records = []
    for i, c in enumerate(cores):
        grown = tuple(
            slice(max(0, s.start - halo), min(n, s.stop + halo))
            for s, n in zip(c, truth.shape, strict=True)
        )
        inner = tuple(
            slice(s.start - g.start, s.stop - g.start) for s, g in zip(c, grown, strict=True)
        )
        sides = [
            s
            for s, on in (
                ("top", c[0].start > 0),
                ("bottom", c[0].stop < truth.shape[0]),
                ("left", c[1].start > 0),
                ("right", c[1].stop < truth.shape[1]),
            )
            if on
        ]
        # The tile's own numbering is arbitrary: shift it to show nothing relies on it.
        own = np.where(truth[grown] > 0, truth[grown] + 100 * (i + 1), 0)
        block, record = lab.tile_record(
            own, inner, image[c], index=i, offset=i * bound, sides=sides, bins=bins
        )
        raw[c] = block
        records.append(record)
    background = None
    if folder is not None:  # through the files, as the distributed run reads them
        for r in records:
            r.save(folder / f"{r.index}.npz")
        records, background = lab.load_records([folder / f"{i}.npz" for i in range(len(cores))])
    merged = lab.merge_tiles(
        records,
        lab.grid_neighbours(cores),
        bins=bins,
        min_contrast=min_contrast,
        background=background,
    )
    out = np.zeros(truth.shape, np.uint32)
    for i, c in enumerate(cores):
        out[c] = lab.relabel(raw[c], i * bound, merged.lookup[i])
    return out, merged


def test_tiles_give_the_whole_images_labels_with_a_corner_nucleus_as_one():
    # 90² in cores of 30 (3 × 3 tiles, corners at 30 and 60). Nucleus 1 sits on the corner
    # (30, 30): four tiles; 2 and 3 touch exactly on the border x = 60 (two nuclei, not one);
    # 4 crosses the border y = 60; 5 lies inside one tile.
    truth = _disks((90, 90), [(30, 30), (45, 55), (45, 65), (60, 15), (75, 75)], 6)
    truth[(truth == 3) & (np.arange(90)[None, :] < 60)] = 2  # 2 | 3 meet along x = 60
    truth[(truth == 2) & (np.arange(90)[None, :] >= 60)] = 3
    image = np.where(truth > 0, 100.0, 10.0)
    out, merged = _tiled(truth, image, core=30, halo=8, min_contrast=0.35)
    assert same_up_to_relabelling(truth, out)
    assert out.max() == 5 and merged.objects == 5
    assert sorted(np.unique(out)) == list(range(6))  # consecutive ids
    # The corner nucleus: one id over all four tiles around (30, 30).
    assert len({int(out[y, x]) for y in (29, 30) for x in (29, 30)}) == 1
    # Pieces joined: 1 over 4 tiles (3 joins), 4 over 2 (1); 2 and 3 each in one tile.
    assert merged.merged == 4


def test_faint_objects_are_dropped_as_on_the_whole_image(tmp_path):
    # Independent reference: drop_faint on the whole labelled image. Background 10; objects
    # 100 except object 2 (on a border, 25: rise 15 < 0.35 × 90 = 31.5) and object 5 (50:
    # rise 40, kept). Object 2 must be judged on both its pieces together.
    rng = np.random.default_rng(3)
    truth = _disks((90, 90), [(30, 30), (45, 60), (60, 15), (75, 75), (15, 75)], 7)
    level = np.array([10.0, 100.0, 25.0, 100.0, 100.0, 50.0])
    image = level[truth] + rng.normal(0, 1.0, truth.shape)
    out, merged = _tiled(truth, image, core=30, halo=10, min_contrast=0.35, folder=tmp_path)
    expected = drop_faint(image, truth, 0.35)
    assert expected.max() == 4 and merged.faint == 1  # the reference drops object 2 only
    assert same_up_to_relabelling(expected, out)


def test_background_median_from_the_summed_histograms():
    # Bins are 1/2¹⁶ of twice the range: the median is known to a bin width (here 3e-5).
    rng = np.random.default_rng(0)
    values = rng.gamma(2.0, 1.0, 10_001)
    bins = lab.background_bins((0.0, 1.0))
    counts = np.histogram(np.clip(values, bins[0], bins[-1]), bins=bins)[0]
    # Their median (1.68) lies beyond the widened range (−0.5 to 1.5): reported at its end.
    assert lab.histogram_median(counts, bins) == pytest.approx(
        min(np.median(values), bins[-1]), abs=2 / 2**16
    )
    inside = rng.uniform(0.2, 0.6, 10_001)
    counts = np.histogram(inside, bins=bins)[0]
    assert lab.histogram_median(counts, bins) == pytest.approx(np.median(inside), abs=2 / 2**16)


def test_records_survive_a_round_trip(tmp_path):
    truth = _disks((20, 20), [(10, 10)], 5)
    block, record = lab.tile_record(
        truth,
        (slice(1, 19), slice(1, 10)),
        np.ones((18, 9)),
        index=3,
        offset=300,
        sides=["right", "top"],
        bins=lab.background_bins((0.0, 1.0)),
    )
    assert block.max() == 301 and record.count == 1
    record.save(tmp_path / "3.npz")
    back = lab.TileLabels.load(tmp_path / "3.npz")
    assert (back.index, back.offset, back.count) == (3, 300, 1)
    assert set(back.edges) == {"right", "top"}
    np.testing.assert_array_equal(back.same["right"], record.same["right"])
    # Column 9 (the core's right edge) continues into column 10 inside the disk.
    assert back.same["right"].sum() == int((truth[1:19, 9] > 0).sum())
