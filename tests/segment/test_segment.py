"""Nuclei segmentation: targets encode the labels, the watershed recovers labels from perfect
maps, the size estimate measures known disks, the bundled model segments simulated nuclei."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from abbe.errors import AbbeWarning, InputError
from abbe.metrics.segmentation import score_labels
from abbe.nn import UNetConfig
from abbe.segment import Segmenter, SegmenterConfig, drop_faint, estimate_radius, postprocess
from abbe.segment.postprocess import merge_convex
from abbe.segment.targets import (
    contact_map,
    contact_weights,
    normalize_image,
    segmentation_targets,
)
from abbe.segment.training import segmentation_loss
from abbe.simulate.cells import NucleiImageConfig, nuclei_image
from abbe.simulate.specimens import nuclei
from abbe.train import TrainingConfig


def disks(radius: float, shape=(200, 200), centres=((50, 50), (50, 130), (140, 90))):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    lab = np.zeros(shape, np.int32)
    for i, (cy, cx) in enumerate(centres, start=1):
        lab[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = i
    return lab


def test_simulated_images_are_seeded_and_labels_match_the_nuclei():
    a = nuclei_image((128, 128), seed=4)
    b = nuclei_image((128, 128), seed=4)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.labels, b.labels)
    ids = np.unique(a.labels)
    assert ids[0] == 0 and np.array_equal(ids, np.arange(ids.size))  # labels 1…n, no gaps
    inside = a.image[a.labels > 0].mean()
    outside = a.image[a.labels == 0].mean()
    assert inside > outside  # nuclei are brighter than the background


def _one_nucleus_profile(dome: float) -> tuple[float, float]:
    """Mean intensity of a lone noiseless nucleus' outer ring and of its core."""
    spec = nuclei(
        (96, 96),
        pixel_size_nm=1.0,
        radius_nm=(30, 30.01),
        coverage=0.01,
        elongation=(1, 1),
        roughness=0.0,
        texture=0.0,
        brightness=(1, 1),
        dome=dome,
        seed=2,
    )
    inside = spec.labels > 0
    depth = ndimage.distance_transform_edt(inside)
    ring = inside & (depth <= 3)
    core = depth >= 0.7 * depth.max()
    return float(spec.density[ring].mean()), float(spec.density[core].mean())


def test_dome_nuclei_dim_toward_the_edge_as_an_ellipsoid_s_thickness():
    ring, core = _one_nucleus_profile(0.0)
    assert ring == pytest.approx(core, rel=0.15)  # flat: an optical section
    ring, core = _one_nucleus_profile(1.0)
    # Ring 0–3 px inside a 30 px disk: thickness √(1 − ρ²) averages ≈ 0.35 of the core's
    # (≈ 0.97 over the inner 30 %); the anti-aliased edge pixel lowers it a little more.
    assert 0.2 < ring / core < 0.45


def _touching_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    """Pairs of labels sharing a 4-connected border."""
    pairs = set()
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1], labels[1:])):
        edge = (a != b) & (a > 0) & (b > 0)
        pairs |= {(int(min(u, v)), int(max(u, v))) for u, v in zip(a[edge], b[edge], strict=True)}
    return pairs


def _flat_nuclei(pairs: float, gap=(-0.15, 0.1), seed: int = 3):
    return nuclei(
        (256, 256),
        pixel_size_nm=1.0,
        radius_nm=(12, 14),
        coverage=0.15,
        elongation=(0.6, 0.8),
        roughness=0.0,
        texture=0.0,
        brightness=(1, 1),
        max_overlap=0.0,
        pairs=pairs,
        contact_gap=gap,
        seed=seed,
    )


def test_sister_nuclei_are_pressed_together_without_a_seam():
    """pairs=1: many more nuclei touch a neighbour than without sisters, the two of nearly the
    same size; where sisters meet, the light is not added (as it is where nuclei lie on top
    of each other) nor missing: the contact looks like the inside of a nucleus."""
    lone = _flat_nuclei(0.0)
    sisters = _flat_nuclei(1.0, gap=(-0.15, -0.1))  # always pressed: their outlines cross
    touching = _touching_pairs(sisters.labels)
    assert len(touching) >= 3 * max(1, len(_touching_pairs(lone.labels)))
    areas = np.bincount(sisters.labels.ravel())
    ratios = [areas[a] / areas[b] for a, b in touching]
    assert np.median(ratios) == pytest.approx(1.0, abs=0.35)
    contact = []
    for a, b in touching:
        band = ndimage.binary_dilation(sisters.labels == a, iterations=2) & (sisters.labels == b)
        contact.append(
            (float(np.median(sisters.density[band])), float(sisters.density[band].max()))
        )
    # Brightness 1, sisters 0.85–1.15 of it: at the contact the light stays at that level;
    # nuclei lying on top of each other (and the rims of two outlines, summed) reach 1.5–2.
    seamless = [0.8 < median and peak < 1.2 for median, peak in contact]
    assert np.mean(seamless) >= 0.7


