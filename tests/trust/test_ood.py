"""Out-of-distribution warnings: measured properties and plain-words messages."""

from __future__ import annotations

import numpy as np
import pytest

from abbe import simulate
from abbe.trust import ood


def test_noise_sd_recovers_white_noise_on_a_smooth_image(rng):
    smooth = np.add.outer(np.linspace(0, 50, 256), np.linspace(0, 30, 256))
    noisy = smooth + rng.normal(0, 3.0, smooth.shape)
    assert ood.noise_sd(noisy) == pytest.approx(3.0, rel=0.05)


def test_dimmer_images_measure_a_lower_snr():
    bright = simulate.widefield("filaments", size=256, photons=200, background=5, seed=1)
    dim = simulate.widefield("filaments", size=256, photons=10, background=5, seed=1)
    assert ood.measure(dim.input).snr < ood.measure(bright.input).snr / 2
    res = ood.measure(bright.input).resolution_px
    assert 2.0 < res < 4.0  # cutoff period 243 nm at 100 nm pixels


def test_check_speaks_in_words_only_outside_the_training_range():
    train = [
        simulate.widefield("filaments", size=128, photons=p, background=5, seed=p).input
        for p in (50, 80, 120)
    ]
    ranges = ood.training_ranges(train)
    similar = simulate.widefield("filaments", size=128, photons=90, background=5, seed=9)
    assert ood.check(ood.measure(similar.input), ranges) == []
    noisy = simulate.widefield("filaments", size=128, photons=3, background=20, seed=9)
    messages = ood.check(ood.measure(noisy.input), ranges)
    assert messages and "noisier than the model's training data" in messages[0]


def test_model_prediction_warns_for_unusual_input(rng):
    from abbe.restore import CARE

    model = CARE()
    model.config = model.config.model_copy(
        update={
            "training_data": {"stats": {"snr": {"min": 50.0, "max": 80.0, "p5": 50.0, "p95": 80.0}}}
        }
    )
    noisy = rng.normal(10, 3, (96, 96)).astype(np.float32)
    with pytest.warns(ood.OutOfDistributionWarning, match="noisier"):
        model.predict(noisy)
