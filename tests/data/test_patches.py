"""Normalization, patch sampling, augmentation and Noise2Void masking."""

from __future__ import annotations

import numpy as np
import pytest

from abbe.data import (
    N2VMasking,
    PatchPool,
    PercentileNorm,
    augment_dihedral,
    batch_rng,
    denormalize,
    n2v_mask,
    normalize,
    normalize_pair,
    percentile_range,
)
from abbe.errors import InputError


def test_percentiles_of_a_huge_lazy_image_match_the_exact_ones(rng):
    import dask.array as da

    data = rng.gamma(2.0, 10.0, (3000, 3000)).astype(np.float32)
    exact = np.percentile(data, [1, 99.8])
    lo, hi = percentile_range(da.from_array(data, chunks=512), 1, 99.8, max_samples=500_000)
    assert lo == pytest.approx(exact[0], rel=0.02)
    assert hi == pytest.approx(exact[1], rel=0.02)


def test_normalize_then_denormalize_is_the_identity(rng):
    x = rng.normal(100, 10, (32, 32)).astype(np.float32)
    lo, hi = percentile_range(x, 1, 99.8)
    np.testing.assert_allclose(denormalize(normalize(x, lo, hi), lo, hi), x, rtol=1e-5)


def test_target_normalized_with_the_input_range_keeps_the_physical_relation(rng):
    clean = rng.random((64, 64)).astype(np.float32) * 50 + 5
    noisy = clean + rng.normal(0, 2, clean.shape).astype(np.float32)
    _, y = normalize_pair(noisy, clean, PercentileNorm(target="input"))
    lo, hi = percentile_range(noisy, 1, 99.8)
    np.testing.assert_allclose(y, (clean - lo) / (hi - lo), rtol=1e-5)
    _, y_own = normalize_pair(noisy, clean, PercentileNorm(target="own"))
    assert np.percentile(y_own, 99.8) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="below"):
        PercentileNorm(low=99, high=1)


def test_constant_images_are_refused():
    with pytest.raises(InputError, match="constant"):
        percentile_range(np.ones((8, 8)), 1, 99)


def test_foreground_bias_puts_structure_in_most_patches(rng):
    img = np.zeros((1, 256, 256), np.float32)
    img[0, 100:104, :] = 1.0  # one thin bright line: 1.6 % of the image
    pool = PatchPool([img], [img], (32, 32))
    x, _ = pool.sample(400, rng, foreground_fraction=1.0)
    assert (x.max(axis=(1, 2, 3)) > 0.5).mean() > 0.95
    x, _ = pool.sample(400, rng, foreground_fraction=0.0)
    assert (x.max(axis=(1, 2, 3)) > 0.5).mean() < 0.3


def test_patches_larger_than_the_image_are_refused():
    with pytest.raises(InputError, match="smaller than the patch"):
        PatchPool([np.zeros((1, 16, 16), np.float32)], None, (32, 32))


def test_augmentation_applies_one_symmetry_to_input_and_target_alike(rng):
    x = rng.random((64, 1, 8, 8)).astype(np.float32)
    y = x * 2.0
    ax, ay = augment_dihedral([x, y], rng)
    np.testing.assert_array_equal(ay, ax * 2.0)
    seen = {tuple(np.round(a.ravel()[:4], 6)) for a in ax[:, 0]}
    assert len(seen) > 1
    # Each output is one of the 8 symmetries of its input.
    for a, b in zip(x[:, 0], ax[:, 0], strict=True):
        candidates = [np.rot90(t, k) for t in (a, a[:, ::-1]) for k in range(4)]
        assert any(np.array_equal(b, c) for c in candidates)


@pytest.mark.parametrize("strategy", ["uniform", "median"])
def test_n2v_masks_the_requested_fraction_and_hides_each_masked_pixel(rng, strategy):
    patches = rng.permutation(64 * 64 * 4).reshape(4, 1, 64, 64).astype(np.float32)  # unique
    masked, mask = n2v_mask(patches, N2VMasking(fraction=0.02, strategy=strategy), rng)
    fraction = mask.mean()
    assert fraction == pytest.approx(0.02, rel=0.25)
    hit = mask > 0
    assert np.all(masked[hit] != patches[hit])  # the network never sees the true value
    np.testing.assert_array_equal(masked[~hit], patches[~hit])
    if strategy == "uniform":  # each replacement is a value from the patch (a neighbour)
        assert np.isin(masked[hit], patches).all()


def test_n2v_median_replacement_is_the_median_of_the_neighbours():
    patch = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5) ** 2
    rng = np.random.default_rng(0)
    masked, mask = n2v_mask(patch, N2VMasking(fraction=0.04, strategy="median", radius=1), rng)
    ys, xs = np.nonzero(mask[0, 0])
    for y, x in zip(ys, xs, strict=True):
        if 0 < y < 4 and 0 < x < 4:
            window = patch[0, 0, y - 1 : y + 2, x - 1 : x + 2].ravel()
            expected = np.median(np.delete(window, 4))
            assert masked[0, 0, y, x] == pytest.approx(expected)


def test_batch_generators_are_reproducible_and_independent():
    a = batch_rng(3, 1, 7).random(4)
    np.testing.assert_array_equal(a, batch_rng(3, 1, 7).random(4))
    assert not np.array_equal(a, batch_rng(3, 1, 8).random(4))
    assert not np.array_equal(a, batch_rng(3, 1, 7, stream=1).random(4))