def test_sisters_with_a_gap_touch_far_less_often():
    spaced = _flat_nuclei(1.0, gap=(0.3, 0.4))
    pressed = _flat_nuclei(1.0)
    assert len(_touching_pairs(spaced.labels)) <= 0.4 * len(_touching_pairs(pressed.labels))


def test_bright_nuclei_glow_and_clipping():
    base = dict(
        bright_probability=1.0,
        bright_coverage=(0.03, 0.03),
        peak_photons=(1000, 1000),
        background=(0.0, 0.0),
        read_noise=(0.0, 0.0),
        haze=(0.0, 0.0),
        illumination=(0, 0),
        blur_px=(1.0, 1.0),
        saturation_probability=0.0,
    )

    def halo(glow: float) -> float:
        sim = nuclei_image((256, 256), NucleiImageConfig(**base, bright_glow=(glow, glow)), seed=3)
        near = ndimage.binary_dilation(sim.labels > 0, iterations=6) & (sim.labels == 0)
        return float(sim.image[near].mean())

    # The same nuclei (same seed): the glow sends light into the background around them.
    assert halo(0.5) > 1.5 * halo(0.0)
    clipped = nuclei_image(
        (256, 256),
        NucleiImageConfig(**base | {"saturation_probability": 1.0}, saturation_level=(2, 2)),
        seed=3,
    )
    assert clipped.image.max() == pytest.approx(2000.0)  # 2 × the 1000-photon peak


def test_targets_give_distance_one_at_each_centre():
    lab = disks(12)
    y = segmentation_targets(lab)
    assert np.array_equal(y[0] > 0, lab > 0)
    for i in (1, 2, 3):
        assert y[1][lab == i].max() == pytest.approx(1.0)
    assert y[1][50, 50] == pytest.approx(1.0, abs=0.1)


def test_contact_weights_peak_where_nuclei_touch_and_nowhere_else():
    # Disks 1 and 2 touch at x = 90 (radius 12, centres 24 apart); disk 3 lies alone.
    lab = disks(12, centres=((50, 78), (50, 102), (140, 90)))
    lab[lab == 2] = np.where(np.mgrid[:200, :200][1] < 90, 1, 2)[lab == 2]
    w = contact_weights(lab, 10.0, 3.0)
    assert w[50, 89] == pytest.approx(1 + 10 * np.exp(-1 / 18), abs=0.05)  # 1 px from 2
    assert w[50, 96] == pytest.approx(1 + 10 * np.exp(-(7**2) / 18), abs=0.05)  # 7 px from 1
    assert w[50, 60] == pytest.approx(1.0, abs=0.01)  # the far side of disk 1
    assert np.allclose(w[lab == 3], 1.0, atol=1e-3) and np.allclose(w[120:, :], 1.0, atol=1e-3)
    assert np.array_equal(contact_weights(lab, 0.0, 3.0), np.ones(lab.shape, np.float32))


def test_segmentation_loss_weights_pixels_and_equal_weights_change_nothing():
    gen = torch.Generator().manual_seed(0)
    out = torch.randn(2, 2, 16, 16, generator=gen)
    y = torch.rand(2, 2, 16, 16, generator=gen).round()
    plain = segmentation_loss(out, y, torch.zeros(0))
    assert float(segmentation_loss(out, y, torch.full((2, 16, 16), 3.0))) == pytest.approx(
        float(plain), rel=1e-6
    )
    only_first = torch.zeros(2, 16, 16)
    only_first[0] = 1.0
    assert float(segmentation_loss(out, y, only_first)) == pytest.approx(
        float(segmentation_loss(out[:1], y[:1], torch.zeros(0))), rel=1e-6
    )


