"""``abbe demo`` runs end to end and its restoration beats the raw input."""

from __future__ import annotations

import json


def test_demo_writes_outputs_and_restoration_beats_the_input(cli, tmp_path):
    out = tmp_path / "demo"
    result = cli("demo", "-o", out)
    assert result.code == 0, result
    for name in ("input.tif", "clean.tif", "metrics.json", "comparison.png"):
        assert (out / name).exists()
    scores = json.loads((out / "metrics.json").read_text())["scores"]
    restored = [k for k in scores if k != "input"]
    assert restored
    for name in restored:
        assert scores[name]["psnr"] > scores["input"]["psnr"] + 5
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # A second run keeps the first run's outputs unless told to overwrite.
    again = cli("demo", "-o", out)
    assert again.code == 2 and "--overwrite" in again.err
