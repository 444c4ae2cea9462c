"""Denoising benchmark: abbe CARE and N2V beside NLM, BM3D+GAT and CAREamics, in one run.

Protocol (../shared/ANCHORS.md, Restoration): a 512² widefield image of filaments, Gaussian PSF
σ 2 px, peak 50 photons, background 2, Poisson + Gaussian read noise σ 2 (photons); PSNR with the
truth's data range. Every learner gets the same CPU training time (``--seconds``, default 240):

- abbe CARE: 48 simulated 256² pairs of the same protocol (other seeds; simulation time reported);
- abbe N2V: the noisy test image alone (self-supervised);
- CAREamics 0.3.5 CARE (the same pairs) and N2V (the same noisy image), with their defaults, in
  their own venv (``bash benchmarks/peers/setup_careamics.sh``; skipped with a note without it).

Also measured: prediction of a 2048² image at equal network size (abbe's tapered U-Net with batch
norm, 0.333 M parameters, against CAREamics' 0.334 M), with peak memory; and real data (FMD
confocal BPAE, evaluation only, ``../shared/data/denoising``): abbe N2V trained on the noisy
captures (no clean image is ever seen) against BM3D after the generalized Anscombe transform with
a noise model fitted to the captures.

Run:    .venv/bin/python benchmarks/denoise.py [--seconds 240] [--quick]
Output: one JSON object on stdout; benchmarks/results/denoise.json and denoise.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PEER_PY = HERE / ".venv-careamics" / "bin" / "python"
FMD = HERE.parents[1] / "shared" / "data" / "denoising" / "fmd_confocal_bpae_b"

PROTOCOL = {
    "structure": "filaments",
    "size": 512,
    "pixel_size_nm": 100.0,
    "psf": "gaussian",
    "fwhm_nm": 2 * 2.354820 * 100.0,
    "photons": 50.0,
    "background": 2.0,
    "read_noise": 2.0,
    "camera": "ideal",
}
TEST_SEED = 1000
TARGETS = {"abbe CARE psnr": 39.5, "abbe N2V psnr": 37.5, "throughput ratio": 2.0}


def simulate(seed: int, size: int = 512):
    from abbe import simulate as sim

    p = {k: v for k, v in PROTOCOL.items() if k not in ("structure", "size")}
    return sim.widefield(PROTOCOL["structure"], size=size, seed=seed, **p)


def scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    from abbe import metrics

    s = metrics.evaluate(pred, truth)
    return {
        "psnr": round(s.psnr, 3),
        "ssim": round(s.ssim, 4),
        "ms_ssim": round(s.ms_ssim, 4),
        "nrmse": round(s.nrmse, 4),
    }


def peak_rss_mb(fn):
    """Run ``fn`` while sampling this process's resident memory; return (result, peak MB)."""
    import psutil

    proc, peak, done = psutil.Process(), [0], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        result = fn()
    finally:
        done.set()
        thread.join()
    return result, peak[0] / 2**20


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


# ------------------------------------------------------------------------------------ methods
def classical(test) -> dict[str, dict]:
    from abbe.restore import classical as c

    rows, images = {}, {}
    gat = {"read_noise": PROTOCOL["read_noise"]}
    for name, fn in (
        ("NLM (GAT)", lambda: c.nlm(test.input, **gat)),
        ("BM3D+GAT", lambda: c.bm3d_gat(test.input, **gat)),
    ):
        out, seconds = timed(fn)
        rows[name] = {**scores(out, test.clean), "predict_s": round(seconds, 2)}
        images[name] = out
    return rows, images


def abbe_care(seconds: float, n_pairs: int):
    from abbe.restore import CARE, RestorationConfig

    (pool, sim_s) = timed(lambda: [simulate(s, 256) for s in range(n_pairs)])
    x = np.stack([p.input for p in pool])
    y = np.stack([p.clean for p in pool])
    cfg = RestorationConfig().with_training(
        max_time_s=seconds, max_epochs=100_000, validation_batches=2
    )
    model = CARE(cfg)
    _, wall = timed(lambda: model.fit(x, y, axes="SYX"))
    return model, {
        "simulation_s": round(sim_s, 1),
        "train_wall_s": round(wall, 1),
        "pairs": n_pairs,
        "pair_size": 256,
    }


def abbe_n2v(seconds: float, images: list[np.ndarray]):
    from abbe.restore import N2V, default_n2v_config

    cfg = default_n2v_config().with_training(
        max_time_s=seconds, max_epochs=100_000, validation_batches=2
    )
    model = N2V(cfg)
    _, wall = timed(lambda: model.fit(images, axes="YX"))
    return model, {"train_wall_s": round(wall, 1)}