def test_merge_convex_joins_a_cut_disk_but_not_two_disks_that_touch():
    # A disk of radius 20 cut in two by a vertical line: the union is the disk, solidity 1.
    cut = disks(20, centres=((50, 50),))
    cut[(cut == 1) & (np.mgrid[:200, :200][1] >= 50)] = 2
    # Two disks of radius 12, centres 22 px apart, meet at a waist: union over convex hull
    # (two half disks and a 24 × 22 rectangle) is 0.91 for the continuous shapes.
    pair = disks(12, centres=((140, 78), (140, 100)))
    lab = np.where(pair > 0, pair + 2, cut)
    merged = merge_convex(lab, 0.95)
    assert merged.max() == 3  # the cut disk is one object again, the pair stays two
    assert len(np.unique(merged[cut > 0])) == 1
    assert len(np.unique(merged[pair > 0])) == 2
    assert merge_convex(lab, 0.80).max() == 2  # a low threshold joins the pair as well
    with pytest.raises(ValueError, match="2D"):
        merge_convex(lab[None], 0.9)


def test_watershed_recovers_touching_nuclei_from_perfect_maps():
    sim = nuclei_image((256, 256), NucleiImageConfig(coverage=(0.5, 0.5)), seed=8)
    y = segmentation_targets(sim.labels)
    labels = postprocess(y[0], y[1])
    assert score_labels(labels, sim.labels).ap50 >= 0.95


@pytest.mark.parametrize("radius", [8, 15, 30])
def test_size_estimate_measures_disks(radius):
    rng = np.random.default_rng(0)
    lab = disks(
        radius,
        shape=(8 * radius, 8 * radius),
        centres=((2 * radius, 2 * radius), (2 * radius, 5 * radius), (5 * radius, 3 * radius)),
    )
    image = 100 * (lab > 0) + rng.normal(10, 3, lab.shape)
    assert estimate_radius(image) == pytest.approx(radius, rel=0.12)


def test_flat_image_is_refused():
    with pytest.raises(InputError, match="flat"):
        estimate_radius(np.ones((64, 64)))


@pytest.fixture(scope="module")
def bundled():
    return Segmenter.load("nuclei-fluo")


def test_bundled_model_segments_simulated_nuclei(bundled):
    aps = []
    for seed in (101, 102, 103):
        sim = nuclei_image((256, 256), seed=seed)
        aps.append(score_labels(bundled.predict(sim.image), sim.labels).ap50)
    assert np.mean(aps) >= 0.8


def test_rescaling_finds_large_nuclei(bundled):
    # Nuclei three times the trained size are brought to it by the size estimate.
    cfg = NucleiImageConfig(radius_px=(30.0, 60.0), coverage=(0.3, 0.3), bright_probability=0.0)
    sim = nuclei_image((512, 512), cfg, seed=7)
    assert bundled.scale_for(sim.image) < 0.5
    assert score_labels(bundled.predict(sim.image), sim.labels).ap50 >= 0.75


def test_nuclei_filling_the_field_are_not_split_into_their_texture(bundled):
    # Issue 28, finding 4: one nucleus of radius ≈ 290 px fills a 768² widefield image (12 nm
    # pixels); its chromatin's bright patches made the size measure read 100 px, and the model
    # cut the nucleus in four (AP@0.5 0.25). Measured again at its own scale, it is found whole,
    # with a warning that says which size was used and how to override it.
    from abbe import simulate

    sim = simulate.widefield("nuclei", size=768, pixel_size_nm=12, seed=2, oversample=1)
    with pytest.warns(AbbeWarning, match="when smoothed") as caught:
        labels = bundled.predict(sim.input)
    assert "--diameter" in str(caught[0].message)
    score = score_labels(labels, sim.labels)
    assert score.n_pred == score.n_true == 1 and score.ap50 == 1.0


def test_nucleus_size_beyond_the_old_zoom_limit_is_rescaled(bundled):
    # Radius 205 px: the zoom to the model's 11 px is 0.054, below the former limit of 0.1
    # that split the nucleus in three; the limit is now 1/32.
    from abbe import simulate

    sim = simulate.widefield("nuclei", size=512, pixel_size_nm=12, seed=1, oversample=1)
    size = bundled.nucleus_size(sim.input, warn=False)
    assert size.zoom == pytest.approx(bundled.config.typical_radius_px / size.radius_px)
    assert size.zoom < 0.1 and size.warnings == ()
    score = score_labels(bundled.predict(sim.input), sim.labels)
    assert score.n_pred == score.n_true == 1 and score.ap50 == 1.0


