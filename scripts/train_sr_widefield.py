"""Reproduce the bundled model ``sr-widefield-2x`` (2× super-resolution of widefield images).

Training data: 1024 simulated 64² fields (:mod:`abbe.simulate.superres`, preset ``widefield-2x``),
a broad family so that the model learns the optics rather than one kernel: filaments (20–200 nm
wide), puncta, hollow CCP-like rings, membrane-outlined mitochondria-like tubes and ER-like
meshes, each at 0.3–3× its default density (30 % of fields overlay two families); 100 nm
pixels; per field a Gaussian, Airy or defocused Born–Wolf PSF (|z| ≤ 600 nm) whose in-focus
FWHM is drawn in 210–300 nm (NA 0.9–1.45, λ to match); 10–1000 photons at the peak
(log-uniform), 0–50 background photons; an ideal (Poisson + 0–3 e⁻ read noise), EMCCD (excess
noise factor 2) or sCMOS (per-pixel read-noise map) camera, converted back to photons; half the
fields carry out-of-focus light (another specimen blurred by σ 300–1000 nm, 0.2–2× the in-focus
flux), in the target as in the input, so that the model passes haze through instead of erasing
it; targets are the same objects at 80 nm resolution (Gaussian PSF) on 50 nm pixels,
noise-free. No real image is used, and nothing from the evaluation-only phantoms
(the evaluation-only phantom module, used by ``benchmarks/superres.py`` alone).
Validation: 16 simulated fields of other seeds (loss), then SSIM against the truth on held-out
fields of the same broad family per structure at 30 and 300 photons, for the model and for
bilinear upsampling (``metrics.json``).

Architecture: RCAN (2 residual groups × 3 channel-attention blocks, 32 channels, 0.18 M
parameters), L1 loss, ×2 pixel shuffle. RCAN rather than DFCAN for the bundled model: on this
CPU it takes 2.5× more steps per minute and predicts a 1024² image in about half the time
(DFCAN, trainable with ``abbe train dfcan``, is compared in ``benchmarks/superres.py``).

Training runs a fixed number of steps (``--steps``, default 8000 batches of 8 patches of 32²,
cosine learning rate) on one thread, so the same seed gives the same model however busy the
machine is. Measured for the shipped model on this 2-core CPU beside other jobs: 8000 steps in
1229 s of training (0.15 s a step), 1397 s in all with simulating the fields and validating.

Run:
    .venv/bin/python scripts/train_sr_widefield.py [--steps 8000] [--pairs 1024] [--out DIR]
Default output: src/abbe/models/weights/sr-widefield-2x/ (the shipped copy).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "src" / "abbe" / "models" / "weights" / "sr-widefield-2x"
#: Training steps and simulated fields of the shipped model.
STEPS = 8_000
PAIRS = 1024


def validate(model, n: int = 4) -> dict:
    """Mean SSIM (normalized, against the truth) on held-out fields of the *training* family
    (the preset's PSFs and cameras drawn per field, seeds never used in training), per
    structure at 30 and 300 photons, for the model and for bilinear upsampling. Variants are
    chosen on these, never on the evaluation-only phantoms of ``benchmarks/superres.py``."""
    from scipy import ndimage

    from abbe.metrics.image import evaluate
    from abbe.models.base import revalidated
    from abbe.simulate.superres import PRESETS, sr_pair

    preset = PRESETS["widefield-2x"]
    result = {}
    for structure in preset.structures:
        sim = revalidated(
            preset,
            {
                "structures": (structure,),
                "size": 128,
                "mixed_fraction": 0.0,
                "haze_probability": 0.0,
            },
        )
        for photons in (30, 300):
            model_ssim, base_ssim = [], []
            for k in range(n):
                pair = sr_pair(sim, seed=70_000 + k, photons=photons, background=10.0)
                out = model.predict(pair.input, "YX", warn=False)
                up = ndimage.zoom(pair.input, 2, order=1, grid_mode=True, mode="nearest")
                model_ssim.append(evaluate(out, pair.target, normalize=True).ssim)
                base_ssim.append(evaluate(up, pair.target, normalize=True).ssim)
            key = f"ssim_{structure}_{photons}ph"
            result[key] = round(float(np.mean(model_ssim)), 4)
            result[key + "_bilinear"] = round(float(np.mean(base_ssim)), 4)
    return result


def model_config(arch: str, steps: int):
    """The bundled model's settings: ``arch`` trained ``steps`` batches (not minutes: the same
    seed gives the same model on an idle or a busy machine)."""
    from abbe.restore.superres import default_config

    base = default_config(arch)
    return base.updated(
        name="sr-widefield-2x",
        description="2× super-resolution of widefield fluorescence (≈250 nm → 80 nm "
        "resolution, 100 → 50 nm pixels), trained on simulated filaments, puncta, rings, "
        "tubes and meshes through varied PSFs (Gaussian, Airy, defocused Born–Wolf; "
        "210–300 nm) and cameras.",
        training={
            "max_time_s": None,
            "max_epochs": max(1, -(-steps // base.training.steps_per_epoch)),
            "seed": 3,
            # One thread: the same summation order on any machine, and no OpenMP spin-waiting
            # when other jobs share the cores (2 threads ran 6× slower than 1 beside them).
            "threads": 1,
        },
    )


def main() -> None:
    from abbe.restore.superres import SuperResolution
    from abbe.simulate.superres import PRESETS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=STEPS, help="Training steps (batches).")
    ap.add_argument("--pairs", type=int, default=PAIRS)
    ap.add_argument("--arch", default="rcan", choices=["rcan", "dfcan", "resunet"])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    cfg = model_config(args.arch, args.steps)
    model = SuperResolution(cfg)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        model.fit_simulated(PRESETS["widefield-2x"], n_pairs=args.pairs, work_dir=work, quiet=False)
    wall = time.perf_counter() - start
    model.config = model.config.updated(
        **{
            "training_data": {
                **model.config.training_data,
                "summary": f"{args.pairs} simulated widefield fields (filaments 20–200 nm "
                "wide, puncta, rings, tubes, meshes; Gaussian/Airy/Born–Wolf PSFs of "
                "210–300 nm FWHM, defocus ≤ 600 nm; 100 nm px; 10–1000 photons, background "
                "0–50; ideal/EMCCD/sCMOS noise; half with out-of-focus haze) → 80 nm targets "
                "at 50 nm px",
                "script": "scripts/train_sr_widefield.py",
                "steps": args.steps,
                "wall_seconds": round(wall),
            }
        }
    )
    model.metrics["validation"] = validate(model)
    model.save(args.out, overwrite=True)
    print(args.out, model.metrics)


if __name__ == "__main__":
    main()
