"""CONTRIBUTING.md's "adding a method" example is real: it trains, saves, loads through the
registry and predicts the same, tiled or not."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np

CONTRIBUTING = Path(__file__).resolve().parents[2] / "CONTRIBUTING.md"


def _example_module() -> types.ModuleType:
    blocks = re.findall(r"```python\n(.*?)```", CONTRIBUTING.read_text(), re.S)
    module = types.ModuleType("abbe_contributing_example")
    exec(compile(blocks[0], str(CONTRIBUTING), "exec"), module.__dict__)
    return module


def test_the_smallest_method_works_end_to_end(tmp_path, monkeypatch):
    from abbe import models
    from abbe.models import registry

    example = _example_module()
    monkeypatch.setitem(sys.modules, example.__name__, example)
    monkeypatch.setitem(registry.METHODS, "tiny", f"{example.__name__}:Tiny")

    rng = np.random.default_rng(0)
    clean = rng.random((4, 48, 48)).astype(np.float32)
    noisy = clean + rng.normal(0, 0.3, clean.shape).astype(np.float32)
    config = example.TinyConfig().updated(
        training={"patch_size": 32, "batch_size": 2, "steps_per_epoch": 3, "max_epochs": 1}
    )
    model = example.Tiny(config).fit(list(noisy), list(clean), work_dir=tmp_path / "work")
    model.save(tmp_path / "tiny")

    loaded = models.load(tmp_path / "tiny")
    assert type(loaded).__name__ == "Tiny" and loaded.config == model.config
    assert "tiny" in {r["method"] for r in models.available(tmp_path)}
    image = noisy[0]
    whole = loaded.predict(image, tile=None, device="cpu", threads=1)
    np.testing.assert_array_equal(whole, model.predict(image, tile=None))
    np.testing.assert_allclose(loaded.predict(image, tile=16), whole, atol=1e-5)