@pytest.mark.parametrize(("pixel_nm", "flagged"), [(1000, True), (300, False)])
def test_nuclei_far_below_the_trained_size_are_flagged(bundled, pixel_nm, flagged):
    # Widefield nuclei have a long semi-axis of 2.5–5 µm: 2.5–5 px at 1 µm pixels, where
    # upsampling cannot part touching nuclei (AP@0.5 0.79–0.83 at 1 µm, 0.28–0.73 at
    # 1.2–2 µm); 8–17 px at 300 nm lies in the trained range (7–13 px inscribed radius) and
    # must stay silent.
    from abbe import simulate

    sim = simulate.widefield("nuclei", size=128, pixel_size_nm=pixel_nm, seed=3)
    size = bundled.nucleus_size(sim.input, warn=False)
    lo, _ = bundled.config.trained_radius_px
    assert (size.radius_px < lo / 1.5) == flagged
    assert any("well below the sizes" in w for w in size.warnings) == flagged
    assert ("px across (measured)" in size.describe()) and ("µm" in size.describe(pixel_nm))


def test_a_given_diameter_too_small_to_zoom_to_is_flagged(bundled):
    # 3 px: the zoom to the model's 22 px would be 7.4, beyond the limit of 4.
    image = nuclei_image((96, 96), seed=5).image
    with pytest.warns(AbbeWarning) as caught:
        bundled.predict(image, diameter_px=3.0)
    messages = " ".join(str(w.message) for w in caught)
    assert "limited to ×4" in messages and "well below the sizes" in messages


def test_an_ambiguous_size_measure_names_the_diameter_to_pass(bundled):
    # Large nuclei (long semi-axis 50–90 px) whose texture the threshold breaks into many
    # small pieces: the median blob is 8 px across, but the blob holding the median bright
    # pixel is about a nucleus wide (inscribed radius of the true nuclei: median 57 px).
    sim = nuclei_image((384, 384), NucleiImageConfig(radius_px=(50.0, 90.0)), seed=1)
    size = bundled.nucleus_size(sim.image, warn=False)
    (note,) = [w for w in size.warnings if "ambiguous" in w]
    suggested = float(note.rsplit("--diameter", 1)[1])
    assert 2 * 57 / 1.5 <= suggested <= 2 * 57 * 1.5


