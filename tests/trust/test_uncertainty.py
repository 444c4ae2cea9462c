"""Uncertainty: calibrated Laplace intervals cover the truth as often as they claim."""

from __future__ import annotations

import numpy as np
import pytest

from abbe import simulate, trust
from abbe.errors import ModelError


def test_calibration_factor_corrects_over_confident_scales(rng):
    truth = rng.laplace(0, 2.0, 100_000)  # true scale 2, the model claims 1
    mean, claimed = np.zeros_like(truth), np.ones_like(truth)
    half = trust.laplace_half_width(claimed)
    assert trust.empirical_coverage(truth, mean, half) < 0.75
    c = trust.calibration_factor(truth, mean, claimed, 0.9)
    assert c == pytest.approx(2.0, rel=0.03)
    fixed = trust.laplace_half_width(c * claimed)
    assert trust.empirical_coverage(truth, mean, fixed) == pytest.approx(0.9, abs=0.005)


@pytest.mark.slow
def test_probabilistic_care_90_percent_interval_covers_85_to_95_percent_of_held_out_pixels():
    from abbe.nn import UNetConfig
    from abbe.restore import CARE, RestorationConfig
    from abbe.train import TrainingConfig

    sims = [
        simulate.widefield("filaments", size=96, photons=40, background=3, seed=s)
        for s in range(12)
    ]
    x = np.stack([s.input for s in sims])
    y = np.stack([s.clean for s in sims])
    cfg = RestorationConfig(
        network=UNetConfig(width=8, depth=3, probabilistic=True),
        training=TrainingConfig(
            loss="laplace",
            patch_size=48,
            batch_size=8,
            steps_per_epoch=50,
            max_epochs=6,
            learning_rate=2e-3,
        ),
    )
    model = CARE(cfg).fit(x[:8], y[:8], axes="SYX", validation=(x[8:10], y[8:10]))
    assert model.config.uncertainty_scale > 0
    covered = []
    for k in (10, 11):  # images used neither for training nor for calibration
        mean, sd = model.predict(x[k], uncertainty=True)
        half = trust.laplace_half_width(sd / np.sqrt(2.0), 0.9)
        covered.append(trust.empirical_coverage(y[k], mean, half))
    assert 0.85 <= float(np.mean(covered)) <= 0.95


def test_a_model_without_an_uncertainty_head_says_how_to_get_one():
    from abbe.restore import CARE

    with pytest.raises(ModelError, match="probabilistic"):
        CARE().predict(np.ones((32, 32), np.float32), uncertainty=True)


def test_ensembles_need_two_models():
    from abbe.errors import InputError

    with pytest.raises(InputError, match="two models"):
        trust.ensemble_predict([object()], np.ones((8, 8)))


def _errors_of_an_oblivious_network(rng, noise: float, usual: float = 0.05, n: int = 4096):
    """Errors and predicted Laplace scales b of a network whose b is right on images of the
    usual noise level but unchanged on others, where its errors grow as r^1.5 with
    r = max(noise/usual, usual/noise) (all in normalized units)."""
    scale = rng.uniform(0.005, 0.05, n)
    r = max(noise / usual, usual / noise)
    return np.abs(rng.laplace(0.0, scale * r**1.5)), scale


def test_per_image_calibration_covers_each_image_where_one_factor_misses_the_unusual(rng):
    from abbe.trust.uncertainty import calibrate_per_image, calibrate_scale_and_floor

    # Arrange: 16 calibration images whose noise varies around the usual 0.05 (0.035–0.07).
    noise = list(np.geomspace(0.035, 0.07, 16))
    cal = [_errors_of_an_oblivious_network(rng, s) for s in noise]
    errors, scales = [e for e, _ in cal], [b for _, b in cal]
    # Act: the per-image calibration, and one factor with one floor for all images.
    per_image = calibrate_per_image(errors, scales, noise, 0.9)
    a, c = calibrate_scale_and_floor(np.concatenate(errors), np.concatenate(scales), 0.9)
    # Assert, on held-out images cleaner and noisier than any calibration image: 4096 pixels
    # give a binomial SD of 0.005, so 0.85–0.95 leaves room for the fitted parameters' error.
    k = np.log(10)
    covered, one_factor = [], []
    for s in (0.03, 0.085, 0.05):
        error, scale = _errors_of_an_oblivious_network(rng, s)
        covered.append(np.mean(error <= k * per_image.scale(scale, s)))
        one_factor.append(np.mean(error <= k * np.sqrt((a * scale) ** 2 + c**2)))
    assert all(0.85 <= v <= 0.95 for v in covered), covered
    assert min(one_factor) < 0.80  # the noisy image: one factor is too small for it
    assert min(covered) > min(one_factor) + 0.05
    # The law found is the one the errors were drawn with: exponents 1.5 about σ₀ ≈ 0.05.
    assert per_image.noisier == pytest.approx(1.5, abs=0.3)
    assert per_image.cleaner == pytest.approx(1.5, abs=0.3)
    assert per_image.noise_reference == pytest.approx(0.05, rel=0.05)


