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


def _errors_of_an_oblivious_network(rng, noise: float, n: int = 4096):
    """Errors and predicted Laplace scales of a network that is right on structure (a quarter
    of the pixels: errors of the scale it predicts) but, in flat background, predicts one tiny
    scale whatever the image's noise, while it errs by half of that noise (normalized units)."""
    b_structure = rng.uniform(0.02, 0.06, n // 4)
    scale = np.concatenate([np.full(n - n // 4, 0.002), b_structure])
    error = np.abs(
        np.concatenate([rng.laplace(0, 0.5 * noise, n - n // 4), rng.laplace(0, b_structure)])
    )
    return error, scale


def test_per_image_calibration_covers_each_image_where_one_floor_misses_the_dim_one(rng):
    from abbe.trust.uncertainty import calibrate_per_image, calibrate_scale_and_floor

    # Arrange: calibration images at two noise levels (bright: 0.02, dim: 0.07 of the range).
    noise = [0.02, 0.07] * 4
    cal = [_errors_of_an_oblivious_network(rng, s) for s in noise]
    errors, scales = [e for e, _ in cal], [b for _, b in cal]
    # Act: the per-image calibration, and one factor with one floor for all images.
    per_image = calibrate_per_image(errors, scales, noise, 0.9)
    a, c = calibrate_scale_and_floor(np.concatenate(errors), np.concatenate(scales), 0.9)
    # Assert, on held-out images brighter and dimmer than any calibration image: 4096 pixels
    # give a binomial SD of 0.005, so 0.85–0.95 leaves room for the fitted parameters' error.
    k = np.log(10)
    covered, one_floor = [], []
    for s in (0.015, 0.09):
        error, scale = _errors_of_an_oblivious_network(rng, s)
        covered.append(np.mean(error <= k * per_image.scale(scale, s)))
        one_floor.append(np.mean(error <= k * np.sqrt((a * scale) ** 2 + c**2)))
    assert all(0.85 <= v <= 0.95 for v in covered), covered
    assert min(one_floor) < 0.80  # the dim image: one floor is too tight for it
    assert min(covered) > min(one_floor) + 0.05
    # The floor found is the one the errors were drawn with (half the noise), within 20 %.
    assert per_image.noise_floor == pytest.approx(0.5, rel=0.2)


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

    # Arrange: filaments at 200 and 12 photons peak (even and odd seeds), background 3; train on
    # 8, calibrate on 4, hold out 4. A small model trained by a fixed 100 steps (~10 s).
    def peak(seed: int) -> float:
        return 12.0 if seed % 2 else 200.0

    sims = [
        simulate.widefield("filaments", size=64, photons=peak(s), background=3, seed=s)
        for s in range(16)
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
    model = CARE(cfg).fit(x[:8], y[:8], axes="SYX", validation=(x[8:12], y[8:12]))
    # The single factor and floor of before, fitted on the same calibration pairs.
    errors, scales = [], []
    for k in range(8, 12):
        mean, b = model.predict(x[k], uncertainty="scale", warn=False)
        lo, hi = percentile_range(x[k], 1.0, 99.8)
        errors.append(np.abs(y[k] - mean).ravel() / (hi - lo))
        scales.append(b.ravel() / (hi - lo))
    a, c = calibrate_scale_and_floor(np.concatenate(errors), np.concatenate(scales), 0.9)
    covered, one_floor = [], []
    for k in range(12, 16):
        mean, sd = model.predict(x[k], uncertainty=True, warn=False)
        b = model.predict(x[k], uncertainty="scale", warn=False)[1]
        lo, hi = percentile_range(x[k], 1.0, 99.8)
        covered.append(trust.empirical_coverage(y[k], mean, trust.laplace_half_width(sd / 2**0.5)))
        half = trust.laplace_half_width(np.hypot(a * b, c * (hi - lo)))
        one_floor.append(trust.empirical_coverage(y[k], mean, half))
    # Assert: every held-out image within issue 21's 80–97 % (4096 pixels each, but the pixels
    # of one image are correlated, so the band is wide), and the worst image better than with
    # one floor for all.
    assert model.config.uncertainty_noise_floor > 0
    assert all(0.80 <= v <= 0.97 for v in covered), covered
    assert min(covered) > min(one_floor), (covered, one_floor)
