"""The model contract, checked for every method in the registry.

For each method: a few training steps, save, load (by ``abbe.models.load``, which must pick the
right class from the folder), the same prediction before and after; unknown or invalid settings
rejected in one line naming the file; an interrupted training resumed from its checkpoint. A
method added to the registry without an entry here fails ``test_every_method_is_covered``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from abbe import models
from abbe.errors import ConfigError, ModelError
from abbe.models.registry import METHODS, model_class

TINY_UNET = {"width": 4, "depth": 2}
# Two epochs of two steps; the first run stops after one epoch (an interruption), the resumed
# run finishes the second.
TRAINING = {"patch_size": 32, "batch_size": 2, "steps_per_epoch": 2, "validation_batches": 1}


def _images(n: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    clean = np.zeros((n, size, size), np.float32)
    for k in range(n):
        for _ in range(4):
            y, x = rng.integers(4, size - 4, 2)
            clean[k, y - 2 : y + 3, x - 2 : x + 3] += rng.uniform(20, 60)
    return clean + rng.poisson(5.0, clean.shape).astype(np.float32)


@dataclass
class Case:
    config: dict[str, Any]
    fit: Callable[[Any, Path, bool], Any]
    predict: Callable[[Any], Any]


def _restoration_fit(model: Any, work: Path, resume: bool) -> Any:
    x = _images(3, 48, 1)
    if model.method == "n2v":
        return model.fit(x, axes="SYX", work_dir=work, resume=resume)
    y = x if model.method == "care" else np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)
    return model.fit(x, y, axes="SYX", work_dir=work, resume=resume)


def _smlm_stack() -> np.ndarray:
    from abbe.simulate.smlm import smlm

    return smlm(frames=2, size=32, density=1.0, camera="ideal", seed=5).stack


def _spectral_crops() -> tuple[np.ndarray, np.ndarray]:
    from abbe.simulate.spectral import default_setup, simulate_crops

    sim = simulate_crops(default_setup(), 4, seed=2)
    return sim.crops, sim.frac


def _crops() -> tuple[list[np.ndarray], list[str]]:
    from abbe.classify.model import ClassifierConfig, simulated_crops

    crops, names, _ = simulated_crops(ClassifierConfig(crop_size=32), 4, seed=2)
    return crops, names


CASES: dict[str, Case] = {
    "care": Case(
        {"network": TINY_UNET},
        _restoration_fit,
        lambda m: m.predict(_images(1, 40, 9)[0], axes="YX", warn=False),
    ),
    "n2v": Case(
        {"method": "n2v", "network": {**TINY_UNET, "n2v2": True, "residual": False}},
        _restoration_fit,
        lambda m: m.predict(_images(1, 40, 9)[0], axes="YX", warn=False),
    ),
    "superres": Case(
        {"network": {"arch": "resunet", "width": 4, "depth": 2, "scale": 2}},
        _restoration_fit,
        lambda m: m.predict(_images(1, 32, 9)[0], axes="YX", warn=False),
    ),
    "segment": Case(
        {"network": {**TINY_UNET, "out_channels": 2}, "typical_radius_px": 8.0},
        lambda m, work, resume: m.fit(work_dir=work, resume=resume),
        lambda m: m.predict(_images(1, 64, 9)[0], scale=1.0),
    ),
    "classify": Case(
        {"crop_size": 32, "network": {"n_classes": 3, "width": 4}},
        lambda m, work, resume: m.fit(*_crops(), work_dir=work, resume=resume),
        lambda m: m.predict_proba(_crops()[0][:3]),
    ),
    "localizer": Case(
        {"network": {**TINY_UNET, "out_channels": 6}},
        lambda m, work, resume: m.fit(work_dir=work, resume=resume),
        lambda m: m.predict_maps(_smlm_stack()),
    ),
    "deepstorm": Case(
        {"network": {**TINY_UNET, "out_channels": 1}, "upsampling": 2},
        lambda m, work, resume: m.fit(work_dir=work, resume=resume),
        lambda m: m.predict_maps(_smlm_stack()),
    ),
    "spectral": Case(
        {"network": {"width": 4, "stages": 2}, "calibration_crops": 100},
        lambda m, work, resume: m.fit(work_dir=work, resume=resume),
        lambda m: m.logits(*_spectral_crops()),
    ),
}


def _config(method: str, epochs: int) -> Any:
    cls = model_class(method)
    changes = dict(CASES[method].config)
    changes["training"] = {**TRAINING, "max_epochs": epochs, "max_time_s": None}
    return cls.default_config().updated(**changes)


def test_every_method_is_covered():
    assert set(CASES) == set(METHODS)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, tuple[Any, Path, Any]]:
    """Each method trained for one epoch, then resumed for a second; saved and predicted."""
    out = {}
    for method, case in CASES.items():
        work = tmp_path_factory.mktemp(method)
        cls = model_class(method)
        first = cls(_config(method, 1))
        case.fit(first, work, False)
        model = cls(_config(method, 2))
        case.fit(model, work, True)
        model.save(work / "model")
        out[method] = (model, work, case.predict(model))
    return out


@pytest.mark.parametrize("method", sorted(CASES))
def test_resume_continues_the_interrupted_run(method, trained):
    model, _, _ = trained[method]
    epochs = [int(float(r["epoch"])) for r in model.history]
    assert epochs == [0, 1]  # the first run's epoch kept, the second added
    assert model.config.method == method


@pytest.mark.parametrize("method", sorted(CASES))
def test_saved_model_loads_as_its_class_and_predicts_the_same(method, trained):
    model, work, before = trained[method]
    loaded = models.load(work / "model")
    assert type(loaded) is type(model)
    assert loaded.config == model.config
    after = CASES[method].predict(loaded)
    if isinstance(before, tuple):
        before, after = before[0], after[0]
    np.testing.assert_array_equal(np.asarray(after), np.asarray(before))


@pytest.mark.parametrize("method", sorted(CASES))
def test_unknown_settings_are_refused_in_one_line_naming_the_file(method, trained, tmp_path):
    import shutil

    _, work, _ = trained[method]
    folder = tmp_path / "edited"
    shutil.copytree(work / "model", folder)
    data = yaml.safe_load((folder / "config.yaml").read_text())
    data["learning_rat"] = 0.1  # a typo
    (folder / "config.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        models.load(folder)
    message = str(info.value)
    assert "\n" not in message and "config.yaml" in message and "learning_rat" in message


@pytest.mark.parametrize("method", sorted(CASES))
def test_changing_a_setting_validates_it(method):
    config = model_class(method).default_config()
    assert config.updated(name="x").name == "x"
    assert config.updated(training={"seed": 7}).training.seed == 7
    assert config.updated(training={"seed": 7}).training.batch_size == config.training.batch_size
    with pytest.raises(ConfigError, match="learning_rate"):
        config.updated(training={"learning_rate": -1.0})
    with pytest.raises(ConfigError, match="no_such_setting"):
        config.updated(no_such_setting=1)


@pytest.mark.parametrize("method", ["localizer", "deepstorm"])
def test_folders_of_the_previous_format_still_load(method):
    """Folders written by the code before the model contract (config.json with ``kind``),
    committed as fixtures, load through the registry and predict what they did then."""
    legacy = Path(__file__).with_name("legacy")
    model = models.load(legacy / method)
    assert model.method == method
    with np.load(legacy / "expected_maps.npz") as expected:
        maps = model.predict_maps(expected["frame"])
        np.testing.assert_allclose(maps, expected[method], rtol=1e-5, atol=1e-5)


def test_an_interrupted_training_folder_says_how_to_resume(tmp_path):
    from abbe.errors import ModelError

    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(ModelError, match="--resume"):
        models.load(tmp_path)


def test_every_method_exports_to_torchscript(tmp_path):
    import torch

    for method in sorted(CASES):
        model = model_class(method)(_config(method, 1))
        path = model.export(tmp_path / f"{method}.pt", format="torchscript")
        x = torch.from_numpy(model.example_input(32))
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates jit
            want = model.network.eval()(x)
            got = torch.jit.load(str(path))(x)
        torch.testing.assert_close(got, want)


def test_the_library_changes_settings_only_through_validation():
    """``model_copy(update=…)`` skips validation (a negative learning rate or an unknown key
    would pass); abbe's code changes settings with ``updated()``/``revalidated()``."""
    import abbe

    package = Path(abbe.__file__).parent
    offenders = [
        f"{p.relative_to(package)}:{i}"
        for p in package.rglob("*.py")
        if p.name != "base.py"
        for i, line in enumerate(p.read_text().splitlines(), start=1)
        if ".model_copy(" in line
    ]
    assert offenders == []


def test_any_restoration_class_loads_the_restoration_method_its_folder_holds(trained):
    from abbe.restore import CARE, N2V

    _, work, _ = trained["n2v"]
    assert type(CARE.load(work / "model")) is N2V  # as before the contract
    _, work, _ = trained["segment"]
    with pytest.raises(ModelError, match="not a restoration model"):
        CARE.load(work / "model")
