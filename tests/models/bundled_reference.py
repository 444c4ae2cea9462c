"""Fixed inputs and predictions of every bundled model, kept in ``bundled_reference.npz``.

Run as a script to rewrite the reference (only when a bundled model is retrained on purpose):
``.venv/bin/python tests/models/bundled_reference.py``. The inputs are stored too, so the
reference does not depend on the simulator staying byte-identical.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

REFERENCE = Path(__file__).with_name("bundled_reference.npz")


def make_inputs() -> dict[str, np.ndarray]:
    """Small, fixed inputs: widefield filaments and nuclei simulated with fixed seeds."""
    from abbe import simulate
    from abbe.classify.model import ClassifierConfig, simulated_crops
    from abbe.simulate.cells import NucleiImageConfig, nuclei_image

    wide = simulate.widefield("filaments", size=96, photons=30, background=2, seed=7).input
    nuclei = nuclei_image((192, 192), NucleiImageConfig(), seed=8).image
    crops, _, _ = simulated_crops(ClassifierConfig(), 4, seed=9)
    return {
        "widefield": np.asarray(wide, np.float32),
        "nuclei": np.asarray(nuclei, np.float32),
        "crops": np.stack([np.asarray(c, np.float32) for c in crops]),
    }


def predictions(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each bundled model's prediction on the fixed inputs (one thread: a fixed summation
    order)."""
    import torch

    from abbe import models

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = {
            "denoise-widefield": models.load("denoise-widefield").predict(
                inputs["widefield"], axes="YX", warn=False
            ),
            "sr-widefield-2x": models.load("sr-widefield-2x").predict(
                inputs["widefield"][:64, :64], axes="YX", warn=False
            ),
            "nuclei-fluo": models.load("nuclei-fluo").predict(inputs["nuclei"]),
            "nuclei-shape": models.load("nuclei-shape").predict_proba(list(inputs["crops"])),
        }
    finally:
        torch.set_num_threads(threads)
    return {k: np.asarray(v) for k, v in out.items()}


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


if __name__ == "__main__":
    inputs = make_inputs()
    preds = predictions(inputs)
    np.savez_compressed(
        REFERENCE,
        **{f"input/{k}": v for k, v in inputs.items()},
        **{f"output/{k}": v for k, v in preds.items()},
    )
    for name, value in preds.items():
        print(name, value.shape, value.dtype, digest(value))
