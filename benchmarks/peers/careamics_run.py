"""Train and apply CAREamics (CARE or N2V) for ``benchmarks/denoise.py``.

Runs inside the CAREamics venv (``benchmarks/peers/setup_careamics.sh``), never abbe's; abbe is not
imported here. CAREamics' own defaults are kept (UNet depth 2, 32 channels, batch norm, Adam +
ReduceLROnPlateau, mean/std normalization, tiles with overlap 48) but for two things: the
training time is fixed with Lightning's Timer, and its default early stopping (Lightning's
patience of 3 validations, which ended CARE after about 60 s here) is switched off, so that every
learner uses the same budget.

    python careamics_run.py --algorithm care --data data.npz --seconds 240 --out result.npz
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from datetime import timedelta

import numpy as np


def _peak_rss_mb(fn):
    """Run ``fn`` while sampling this process's resident memory; return (result, peak MB)."""
    import psutil

    proc, peak, done = psutil.Process(), [0], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.02)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        result = fn()
    finally:
        done.set()
        t.join()
    return result, peak[0] / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--algorithm", choices=["care", "n2v"], required=True)
    ap.add_argument("--data", required=True, help="npz: x (S,Y,X) [y (S,Y,X)], test (Y,X)")
    ap.add_argument("--seconds", type=float, default=240)
    ap.add_argument("--out", required=True)
    ap.add_argument("--big", help="npy (Y,X) to time prediction on (throughput)")
    args = ap.parse_args()

    import torch
    from careamics import CAREamist
    from careamics.config import create_care_config, create_n2v_config
    from lightning.pytorch.callbacks import Timer

    data = np.load(args.data)
    x = data["x"].astype(np.float32)
    common = {
        "data_type": "array",
        "axes": "SYX",
        "patch_size": [64, 64],
        "batch_size": 16,
        "num_epochs": 100_000,
    }
    if args.algorithm == "care":
        config = create_care_config(experiment_name="bench_care", **common)
    else:
        config = create_n2v_config(experiment_name="bench_n2v", **common)
    config.training_config.early_stopping_params = None  # use the whole time budget
    work = tempfile.mkdtemp(prefix="careamics-")
    timer = Timer(duration=timedelta(seconds=args.seconds), interval="step")
    model = CAREamist(config, work_dir=work, callbacks=[timer], enable_progress_bar=False)
    t0 = time.perf_counter()
    if args.algorithm == "care":
        model.train(train_data=x, train_data_target=data["y"].astype(np.float32))
    else:
        model.train(train_data=x)
    train_s = time.perf_counter() - t0
    test = data["test"].astype(np.float32)
    t0 = time.perf_counter()
    pred = model.predict(test[None], axes="SYX", tile_size=(256, 256), tile_overlap=(48, 48))
    predict_s = time.perf_counter() - t0
    pred = np.asarray(pred[0] if isinstance(pred, list | tuple) else pred).squeeze()
    result = {
        "train_s": train_s,
        "predict_s": predict_s,
        "threads": torch.get_num_threads(),
        "params": sum(p.numel() for p in model.model.parameters()),
        "steps": int(model.trainer.global_step),
    }
    if args.big:
        big = np.load(args.big).astype(np.float32)
        model.predict(
            big[None, :512, :512], axes="SYX", tile_size=(512, 512), tile_overlap=(48, 48)
        )

        def run():
            t = time.perf_counter()
            out = model.predict(big[None], axes="SYX", tile_size=(512, 512), tile_overlap=(48, 48))
            return time.perf_counter() - t, out

        (seconds, _), peak = _peak_rss_mb(run)
        result.update(
            {"big_shape": list(big.shape), "big_predict_s": seconds, "big_peak_rss_mb": peak}
        )
    np.savez(args.out, pred=pred.astype(np.float32))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
