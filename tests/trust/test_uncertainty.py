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