def test_normalized_noise_reads_the_noise_of_the_image_in_its_range(rng):
    from abbe.trust.uncertainty import normalized_noise

    # Gaussian noise of SD 2 on a flat field; range given as 0–40: σ/(high − low) = 0.05.
    image = 10 + rng.normal(0, 2.0, (256, 256))
    assert normalized_noise(image, 0.0, 40.0) == pytest.approx(0.05, rel=0.05)


def test_a_probabilistic_care_model_is_calibrated_in_each_image_at_12_and_200_photons():
    from abbe.data.normalize import percentile_range
    from abbe.nn import UNetConfig
    from abbe.restore import CARE, RestorationConfig
    from abbe.train import TrainingConfig
    from abbe.trust.uncertainty import calibrate_scale_and_floor

    # Arrange: filaments from 12 to 200 photons peak, background 3; train on 8 and calibrate on
    # 8 images spanning that range, hold out 4 at its two ends. A small model trained by a
    # fixed 100 steps (~10 s).
    peaks = [*np.geomspace(12, 200, 8), *np.geomspace(12, 200, 8)[::-1], 12, 200, 12, 200]
    sims = [
        simulate.widefield("filaments", size=64, photons=float(p), background=3, seed=s)
        for s, p in enumerate(peaks)
    ]
    x, y = np.stack([s.input for s in sims]), np.stack([s.clean for s in sims])
    cfg = RestorationConfig(
        network=UNetConfig(width=8, depth=2, probabilistic=True),
        training=TrainingConfig(
            loss="laplace",
            patch_size=32,
            batch_size=8,
            steps_per_epoch=25,
            max_epochs=4,
            learning_rate=2e-3,
            threads=1,
        ),
    )
    # Act: fit calibrates per image on the validation pairs.
    model = CARE(cfg).fit(x[:8], y[:8], axes="SYX", validation=(x[8:16], y[8:16]))
    # The single factor and floor of before, fitted on the same calibration pairs.
    errors, scales = [], []
    for k in range(8, 16):
        mean, b = model.predict(x[k], uncertainty="scale", warn=False)
        lo, hi = percentile_range(x[k], 1.0, 99.8)
        errors.append(np.abs(y[k] - mean).ravel() / (hi - lo))
        scales.append(b.ravel() / (hi - lo))
    a, c = calibrate_scale_and_floor(np.concatenate(errors), np.concatenate(scales), 0.9)
    covered, one_floor = [], []
    for k in range(16, 20):
        mean, sd = model.predict(x[k], uncertainty=True, warn=False)
        b = model.predict(x[k], uncertainty="scale", warn=False)[1]
        lo, hi = percentile_range(x[k], 1.0, 99.8)
        covered.append(trust.empirical_coverage(y[k], mean, trust.laplace_half_width(sd / 2**0.5)))
        half = trust.laplace_half_width(np.hypot(a * b, c * (hi - lo)))
        one_floor.append(trust.empirical_coverage(y[k], mean, half))
    # Assert: every held-out image within issue 21's 80–97 % (4096 pixels each, but the pixels
    # of one image are correlated, so the band is wide), and the worst image better than with
    # one floor for all.
    assert model.config.uncertainty_noisier > 0  # the dim images need wider intervals
    assert all(0.80 <= v <= 0.97 for v in covered), covered
    assert min(covered) > min(one_floor), (covered, one_floor)
