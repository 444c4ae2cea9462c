"""Reproduce the bundled model ``denoise-widefield`` (CARE, trained on simulations only).

Training data: widefield images of filaments, puncta and nuclei simulated with abbe's physical
model across signal levels (3–300 photons at the peak, log-uniform), backgrounds (0–30 photons),
optics (NA 0.8–1.45, emission 450–700 nm, pixels 65–130 nm: PSF FWHM 1.5–5 px) and cameras
(ideal with 0–3 e⁻ read noise, sCMOS, EMCCD). Targets are the noise-free images (same blur):
the model denoises, it does not deconvolve. Validation uses other seeds; the scores per structure
and signal level, beside non-local means, go to ``metrics.json``.

Run (about 20 minutes on 2 CPU cores):
    .venv/bin/python scripts/train_denoise_widefield.py [--minutes 15] [--out DIR]
Default output: src/abbe/models/weights/denoise-widefield/ (the shipped copy).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "src" / "abbe" / "models" / "weights" / "denoise-widefield"
STRUCTURES = ("filaments", "puncta", "nuclei")
CAMERAS = ("ideal", "scmos", "emccd")
RANGES = {
    "photons": (3.0, 300.0),
    "background": (0.0, 30.0),
    "na": (0.8, 1.45),
    "wavelength_nm": (450.0, 700.0),
    "pixel_size_nm": (65.0, 130.0),
    "read_noise_e": (0.0, 3.0),
}


def draw(rng: np.random.Generator, structure: str, size: int, seed: int):
    """One simulated (input, clean) pair with random acquisition settings."""
    from abbe import simulate

    photons = float(np.exp(rng.uniform(*np.log(RANGES["photons"]))))
    na = float(rng.uniform(*RANGES["na"]))
    camera = CAMERAS[rng.integers(len(CAMERAS))]
    settings = {
        "size": size,
        "seed": seed,
        "photons": photons,
        "na": na,
        "background": float(rng.uniform(*RANGES["background"])),
        "wavelength_nm": float(rng.uniform(*RANGES["wavelength_nm"])),
        "pixel_size_nm": float(rng.uniform(*RANGES["pixel_size_nm"])),
        "camera": camera,
        "read_noise": float(rng.uniform(*RANGES["read_noise_e"])) if camera == "ideal" else None,
    }
    sim = simulate.widefield(structure, **settings)
    # The target is the noise-free image in the input's units (ADU for real cameras).
    return sim.input, sim.expected_input, {**settings, "camera": sim.params["camera"]}


def dataset(n: int, size: int, seed: int):
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for i in range(n):
        x, y, _ = draw(rng, STRUCTURES[i % 3], size, seed * 100_000 + i)
        xs.append(x)
        ys.append(y)
    return xs, ys


def validate(model, seed: int) -> dict:
    """PSNR (dB) of the model, the input and NLM per structure and peak photons (ideal camera,
    background 5, read noise 1.5 e⁻), on seeds not used for training."""
    from abbe import metrics, simulate
    from abbe.restore import classical

    out: dict = {"metric": "psnr_db", "columns": ["model", "input", "nlm"], "rows": {}}
    for structure in STRUCTURES:
        for photons in (10, 50, 200):
            sim = simulate.widefield(
                structure,
                size=256,
                photons=photons,
                background=5,
                read_noise=1.5,
                seed=seed + photons,
            )
            care = metrics.psnr(model.predict(sim.input), sim.clean)
            nlm = metrics.psnr(classical.nlm(sim.input, read_noise=1.5), sim.clean)
            raw = metrics.psnr(sim.input, sim.clean)
            row = out["rows"].setdefault(structure, {})
            row[str(photons)] = [round(care, 2), round(raw, 2), round(nlm, 2)]
    return out


def update(args: argparse.Namespace) -> None:
    """Refresh metrics.json and the training-data statistics (for out-of-distribution
    warnings) of the shipped model without retraining (same weights, same training images)."""
    from abbe.models import load
    from abbe.restore.training import training_stats

    model = load(args.out)
    xs, _ = dataset(args.images, args.size, args.seed)
    data = {**model.config.training_data, "stats": training_stats(xs, "YX")}
    model.config = model.config.updated(training_data=data)
    model.metrics["validation"] = validate(model, seed=args.seed + 7)
    model.save(args.out, overwrite=True)
    print(json.dumps(model.metrics["validation"], indent=2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--images", type=int, default=360)
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument(
        "--update",
        action="store_true",
        help="keep the shipped weights; recompute validation scores and training statistics",
    )
    args = ap.parse_args()
    if args.update:
        update(args)
        return

    from abbe.nn import UNetConfig
    from abbe.restore import CARE, RestorationConfig
    from abbe.train import TrainingConfig

    t0 = time.perf_counter()
    xs, ys = dataset(args.images, args.size, args.seed)
    vx, vy = dataset(max(12, args.images // 20), args.size, args.seed + 1)
    sim_s = time.perf_counter() - t0
    summary = (
        f"{args.images} simulated {args.size}² widefield images of filaments, puncta and "
        f"nuclei; peak 3–300 photons, background 0–30; NA 0.8–1.45, λ 450–700 nm, "
        f"pixels 65–130 nm; ideal, sCMOS and EMCCD cameras"
    )
    config = RestorationConfig(
        method="care",
        name="denoise-widefield",
        description="Denoises widefield fluorescence images (any camera, 3–300 photons peak); "
        "keeps the optical blur. CARE U-Net trained on abbe simulations only.",
        network=UNetConfig(),
        training=TrainingConfig(
            max_time_s=args.minutes * 60,
            max_epochs=100_000,
            steps_per_epoch=100,
            validation_batches=4,
            seed=args.seed,
        ),
        training_data={
            "summary": summary,
            "ranges": RANGES,
            "structures": list(STRUCTURES),
            "cameras": list(CAMERAS),
            "images": args.images,
            "size": args.size,
            "seed": args.seed,
            "script": "scripts/train_denoise_widefield.py",
        },
    )
    model = CARE(config).fit(
        xs, ys, axes="YX", validation=(vx, vy), quiet=False, training_data=config.training_data
    )
    model.metrics["validation"] = validate(model, seed=args.seed + 7)
    model.metrics["simulation_seconds"] = round(sim_s, 1)
    model.save(args.out, overwrite=True)
    print(json.dumps(model.metrics, indent=2))


if __name__ == "__main__":
    main()
