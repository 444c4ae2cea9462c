"""FRC matches its analytic expectation S/(S+N) and the optics' cutoff."""

from __future__ import annotations

import numpy as np
import pytest

from abbe import simulate
from abbe.metrics import resolution as R


def _expected_frc_resolution(clean: np.ndarray, pixel_size_nm: float) -> float:
    """Resolution where S/(S+N) crosses 1/7, from the clean image and Poisson variance = mean.

    S: ring energy of the windowed clean image; N: per-coefficient noise energy Σ w²·λ times the
    ring's pixel count (white noise), for one of the two independent images.
    """
    n = min(clean.shape)
    c = R._square(clean)
    w = R._window(n, "tukey")
    spectrum = np.abs(np.fft.fft2((c - c.mean()) * w)) ** 2
    ring = R._ring_index(n)
    keep = ring <= n // 2
    s = np.bincount(ring[keep], spectrum[keep], n // 2 + 1)
    count = np.bincount(ring[keep], minlength=n // 2 + 1)
    noise = count * np.sum(w**2 * c)
    expected = s / (s + noise)
    k = R._first_crossing(expected, np.full(expected.shape, 1 / 7))
    return n * pixel_size_nm / k


@pytest.mark.parametrize("photons", [30.0, 300.0])
def test_two_image_frc_is_within_3_percent_of_its_analytic_expectation(photons):
    # Arrange: two independent acquisitions of one field (Airy PSF, 100 nm pixels).
    a = simulate.widefield("filaments", size=512, photons=photons, background=5, seed=1)
    second = simulate.Camera.ideal().expose(a.clean, seed=99)
    # Act
    result = R.frc(a.input, second, pixel_size_nm=100)
    # Assert
    expected = _expected_frc_resolution(a.clean, 100)
    assert result.resolution_nm == pytest.approx(expected, rel=0.03)
    # The measured resolution cannot beat the optics: the cutoff period is 243 nm.
    assert result.resolution_nm >= 0.97 * a.params["cutoff_period_nm"]


@pytest.mark.parametrize("photons", [30.0, 300.0])
def test_single_image_frc_agrees_with_two_image_frc(photons):
    sim = simulate.widefield("filaments", size=512, photons=photons, background=5, seed=2)
    second = simulate.Camera.ideal().expose(sim.clean, seed=7)
    two = R.frc(sim.input, second, pixel_size_nm=100)
    one = R.frc_single(sim.input, pixel_size_nm=100, seed=3)
    assert one.resolution_nm == pytest.approx(two.resolution_nm, rel=0.05)


def test_frequency_axis_is_ring_index_over_field_size():
    rng = np.random.default_rng(0)
    res = R.frc(rng.random((128, 160)), rng.random((128, 160)), pixel_size_nm=50)
    assert res.frequency[10] == pytest.approx(10 / (128 * 50))
    assert res.frequency[-1] == pytest.approx(0.5 / 50)  # Nyquist


def test_identical_images_correlate_fully_and_noise_does_not():
    rng = np.random.default_rng(1)
    img = rng.random((64, 64))
    same = R.frc(img, img, pixel_size_nm=10)
    assert np.allclose(same.curve[1:], 1.0)
    assert np.isnan(same.resolution_nm)  # never crosses: finer than Nyquist shows
    noise = R.frc(
        rng.random((256, 256)), rng.random((256, 256)), pixel_size_nm=10, threshold="3sigma"
    )
    # Pure noise stays within three standard deviations (counting n/2 independent pixels).
    assert np.mean(np.abs(noise.curve[5:]) < noise.threshold[5:]) > 0.98


def test_thresholds_follow_their_definitions():
    n = np.array([100.0])
    assert R.threshold_curve("1/7", n)[0] == pytest.approx(1 / 7)
    assert R.threshold_curve("half-bit", n)[0] == pytest.approx(
        (0.2071 + 1.9102 / 10) / (1.2071 + 0.9102 / 10)
    )
    assert R.threshold_curve("3sigma", n)[0] == pytest.approx(3 / np.sqrt(50))


def test_time_series_frc_splits_odd_and_even_frames():
    sim = simulate.widefield("puncta", size=128, photons=100, seed=3)
    stack = np.stack([simulate.Camera.ideal().expose(sim.clean, seed=s) for s in range(4)])
    res = R.frc_time_series(stack, pixel_size_nm=100)
    assert np.isfinite(res.resolution_nm)
    with pytest.raises(Exception, match="2 frames"):
        R.frc_time_series(stack[:1], pixel_size_nm=100)
