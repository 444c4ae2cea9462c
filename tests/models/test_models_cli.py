"""``abbe models`` lists models of every method, bundled or in a folder."""

from __future__ import annotations

import json
from pathlib import Path

LEGACY = Path(__file__).with_name("legacy")


def test_models_lists_every_bundled_model_with_its_method(cli):
    result = cli("models", "--json")
    assert result.code == 0
    rows = {r["name"]: r["method"] for r in json.loads(result.out)}
    assert rows == {
        "denoise-widefield": "care",
        "nuclei-fluo": "segment",
        "nuclei-shape": "classify",
        "sr-widefield-2x": "superres",
    }


def test_models_lists_smlm_model_folders_and_says_how_to_use_them(cli):
    result = cli("models", LEGACY)
    assert result.code == 0, result
    assert "DEEPSTORM" in result.out and "LOCALIZER" in result.out
    assert "abbe localize STACK --method" in result.out
    one = json.loads(cli("models", LEGACY / "deepstorm", "--json").out)
    assert [r["method"] for r in one] == ["deepstorm"]


def test_models_of_a_missing_folder_is_one_line(cli, tmp_path):
    result = cli("models", tmp_path / "nope")
    assert result.code == 2 and "is not a folder" in result.err


def test_models_of_a_folder_skips_folders_that_are_not_abbe_models(cli, tmp_path):
    import shutil

    shutil.copytree(LEGACY / "localizer", tmp_path / "mine")
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text('{"model_type": "bert"}')  # another tool's
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.yaml").write_text("training: {seed: 1}\n")  # a training YAML
    result = cli("models", tmp_path, "--json")
    assert result.code == 0, result
    assert [r["name"] for r in json.loads(result.out)] == ["mine"]
