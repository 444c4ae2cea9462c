"""Image metrics agree with independent implementations and behave as their definitions say."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import metrics as sk

from abbe import metrics


@pytest.fixture
def pair(rng):
    from scipy import ndimage

    truth = ndimage.gaussian_filter(rng.random((96, 128)), 2) * 50 + 10
    pred = truth + rng.normal(0, 1.5, truth.shape)
    return pred, truth


def test_psnr_and_nrmse_agree_with_scikit_image(pair):
    pred, truth = pair
    r = truth.max() - truth.min()
    assert metrics.psnr(pred, truth) == pytest.approx(
        sk.peak_signal_noise_ratio(truth, pred, data_range=r), abs=1e-6
    )
    for norm in ("euclidean", "min-max", "mean"):
        assert metrics.nrmse(pred, truth, normalization=norm) == pytest.approx(
            sk.normalized_root_mse(truth, pred, normalization=norm), abs=1e-6
        )


def test_ssim_agrees_with_scikit_image_in_both_window_conventions(pair):
    pred, truth = pair
    r = truth.max() - truth.min()
    wang = sk.structural_similarity(
        pred, truth, data_range=r, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    uniform = sk.structural_similarity(pred, truth, data_range=r)
    assert metrics.ssim(pred, truth) == pytest.approx(wang, abs=1e-6)
    assert metrics.ssim(pred, truth, gaussian_weights=False) == pytest.approx(uniform, abs=1e-6)


def test_ssim_of_a_volume_agrees_with_scikit_image(rng):
    truth = rng.random((12, 30, 30))
    pred = truth + rng.normal(0, 0.1, truth.shape)
    expected = sk.structural_similarity(
        pred, truth, data_range=1.0, gaussian_weights=True, use_sample_covariance=False
    )
    assert metrics.ssim(pred, truth, data_range=1.0) == pytest.approx(expected, abs=1e-6)


def test_ms_ssim_agrees_with_torchmetrics(pair):
    torch = pytest.importorskip("torch")
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

    pred, truth = pair
    big_p = np.kron(pred, np.ones((2, 2)))  # 192×256: room for five scales
    big_t = np.kron(truth, np.ones((2, 2)))
    r = float(big_t.max() - big_t.min())
    ours = metrics.ms_ssim(big_p, big_t, data_range=r)
    theirs = multiscale_structural_similarity_index_measure(
        torch.tensor(big_p)[None, None], torch.tensor(big_t)[None, None], data_range=r
    ).item()
    # Border conventions differ slightly (they pad, we crop like scikit-image).
    assert ours == pytest.approx(theirs, abs=3e-3)


def test_ms_ssim_is_one_for_identical_images_and_falls_with_noise(pair, rng):
    _, truth = pair
    assert metrics.ms_ssim(truth, truth) == pytest.approx(1.0)
    scores = [metrics.ms_ssim(truth + rng.normal(0, s, truth.shape), truth) for s in (1, 3, 9)]
    assert scores[0] > scores[1] > scores[2]


def test_normalization_forgives_scale_and_offset_but_not_noise(pair):
    pred, truth = pair
    rescaled = 3.0 * pred + 200.0  # e.g. a method that outputs ADU
    raw = metrics.evaluate(rescaled, truth)
    fair = metrics.evaluate(rescaled, truth, normalize=True)
    same = metrics.evaluate(pred, truth, normalize=True)
    assert raw.psnr < 0
    assert fair.psnr == pytest.approx(same.psnr, abs=1e-9)
    assert fair.ssim == pytest.approx(same.ssim, abs=1e-9)
    assert fair.psnr < metrics.evaluate(truth, truth, normalize=True).psnr


def test_affine_fit_is_the_least_squares_solution(rng):
    x = rng.random(500)
    y = 2.5 * x - 1.0 + rng.normal(0, 0.01, 500)
    alpha, beta = np.polyfit(x, y, 1)
    np.testing.assert_allclose(metrics.affine_fit(x, y), alpha * x + beta, atol=1e-10)


def test_evaluate_averages_ssim_over_the_planes_of_a_stack(pair):
    pred, truth = pair
    stack_p, stack_t = np.stack([pred, truth]), np.stack([truth, truth])
    scores = metrics.evaluate(stack_p, stack_t, data_range=50.0)
    expected = (metrics.ssim(pred, truth, data_range=50.0) + 1.0) / 2
    assert scores.ssim == pytest.approx(expected)
    assert set(scores.as_dict()) >= {"psnr", "ssim", "ms_ssim", "nrmse"}


def test_mismatched_shapes_are_refused(pair):
    from abbe.errors import InputError

    pred, truth = pair
    with pytest.raises(InputError, match="differs"):
        metrics.psnr(pred[:-1], truth)
