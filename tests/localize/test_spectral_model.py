"""The learned spectral head: a tiny training run, calibration, reject, save and load."""

from __future__ import annotations

import numpy as np
import pytest

from abbe import models
from abbe.localize.spectral_model import SpectralClassifier, config_for
from abbe.simulate.spectral import default_setup, simulate_crops

TINY = {
    "network": {"width": 4, "stages": 2},
    "training": {"batch_size": 16, "steps_per_epoch": 3, "max_epochs": 1, "validation_batches": 1},
    "calibration_crops": 200,
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model = SpectralClassifier(config_for(default_setup(), **TINY)).fit()
    folder = model.save(tmp_path_factory.mktemp("spectral") / "model")
    return model, folder


def test_tiny_training_runs_calibrates_and_saves_safetensors(tiny):
    model, folder = tiny
    assert (folder / "weights.safetensors").is_file()
    assert model.metrics["steps"] == 3
    cal = model.metrics["calibration"]
    assert cal["n"] == 200 and model.config.temperature == pytest.approx(
        cal["temperature"], abs=1e-4
    )


def test_saved_model_loads_and_predicts_the_same(tiny):
    model, folder = tiny
    sim = simulate_crops(default_setup(), 12, seed=8)
    loaded = models.load(folder)
    assert isinstance(loaded, SpectralClassifier) and loaded.config == model.config
    a = model.predict(sim.crops, sim.frac, threads=1)
    b = loaded.predict(sim.crops, sim.frac, threads=1)
    np.testing.assert_allclose(a["probabilities"], b["probabilities"], atol=1e-6)
    np.testing.assert_allclose(a["probabilities"].sum(1), 1.0, atol=1e-6)
    assert a["centroid_nm"].shape == (12,)


def test_reject_option_leaves_uncertain_localizations_unassigned(tiny):
    model, _ = tiny
    sim = simulate_crops(default_setup(), 20, seed=9)
    strict = SpectralClassifier(model.config.updated(reject_below=1.0), model.network)
    assert set(strict.predict(sim.crops, sim.frac)["dye"]) == {"unassigned"}
    loose = SpectralClassifier(model.config.updated(reject_below=0.0), model.network)
    assert "unassigned" not in set(loose.predict(sim.crops, sim.frac)["dye"])


def test_temperature_scaling_lowers_the_calibration_error_of_an_overconfident_model(tiny):
    # Logits multiplied by 20 are overconfident; the fitted temperature brings ECE back down.
    model, _ = tiny
    hot = SpectralClassifier(model.config.updated(temperature=1.0), model.network)
    with __import__("torch").no_grad():
        hot.network.head.weight.mul_(20.0)
        hot.network.head.bias.mul_(20.0)
    try:
        hot.calibrate(400, seed=3)
        cal = hot.metrics["calibration"]
        assert cal["ece_after"] < cal["ece_before"]
        assert hot.config.temperature > 1.0
    finally:
        with __import__("torch").no_grad():
            hot.network.head.weight.div_(20.0)
            hot.network.head.bias.div_(20.0)