def test_predict_refuses_bad_input(bundled):
    with pytest.raises(InputError, match="2D"):
        bundled.predict(np.zeros((2, 8, 8)))
    bad = np.ones((64, 64))
    bad[3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        bundled.predict(bad)


def test_tiled_maps_equal_one_pass_so_labels_cross_tile_borders(bundled):
    image = nuclei_image((200, 176), seed=9).image
    fg, dist = bundled.predict_maps(image)
    fg_t, dist_t = bundled.predict_maps(image, tile=64)
    np.testing.assert_allclose(fg_t, fg, atol=1e-4)
    np.testing.assert_allclose(dist_t, dist, atol=1e-4)


def test_a_small_memory_budget_tiles_and_gives_the_same_labels(bundled):
    image = nuclei_image((256, 224), seed=11).image
    whole = bundled.predict(image, scale=1.0, tile=None)
    tiles = bundled.tile_shape((256, 224), "auto", memory_mb=48)
    assert tiles is not None and tiles[0] < 224  # the budget really cuts the image
    tiled = bundled.predict(image, scale=1.0, memory_mb=48)
    assert whole.max() >= 10
    np.testing.assert_array_equal(tiled, whole)


def test_faint_objects_are_dropped_but_dim_nuclei_kept():
    lab = disks(10, centres=((40, 40), (40, 120), (120, 40), (120, 120)))
    image = np.full(lab.shape, 10.0)
    image[lab == 1], image[lab == 2], image[lab == 3] = 110, 100, 50  # a dim nucleus (40 %)
    image[lab == 4] = 15  # debris: 5 % of a nucleus' contrast
    kept = drop_faint(image, lab, 0.35)
    assert kept.max() == 3 and (kept[lab == 4] == 0).all() and (kept[lab == 3] > 0).all()
    assert drop_faint(image, lab, 0.0).max() == 4


def test_many_small_false_objects_cannot_outvote_the_nuclei():
    # 3 nuclei (radius 12, contrast 100) and 8 noise blobs (radius 3, contrast 10): by count
    # the blobs are the median object, by area the nuclei are (3 × 452 px against 8 × 29).
    centres = (
        (40, 40),
        (40, 120),
        (120, 40),
        *((160 + 12 * (k // 4), 100 + 20 * (k % 4)) for k in range(8)),
    )
    lab = disks(12, centres=centres[:3])
    small = disks(3, centres=centres[3:])
    lab = np.where(small > 0, small + 3, lab)
    image = np.where(lab > 3, 20.0, np.where(lab > 0, 110.0, 10.0))
    kept = drop_faint(image, lab, 0.35)  # threshold 10 + 0.35 × 100 = 45
    assert kept.max() == 3 and (kept[lab > 3] == 0).all()


def test_stack_segmentation_joins_planes_into_3d_nuclei(tmp_path, cli):
    """nuclei-fluo on a simulated stack of ellipsoidal nuclei: planes segmented, then stitched
    across Z into 3D objects: every nucleus found once (AP@0.5 in 3D ≥ 0.9), where labelling
    each plane separately would match none."""
    from abbe import io
    from abbe.metrics.segmentation import score_labels
    from abbe.segment import Segmenter
    from abbe.simulate.cells import nuclei_stack

    sim = nuclei_stack(seed=3)
    model = Segmenter.load("nuclei-fluo")
    labels = model.predict_stack(sim.image)
    scores = score_labels(labels, sim.labels)
    assert scores.ap50 >= 0.9, scores.as_dict()
    assert abs(scores.n_pred - scores.n_true) <= 1
    planewise = np.zeros_like(labels)
    offset = 0
    for z in range(labels.shape[0]):
        plane = model.predict(sim.image[z], scale=1.0)
        planewise[z] = np.where(plane > 0, plane + offset, 0)
        offset += int(plane.max())
    assert score_labels(planewise, sim.labels).ap50 < 0.2
    src = tmp_path / "stack.tif"
    io.write(src, sim.image, axes="ZYX", pixel_size_nm=200.0)
    r = cli("segment", src, "-o", tmp_path / "labels.tif", "--axes", "ZYX", "-q")
    assert r.code == 0, r
    out, meta = io.read(tmp_path / "labels.tif")
    assert out.shape == sim.image.shape and meta.axes == "ZYX"


def test_planes_without_nuclei_stay_empty_on_the_stack_s_intensity_scale():
    # Planes 0–3 of a stack hold only noise around a mean of 5 photons; the nuclei plane below
    # reaches 100. On its own scale a noise plane is stretched to full range, on the stack's
    # it stays dark.
    rng = np.random.default_rng(0)
    sim = nuclei_image((128, 128), seed=4)
    plane = sim.image / sim.image.max() * 100
    stack = np.stack([rng.poisson(5.0, (128, 128)).astype(np.float32)] * 4 + [plane])
    levels = tuple(np.percentile(stack, (1.0, 99.0)))
    # the noise peaks near 15 photons; the stack spans about 1 to 65 (its 1st and 99th percentiles)
    assert normalize_image(stack[0], (1.0, 99.0), levels).max() < 0.3
    assert normalize_image(stack[0], (1.0, 99.0)).max() > 1.0


def test_stitch_planes_continues_overlapping_objects():
    """A cap inside a larger section continues it (overlap of the smaller one ≥ 50 %); an
    object touching nothing above starts a new one."""
    from abbe.segment.stack import stitch_planes

    a = np.zeros((20, 20), np.int32)
    a[2:12, 2:12] = 5  # one large section
    b = np.zeros((20, 20), np.int32)
    b[4:8, 4:8] = 1  # a small cap inside it (IoU 0.16, but all of it overlaps)
    b[14:18, 14:18] = 2  # new object
    out = stitch_planes([a, b])
    assert out[0, 5, 5] == out[1, 5, 5] == 1
    assert out[1, 15, 15] == 2


def test_dihedral_views_are_distinct_and_inverted_exactly():
    from abbe.segment.model import _dihedral

    a = np.arange(12.0).reshape(3, 4)
    views = [_dihedral(a, k) for k in range(8)]
    assert len({v.tobytes() + bytes(v.shape) for v in views}) == 8
    for k, v in enumerate(views):
        np.testing.assert_array_equal(_dihedral(v, k, inverse=True), a)


def test_augmented_maps_turn_with_the_image(bundled):
    # Averaged over all 8 views, the maps of a rotated or mirrored image are those of the
    # image, rotated or mirrored: the orientation of a nucleus no longer changes its maps.
    image = nuclei_image((96, 80), seed=12).image
    fg, dist = bundled.predict_maps(image, tta=True)
    fg_r, dist_r = bundled.predict_maps(np.rot90(image), tta=True)
    np.testing.assert_allclose(fg_r, np.rot90(fg), atol=1e-4)
    np.testing.assert_allclose(dist_r, np.rot90(dist), atol=1e-4)
    fg_m, _ = bundled.predict_maps(image[:, ::-1], tta=True)
    np.testing.assert_allclose(fg_m, fg[:, ::-1], atol=1e-4)
    plain, _ = bundled.predict_maps(np.rot90(image))
    assert np.abs(plain - np.rot90(bundled.predict_maps(image)[0])).max() > 1e-3


def test_contact_map_marks_where_two_nuclei_meet_and_narrow_gaps():
    # Disks 1 and 2 share the line x = 90; disk 3 lies 6 px from disk 2's edge, disk 4 alone.
    lab = disks(12, centres=((50, 78), (50, 102), (140, 90), (50, 126)))
    lab[lab == 2] = np.where(np.mgrid[:200, :200][1] < 90, 1, 2)[lab == 2]
    lab[(lab == 4) & (np.mgrid[:200, :200][1] < 120)] = 0  # 6-px gap between 2 and 4 at y=50
    c = contact_map(lab, 2.0)
    assert c[50, 88:92].all() and not c[50, 86] and not c[50, 93]  # ±2 px about the contact
    assert not c[lab == 3].any()  # alone: no contact
    assert not c[50, 117]  # a 6-px gap is wider than 2 × 2 px
    assert contact_map(lab, 4.0)[50, 117]  # but 4 px from disk 2 (x ≤ 113) and 3 from disk 4
    y = segmentation_targets(lab, contact_px=2.0)
    assert y.shape == (3, 200, 200) and np.array_equal(y[2], c)


def test_three_output_config_trains_and_predicts_with_contacts(tmp_path):
    cfg = SegmenterConfig(
        contact_weight=3.0,
        typical_radius_px=10.0,  # skips measuring the simulations
        network=UNetConfig(in_channels=1, out_channels=3, width=8, depth=2, residual=False),
        training=TrainingConfig(
            patch_size=64, batch_size=2, steps_per_epoch=2, max_epochs=1, seed=0, threads=1
        ),
    )
    threads = torch.get_num_threads()
    model = Segmenter(cfg).fit(work_dir=tmp_path)
    assert torch.get_num_threads() == threads  # training on 1 thread leaves prediction alone
    fg, dist = model.predict_maps(nuclei_image((96, 96), seed=2).image)
    assert fg.shape == dist.shape == (96, 96) and 0 <= dist.min() and dist.max() <= 1
    with pytest.raises(ValueError, match="out_channels"):
        SegmenterConfig(network=UNetConfig(in_channels=1, out_channels=4))


def test_best_by_validation_ap_keeps_the_best_epochs_weights_not_the_last():
    from types import SimpleNamespace

    from abbe.segment.training import BestByValidationAP

    net = torch.nn.Linear(2, 1)
    scores = iter([0.2, 0.9, 0.5])  # epoch 1 is the best, epoch 2 the last
    chooser = BestByValidationAP(lambda: next(scores))
    module = SimpleNamespace(network=net)
    weights = []
    for epoch in range(3):
        with torch.no_grad():
            net.weight.fill_(float(epoch))
        weights.append(net.weight.detach().clone())
        trainer = SimpleNamespace(
            sanity_checking=False, state=SimpleNamespace(fn="fit"), current_epoch=epoch
        )
        chooser.on_validation_end(trainer, module)
    assert (chooser.best_epoch, chooser.best_ap) == (1, 0.9)
    assert net.training  # scoring put it in eval mode; it is put back
    chooser.restore(net)
    torch.testing.assert_close(net.weight, weights[1], rtol=0, atol=0)
    # Resumed runs keep the choice: it travels in the checkpoint's callback state.
    again = BestByValidationAP(lambda: 0.0)
    again.load_state_dict(chooser.state_dict())
    assert (again.best_epoch, again.best_ap) == (1, 0.9)
    torch.testing.assert_close(again.best_state["weight"], weights[1], rtol=0, atol=0)


def test_training_with_validation_images_records_the_chosen_epoch(tmp_path):
    cfg = SegmenterConfig(
        typical_radius_px=10.0,  # skips measuring the simulations
        validation_images=1,
        validation_image_px=64,
        network=UNetConfig(in_channels=1, out_channels=2, width=4, depth=2, residual=False),
        training=TrainingConfig(
            patch_size=64,
            batch_size=2,
            steps_per_epoch=2,
            max_epochs=2,
            seed=0,
            threads=1,
            gradient_clip_norm=1.0,
        ),
    )
    model = Segmenter(cfg).fit(work_dir=tmp_path)
    chosen = model.metrics["checkpoint"]
    assert chosen["epoch"] in (0, 1)
    assert 0.0 <= chosen["validation_ap50"] <= 1.0
    assert chosen["validation_ap50"] >= chosen["last_epoch_ap50"]


def test_label_level_ends_labels_where_the_blurred_nucleus_falls_to_that_level():
    from skimage.segmentation import find_boundaries

    quiet = dict(
        peak_photons=(1e6, 1e6),
        read_noise=(0.0, 0.0),
        background=(0.0, 0.0),
        haze=(0.0, 0.0),
        illumination=(0.0, 0.0),
        texture=(0.0, 0.0),
        bright_probability=0.0,
        saturation_probability=0.0,
        pairs=0.0,
        coverage=(0.05, 0.1),
        blur_px=(2.0, 2.0),
    )
    whole = nuclei_image((128, 128), NucleiImageConfig(**quiet), seed=7)
    trimmed = nuclei_image((128, 128), NucleiImageConfig(**quiet, label_level=0.6), seed=7)
    np.testing.assert_array_equal(whole.image, trimmed.image)  # only the labels change
    assert set(np.unique(trimmed.labels)) == set(np.unique(whole.labels))
    assert np.all(whole.labels[trimmed.labels > 0] == trimmed.labels[trimmed.labels > 0])
    img, lab = trimmed.image, trimmed.labels
    assert lab.max() >= 2
    inner = find_boundaries(lab, mode="inner")
    outer = find_boundaries(lab, mode="outer") & (lab == 0)
    for k in range(1, int(lab.max()) + 1):
        core = ndimage.binary_erosion(whole.labels == k, iterations=3)
        level = np.median(img[core])
        near = ndimage.binary_dilation(lab == k, iterations=1)
        # Edge pixels inside reach 60 % of the core (1 % for the photon noise at 1e6).
        assert img[inner & (lab == k)].min() >= 0.59 * level
        # The first pixels outside lie below it (all but where another nucleus is near).
        assert np.median(img[outer & near]) < 0.6 * level


def test_a_part_is_rescaled_on_the_whole_images_grid():
    # A distributed tile (abbe.predict.distributed.segment_tiles) rescales its part of the
    # image: the values must be those of ndimage.zoom on the whole image (same sample
    # positions), from a multiple of the network's 8 on, and back again.
    from scipy import ndimage

    from abbe.segment.model import _resize, _unzoom_part, _zoom_part

    image = np.random.default_rng(1).random((150, 130)).astype(np.float32)
    zoom, origin, part = 1.37, (40, 24), (slice(40, 120), slice(24, 130))
    whole = ndimage.zoom(image, zoom, order=1)
    work, grid = _zoom_part(image[part], origin, image.shape, zoom, 8)
    (y0, _, _), (x0, _, _) = grid
    assert y0 % 8 == 0 and x0 % 8 == 0 and y0 * (149 / (whole.shape[0] - 1)) >= 40
    assert x0 + work.shape[1] == whole.shape[1]  # the part reaches the far end in X
    np.testing.assert_allclose(
        work, whole[y0 : y0 + work.shape[0], x0 : x0 + work.shape[1]], atol=1e-6
    )
    # Back: beyond 8 px of the part's near edges (the rescaled part starts up to 8 px of it,
    # a multiple, later: a distributed tile's halo covers that band), the whole image's.
    back = _unzoom_part(
        whole[y0 : y0 + work.shape[0], x0 : x0 + work.shape[1]], grid, (80, 106), origin,
        image.shape,
    )  # fmt: skip
    np.testing.assert_allclose(
        back[8:-8, 8:], _resize(whole, image.shape)[part][8:-8, 8:], atol=1e-5
    )
