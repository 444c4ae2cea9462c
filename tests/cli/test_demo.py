"""``abbe demo`` and ``abbe models``: the bundled model restores the bundled sample."""

from __future__ import annotations

import json


def test_demo_restores_the_bundled_sample_better_than_nlm(cli, tmp_path):
    out = tmp_path / "demo"
    result = cli("demo", "-o", out)
    assert result.code == 0, result
    for name in ("input.tif", "restored.tif", "truth.tif", "metrics.json", "comparison.png"):
        assert (out / name).exists()
    scores = json.loads((out / "metrics.json").read_text())["scores"]
    care = scores["abbe denoise-widefield"]["psnr"]
    assert care > scores["input"]["psnr"] + 8
    assert care > scores["non-local means"]["psnr"] + 1
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # A second run keeps the first run's outputs unless told to overwrite.
    again = cli("demo", "-o", out)
    assert again.code == 2 and "--overwrite" in again.err


def test_models_lists_the_bundled_model_with_its_data_and_scores(cli):
    result = cli("models", "--json")
    assert result.code == 0, result
    rows = {r["name"]: r for r in json.loads(result.out)}
    model = rows["denoise-widefield"]
    assert model["method"] == "care" and model["axes"] == "YX"
    assert "simulated" in model["training_data"]["summary"]
    assert model["metrics"]["validation"]["rows"]["filaments"]
    assert model["size_kb"] < 5 * 1024
    table = cli("models")
    assert "denoise-widefield" in table.out