def careamics(algorithm: str, seconds: float, x, y, test, big=None) -> tuple[dict, np.ndarray]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.npz"
        arrays = {"x": x, "test": test}
        if y is not None:
            arrays["y"] = y
        np.savez(data, **arrays)
        cmd = [
            str(PEER_PY),
            str(HERE / "peers" / "careamics_run.py"),
            "--algorithm",
            algorithm,
            "--data",
            str(data),
            "--seconds",
            str(seconds),
            "--out",
            str(Path(tmp) / "o.npz"),
        ]
        if big is not None:
            np.save(Path(tmp) / "big.npy", big)
            cmd += ["--big", str(Path(tmp) / "big.npy")]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"CAREamics {algorithm} failed: {done.stderr[-2000:]}")
        info = json.loads(done.stdout.strip().splitlines()[-1])
        pred = np.load(Path(tmp) / "o.npz")["pred"]
    return info, pred


def throughput(model_factory, big: np.ndarray) -> dict:
    model = model_factory()
    model.predict(big[:512, :512])  # warm-up
    (_, seconds), peak = peak_rss_mb(lambda: timed(lambda: model.predict(big)))
    return {
        "predict_s": round(seconds, 2),
        "peak_rss_mb": round(peak, 0),
        "params": sum(p.numel() for p in model.network.parameters()),
    }


def fmd(seconds: float, quick: bool) -> dict | None:
    """Real confocal noise: N2V on the noisy captures vs BM3D+GAT (evaluation only)."""
    from abbe import io
    from abbe.restore import classical as c
    from abbe.restore.noise import estimate_noise_model

    if not FMD.is_dir():
        return None
    fields = {}
    for field in ("1", "2"):
        raws = [
            io.read(p)[0].astype(np.float32) for p in sorted((FMD / "raw" / field).glob("*.png"))
        ]
        gt = io.read(FMD / "gt" / field / "avg50.png")[0].astype(np.float32)
        fields[field] = (np.stack(raws), gt)
    all_raw = [r for raws, _ in fields.values() for r in raws]
    model, info = abbe_n2v(seconds, all_raw)
    rows: dict[str, list] = {"raw": [], "BM3D+GAT": [], "abbe N2V": []}
    example = {}
    for field, (raws, gt) in fields.items():
        noise = estimate_noise_model(raws).anscombe_parameters()
        for k, raw in enumerate(raws[: 2 if quick else None]):
            bm3d = c.bm3d_gat(raw, **noise)
            n2v = model.predict(raw)
            rows["raw"].append(scores(raw, gt))
            rows["BM3D+GAT"].append(scores(bm3d, gt))
            rows["abbe N2V"].append(scores(n2v, gt))
            if field == "1" and k == 0:
                example = {
                    "raw capture": raw,
                    "BM3D+GAT": bm3d,
                    "abbe N2V": n2v,
                    "average of 50": gt,
                }
    summary = {
        name: {key: round(float(np.mean([r[key] for r in vals])), 3) for key in ("psnr", "ssim")}
        for name, vals in rows.items()
    }
    summary["abbe N2V"].update(info)
    return {"scores": summary, "captures": len(rows["raw"]), "example": example}


