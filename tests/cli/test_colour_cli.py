"""abbe simulate ssmlm → abbe localize --spectral [--model] [--render]; abbe unmix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abbe import io


@pytest.fixture(scope="module")
def ssmlm_dir(tmp_path_factory):
    from abbe.cli.main import main

    root = tmp_path_factory.mktemp("ssmlm")
    args = ["simulate", "ssmlm", "-o", str(root / "sim"), "--frames", "12", "--seed", "2", "-q"]
    assert main([*args, "--spectral-photons", "2000", "3000"]) == 0
    return root / "sim"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from abbe.localize.spectral_model import SpectralClassifier, config_for
    from abbe.simulate.spectral import default_setup

    cfg = config_for(
        default_setup(),
        network={"width": 4, "stages": 1},
        training={"batch_size": 8, "steps_per_epoch": 2, "max_epochs": 1, "validation_batches": 1},
        calibration_crops=100,
    )
    folder = tmp_path_factory.mktemp("model") / "spectral"
    SpectralClassifier(cfg).fit().save(folder)
    return folder


def test_localize_spectral_adds_the_colour_columns(cli, ssmlm_dir, tmp_path):
    res = cli(
        "localize",
        ssmlm_dir / "stack.tif",
        "-o",
        tmp_path / "locs.csv",
        "--spectral",
        ssmlm_dir / "dyes.yaml",
        "--render",
        tmp_path / "rgb.tif",
    )
    assert res.code == 0, res.err
    locs = pd.read_csv(tmp_path / "locs.csv")
    truth = pd.read_csv(ssmlm_dir / "truth.csv")
    assert {"dye", "centroid_nm", "centroid_crlb_nm"} <= set(locs.columns)
    assert len(locs) == len(truth)
    # Bright spectra (2000–3000 photons): the nearest-centroid dye is right for nearly all.
    locs = locs.sort_values(["frame", "x_nm"]).reset_index(drop=True)
    truth = truth.sort_values(["frame", "x_nm"]).reset_index(drop=True)
    assert np.mean(locs["dye"] == truth["dye"]) >= 0.9
    rgb, meta = io.read(tmp_path / "rgb.tif")
    assert meta.axes == "CYX" and rgb.shape[0] == 3 and 0 < rgb.max() <= 1


def test_localize_spectral_with_a_model_adds_probabilities(cli, ssmlm_dir, tiny_model, tmp_path):
    res = cli(
        "localize",
        ssmlm_dir / "stack.tif",
        "-o",
        tmp_path / "locs.csv",
        "--spectral",
        ssmlm_dir / "dyes.yaml",
        "--model",
        tiny_model,
    )
    assert res.code == 0, res.err
    locs = pd.read_csv(tmp_path / "locs.csv")
    probs = locs[["p_AF647", "p_CF660C", "p_CF680"]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-3)
    assert {"dye", "dye_centroid", "centroid_learned_nm"} <= set(locs.columns)


def test_unmix_refuses_a_matrix_of_the_wrong_shape_in_one_line(cli, tmp_path):
    io.write(tmp_path / "ch.tif", np.ones((3, 16, 16), np.float32), io.Meta("CYX"))
    (tmp_path / "m.csv").write_text("1,0.2\n0.2,1\n")
    res = cli(
        "unmix", tmp_path / "ch.tif", "--matrix", tmp_path / "m.csv", "-o", tmp_path / "u.tif"
    )
    assert res.code == 2
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and "m.csv" in lines[0] and "one row per channel" in lines[0]
    assert not (tmp_path / "u.tif").exists()


def test_unmix_with_the_known_and_an_estimated_matrix(cli, tmp_path):
    assert cli("simulate", "multicolour", "-o", tmp_path / "mc", "--size", "96", "-q").code == 0
    res = cli(
        "unmix",
        tmp_path / "mc" / "channels.tif",
        "--matrix",
        tmp_path / "mc" / "matrix.csv",
        "-o",
        tmp_path / "known.tif",
    )
    assert res.code == 0, res.err
    truth, _ = io.read(tmp_path / "mc" / "truth.tif")
    known, meta = io.read(tmp_path / "known.tif")
    assert meta.axes == "CYX" and known.shape == truth.shape
    res = cli("unmix", tmp_path / "mc" / "channels.tif", "--estimate", "-o", tmp_path / "est.tif")
    assert res.code == 0, res.err
    m = np.loadtxt(tmp_path / "est.matrix.csv", delimiter=",")
    true_m = np.loadtxt(tmp_path / "mc" / "matrix.csv", delimiter=",")
    assert np.abs(m - true_m).max() < 0.05


def test_localize_spectral_refuses_a_table_format_without_colour_columns(cli, ssmlm_dir, tmp_path):
    res = cli(
        "localize",
        ssmlm_dir / "stack.tif",
        "-o",
        tmp_path / "locs_ts.csv",
        "--spectral",
        ssmlm_dir / "dyes.yaml",
    )
    assert res.code == 2 and "only abbe's CSV" in res.err and len(res.err.splitlines()) == 1


def test_a_model_for_other_dyes_is_refused_in_one_line(cli, ssmlm_dir, tiny_model, tmp_path):
    other = tmp_path / "dyes.yaml"
    text = (ssmlm_dir / "dyes.yaml").read_text().replace("- CF680", "- DY634")
    other.write_text(text)
    res = cli(
        "localize",
        ssmlm_dir / "stack.tif",
        "-o",
        tmp_path / "locs.csv",
        "--spectral",
        other,
        "--model",
        tiny_model,
    )
    assert res.code == 2 and "trained for dyes AF647, CF660C, CF680" in res.err
    assert len(res.err.splitlines()) == 1 and str(other) in res.err
