"""Issue 21 item 4: dense SMLM from the camera alone. ``abbe calibrate`` then ``abbe localize
--method deepstorm --camera cam.json`` reads density, photons and background off the stack,
says what it read, and trains a model matched to it (by steps)."""

from __future__ import annotations

import json
import re

import pytest

from abbe.models.folder import read_yaml

AREA_UM2 = 6.4 * 6.4


@pytest.fixture(scope="module")
def dense_dir(tmp_path_factory):
    """60 frames of blinking filaments, 5 emitters/µm², EMCCD (EM gain 100, baseline 100)."""
    from abbe.cli.main import main

    root = tmp_path_factory.mktemp("dense")
    code = main(["simulate", "smlm", "-o", str(root / "sim"), "--frames", "60", "--density",
                 "5", "--structure", "filaments", "--camera", "emccd", "--photons", "1000",
                 "2000", "--background", "20", "20", "--seed", "5", "-q"])  # fmt: skip
    assert code == 0
    return root / "sim"


@pytest.fixture
def no_training(monkeypatch):
    """Training replaced by a stand-in: what the verb reads off the stack, says and writes is
    under test here (a trained Deep-STORM is tested in tests/localize/test_deepstorm.py)."""
    from abbe.localize.deepstorm import DeepStorm

    def fit(self, **_):
        self.metrics.update({"steps": 0, "training_seconds": 0.0, "val_loss": 0.0})
        return self

    monkeypatch.setattr(DeepStorm, "fit", fit)


def _truth_density(folder) -> float:
    rows = (folder / "truth.csv").read_text().splitlines()[1:]
    return len(rows) / (60 * AREA_UM2)


def test_localize_deepstorm_with_only_the_camera_reads_the_density(
    cli, dense_dir, tmp_path, no_training
):
    truth = _truth_density(dense_dir)
    r = cli("calibrate", dense_dir / "stack.tif", "--offset", "100", "--em-gain", "100",
            "-o", tmp_path / "cam.json", "-q")  # fmt: skip
    assert r.code == 0, r
    r = cli("localize", dense_dir / "stack.tif", "--method", "deepstorm",
            "--camera", tmp_path / "cam.json", "-o", tmp_path / "locs.csv")  # fmt: skip
    assert r.code == 0, r
    said = re.search(r"stack: ([\d.]+) emitters/µm² per frame \(read off its fluctuations\)", r.out)
    assert said, r.out
    # The estimator is within ±15 % on filaments (tests/localize/test_fluctuation.py); the
    # camera here comes from abbe calibrate's photon transfer, so 20 %.
    assert float(said.group(1)) == pytest.approx(truth, rel=0.20)
    assert "training Deep-STORM for 1500 steps (seed 0)" in r.out
    config = read_yaml(tmp_path / "locs_deepstorm" / "config.yaml")
    read = float(said.group(1))
    # Trained from a fifth to twice the density read, by steps and without a time limit.
    assert config["density"] == pytest.approx([0.2 * read, 2 * read], rel=0.02)
    assert config["training"]["max_time_s"] is None
    assert config["training"]["max_epochs"] * config["training"]["steps_per_epoch"] == 1500
    metrics = json.loads((tmp_path / "locs_deepstorm" / "metrics.json").read_text())
    assert metrics["stack_conditions"]["density_source"] == "fluctuations"
    # The photons read (mean of the ×0.5–×1.5 range) are the simulated 1500 within 20 %.
    assert sum(config["photons"]) / 2 == pytest.approx(1500, rel=0.20)
    # Localize, measure, compare: the untrained stand-in finds far fewer emitters than the
    # stack holds, and the output says so.
    assert "the model found" in r.err and "the stack's fluctuations say" in r.err


def test_stack_density_still_overrides_what_is_read(cli, dense_dir, tmp_path, no_training):
    r = cli("localize", dense_dir / "stack.tif", "--method", "deepstorm", "--camera",
            dense_dir / "camera.json", "--stack-density", "3", "--train-steps", "100",
            "-o", tmp_path / "locs.csv")  # fmt: skip
    assert r.code == 0, r
    assert "stack: 3.0 emitters/µm² per frame (given)" in r.out
    config = read_yaml(tmp_path / "locs_deepstorm" / "config.yaml")
    assert config["density"] == pytest.approx([0.6, 6.0])
    assert config["training"]["max_epochs"] * config["training"]["steps_per_epoch"] == 100


def test_train_deepstorm_from_a_dense_stack_reads_its_density(
    cli, dense_dir, tmp_path, no_training
):
    truth = _truth_density(dense_dir)
    r = cli("train", "deepstorm", "--stack", dense_dir / "stack.tif", "--camera",
            dense_dir / "camera.json", "-o", tmp_path / "m")  # fmt: skip
    assert r.code == 0, r
    said = re.search(r"([\d.]+) emitters/µm² per frame \(read off its fluctuations\)", r.out)
    assert said and float(said.group(1)) == pytest.approx(truth, rel=0.20), r.out
    config = read_yaml(tmp_path / "m" / "config.yaml")
    read = float(said.group(1))
    assert config["density"] == pytest.approx([0.2 * read, 2 * read], rel=0.05)
    assert config["training"]["max_epochs"] * config["training"]["steps_per_epoch"] == 3000
