"""A training run killed mid-way resumes from its last checkpoint and ends exactly where an
uninterrupted run ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from abbe import io

CONFIG = {
    "network": {"width": 16},
    "training": {
        "patch_size": 48,
        "batch_size": 8,
        "steps_per_epoch": 40,
        "max_epochs": 6,
        "threads": 1,
        "warmup_steps": 5,
    },
}


def _abbe(*args: str | Path) -> list[str]:
    return [str(Path(sys.executable).with_name("abbe")), *map(str, args)]


@pytest.mark.slow
def test_killed_training_resumes_and_matches_an_uninterrupted_run(tmp_path, filament_pairs):
    noisy, clean = filament_pairs
    for name, stack in (("in", noisy), ("gt", clean)):
        (tmp_path / name).mkdir()
        for i, img in enumerate(stack):
            io.write(tmp_path / name / f"{i}.tif", img)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    common = ("-i", tmp_path / "in", "-t", tmp_path / "gt", "--config", cfg, "-q")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    # Uninterrupted reference.
    subprocess.run(_abbe("train", "care", *common, "-o", tmp_path / "ref"), check=True, env=env)

    # Same run, killed (SIGKILL: no chance to clean up) after two epochs were checkpointed.
    proc = subprocess.Popen(_abbe("train", "care", *common, "-o", tmp_path / "run"), env=env)
    history = tmp_path / "run" / "history.csv"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if history.exists() and history.read_text().count("\n") >= 3:  # header + 2 epochs
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "run" / "weights.safetensors").exists()

    # Without --resume the folder is protected; with it, training finishes.
    refused = subprocess.run(
        _abbe("train", "care", *common, "-o", tmp_path / "run"),
        env=env,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and "--resume" in refused.stderr
    subprocess.run(
        _abbe("train", "care", *common, "-o", tmp_path / "run", "--resume"), check=True, env=env
    )

    from safetensors.numpy import load_file

    ref = load_file(tmp_path / "ref" / "weights.safetensors")
    run = load_file(tmp_path / "run" / "weights.safetensors")
    for key in ref:
        np.testing.assert_allclose(run[key], ref[key], rtol=1e-5, atol=1e-6)
    rows = (tmp_path / "run" / "history.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + CONFIG["training"]["max_epochs"]
