"""Image metrics agree with independent implementations and behave as their definitions say."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import ndimage
from skimage import metrics as sk

from abbe import metrics
from abbe.errors import AbbeWarning


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


# A sCMOS-like camera: 0.8 e⁻ per photon, 2 ADU per e⁻, a 100 ADU baseline.
ADU_PER_PHOTON, OFFSET_ADU = 1.6, 100.0


@pytest.fixture(scope="module")
def photon_pair():
    """A noisy widefield image in photons and its clean truth, also in photons."""
    from abbe import simulate

    sim = simulate.widefield("filaments", size=96, photons=100, background=10, seed=5)
    return sim.input, sim.clean


def test_an_adu_result_against_a_photon_truth_is_flagged_with_its_scale(photon_pair):
    # Issue 28, finding 7: ADU against photons scored PSNR below 0 dB without a word.
    noisy, clean = photon_pair
    adu = ADU_PER_PHOTON * noisy + OFFSET_ADU
    # Act: the rule abbe evaluate and abbe verify share (normalize=None).
    with pytest.warns(AbbeWarning, match=r"about 1\.6 × the truth.*--no-normalize") as caught:
        auto = metrics.evaluate(adu, clean, normalize=None)
    # Assert: the slope fitted is the camera's 1.6 ADU per photon (to two digits, as printed),
    # and the scores are the normalized ones, named as such.
    assert len(caught) == 1
    assert auto == metrics.evaluate(adu, clean, normalize=True)
    assert auto.normalization == "percentile-affine" and auto.normalized
    # Raw scores when asked: still computed, but flagged with the way out.
    with pytest.warns(AbbeWarning, match="use --normalize"):
        raw = metrics.evaluate(adu, clean)
    assert raw.psnr < 0 and raw.normalization == "none"


def test_images_on_one_scale_are_compared_raw_without_a_warning(photon_pair):
    noisy, clean = photon_pair
    with warnings.catch_warnings():
        warnings.simplefilter("error", AbbeWarning)
        auto = metrics.evaluate(noisy, clean, normalize=None)
        # A blurred restoration loses contrast (slope about 0.7) but stays on the truth's scale.
        blurred = metrics.scale_mismatch(ndimage.gaussian_filter(noisy, 1.5), clean)
    assert auto == metrics.evaluate(noisy, clean) and auto.normalization == "none"
    assert blurred is None


def test_units_that_differ_in_the_metadata_are_flagged_even_on_one_scale(photon_pair):
    noisy, clean = photon_pair
    reason = metrics.scale_mismatch(noisy, clean, units="ADU", truth_units="photons")
    assert reason is not None and "in ADU and the truth in photons" in reason
    assert metrics.scale_mismatch(noisy, clean, units="photons", truth_units="Photons") is None
    with pytest.warns(AbbeWarning, match="in ADU and the truth in photons"):
        scores = metrics.evaluate(noisy, clean, normalize=None, units="ADU", truth_units="photons")
    assert scores.normalization == "percentile-affine"