# ----------------------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=240.0, help="training time per learner")
    ap.add_argument("--pairs", type=int, default=48, help="simulated CARE training pairs")
    ap.add_argument("--quick", action="store_true", help="smoke run: 20 s per learner")
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--skip-fmd", action="store_true")
    args = ap.parse_args()
    seconds = 20.0 if args.quick else args.seconds
    import torch

    from abbe import __version__
    from abbe.nn import UNetConfig
    from abbe.restore import CARE, RestorationConfig

    test = simulate(TEST_SEED)
    methods: dict[str, dict] = {"noisy input": scores(test.input, test.clean)}
    images: dict[str, np.ndarray] = {"noisy input": test.input}
    rows, imgs = classical(test)
    methods.update(rows)
    images.update(imgs)

    care, info = abbe_care(seconds, args.pairs)
    pred, t = timed(lambda: care.predict(test.input))
    methods["abbe CARE"] = {
        **scores(pred, test.clean),
        "train_s": care.metrics["training_seconds"],
        "steps": care.metrics["steps"],
        "predict_s": round(t, 2),
        **info,
    }
    images["abbe CARE"] = pred

    n2v, info = abbe_n2v(seconds, [test.input])
    pred, t = timed(lambda: n2v.predict(test.input))
    methods["abbe N2V"] = {
        **scores(pred, test.clean),
        "train_s": n2v.metrics["training_seconds"],
        "steps": n2v.metrics["steps"],
        "predict_s": round(t, 2),
        **info,
    }
    images["abbe N2V"] = pred

    big = simulate(TEST_SEED + 1, 2048 if not args.quick else 1024).input
    equal = lambda: CARE(RestorationConfig(network=UNetConfig(taper=True, batch_norm=True)))  # noqa: E731
    speed = {
        "image": list(big.shape),
        "abbe (equal size)": throughput(equal, big),
        "abbe CARE (benchmarked)": throughput(lambda: care, big),
    }

    notes = []
    if PEER_PY.exists() and not args.skip_peers:
        pool = [simulate(s, 256) for s in range(args.pairs)]
        x = np.stack([p.input for p in pool])
        y = np.stack([p.clean for p in pool])
        info, pred = careamics("care", seconds, x, y, test.input, big=big)
        methods["CAREamics CARE"] = {**scores(pred, test.clean), **info}
        images["CAREamics CARE"] = pred
        speed["CAREamics (trained CARE)"] = {
            "predict_s": round(info["big_predict_s"], 2),
            "peak_rss_mb": round(info["big_peak_rss_mb"], 0),
            "params": info["params"],
        }
        info, pred = careamics("n2v", seconds, test.input[None], None, test.input)
        methods["CAREamics N2V"] = {**scores(pred, test.clean), **info}
        images["CAREamics N2V"] = pred
        ratio = (
            speed["CAREamics (trained CARE)"]["predict_s"] / speed["abbe (equal size)"]["predict_s"]
        )
        speed["throughput ratio (abbe / CAREamics)"] = round(ratio, 2)
    else:
        notes.append("CAREamics rows skipped: run bash benchmarks/peers/setup_careamics.sh")

    real = None if args.skip_fmd else fmd(seconds, args.quick)
    if real is None and not args.skip_fmd:
        notes.append("FMD data not found beside the checkout; real-data rows skipped")

    verdict = {
        "abbe CARE ≥ 39.5 dB": methods["abbe CARE"]["psnr"] >= TARGETS["abbe CARE psnr"],
        "abbe N2V ≥ 37.5 dB": methods["abbe N2V"]["psnr"] >= TARGETS["abbe N2V psnr"],
    }
    if "throughput ratio (abbe / CAREamics)" in speed:
        verdict["2048² throughput ≥ 2× CAREamics"] = (
            speed["throughput ratio (abbe / CAREamics)"] >= TARGETS["throughput ratio"]
        )
    report = {
        "benchmark": "denoise",
        "protocol": {**PROTOCOL, "test_seed": TEST_SEED},
        "training_seconds_per_learner": seconds,
        "quick": args.quick,
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
        },
        "versions": {
            "abbe": __version__,
            "torch": torch.__version__,
            "python": sys.version.split()[0],
        },
        "methods": methods,
        "throughput_2048": speed,
        "fmd_real": None
        if real is None
        else {"scores": real["scores"], "captures": real["captures"]},
        "targets": TARGETS,
        "verdict": verdict,
        "notes": notes,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "denoise.json").write_text(json.dumps(report, indent=2) + "\n")
    _figure(images, test, real)
    print(json.dumps(report, indent=2))


def _busiest_window(image: np.ndarray, size: int) -> tuple[slice, slice]:
    """The size×size window (on a 32-pixel grid) holding the most signal."""
    best, where = -np.inf, (0, 0)
    for y in range(0, image.shape[0] - size + 1, 32):
        for x in range(0, image.shape[1] - size + 1, 32):
            total = float(image[y : y + size, x : x + size].sum())
            if total > best:
                best, where = total, (y, x)
    return slice(where[0], where[0] + size), slice(where[1], where[1] + size)


def _figure(images: dict[str, np.ndarray], test, real) -> None:
    from abbe.report import grid

    crop = (slice(160, 352), slice(160, 352))
    order = [
        "noisy input",
        "NLM (GAT)",
        "BM3D+GAT",
        "CAREamics N2V",
        "abbe N2V",
        "CAREamics CARE",
        "abbe CARE",
    ]
    row = {k: images[k][crop] for k in order if k in images}
    row["truth"] = test.clean[crop]
    captions = [{k: f"PSNR {scores(images[k], test.clean)['psnr']:.2f} dB" for k in images}]
    rows, refs, sizes, titles = [row], ["truth"], [test.pixel_size_nm], ["simulated"]
    if real and real["example"]:
        ex = real["example"]
        window = _busiest_window(ex["average of 50"], 256)
        rows.append({k: v[window] for k, v in ex.items()})
        refs.append("average of 50")
        sizes.append(None)
        titles.append("FMD confocal (real)")
        captions.append(
            {
                k: f"PSNR {scores(ex[k], ex['average of 50'])['psnr']:.2f} dB"
                for k in ("raw capture", "BM3D+GAT", "abbe N2V")
            }
        )
    grid(
        rows,
        RESULTS / "denoise.png",
        pixel_size_nm=sizes,
        references=refs,
        captions=captions,
        row_titles=titles,
        overwrite=True,
        panel_inches=2.6,
    )


if __name__ == "__main__":
    main()
