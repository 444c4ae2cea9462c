"""Run Picasso's localization (net-gradient detection, box 7, MLE fit) on a stack, for
benchmarks/smlm.py. Runs inside benchmarks/.venv-picasso; prints one JSON line: per minimum
net gradient, the seconds and a CSV of localizations in abbe's columns (nm from the corner of
the first pixel, frames from 1)."""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stack", type=Path, required=True)
    ap.add_argument("--camera", required=True, help="JSON: baseline, sensitivity, gain, qe")
    ap.add_argument("--gradients", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--pixel-size", type=float, default=100.0)
    ap.add_argument("--box", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=1, help="seconds: the fastest of so many runs")
    args = ap.parse_args()
    from picasso import localize

    warnings.simplefilter("ignore")
    movie = np.load(args.stack, mmap_mode="r")
    cam = json.loads(args.camera)
    camera_info = {
        "Baseline": cam["baseline"],
        "Sensitivity": cam["sensitivity"],
        "Gain": cam["gain"],
        "Qe": cam["qe"],
        "Pixelsize": args.pixel_size,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    # Numba compiles on first use: a warm-up on a few frames keeps that out of the timings.
    localize.localize(
        movie[: min(10, len(movie))],
        camera_info=camera_info,
        identification_parameters={"Min. Net Gradient": 1e9, "Box Size": args.box},
        fitting_method="gaussmle",
    )
    localize.localize(
        movie[: min(10, len(movie))],
        camera_info=camera_info,
        identification_parameters={"Min. Net Gradient": 1000.0, "Box Size": args.box},
        fitting_method="gaussmle",
    )
    runs = []
    for g in [float(v) for v in args.gradients.split(",") if v]:
        seconds = float("inf")
        for _ in range(max(args.repeats, 1)):
            t0 = time.perf_counter()
            result = localize.localize(
                movie,
                camera_info=camera_info,
                identification_parameters={"Min. Net Gradient": g, "Box Size": args.box},
                fitting_method="gaussmle",
            )
            seconds = min(seconds, time.perf_counter() - t0)
        locs = result[0] if isinstance(result, tuple) else result
        px = args.pixel_size
        path = args.out / f"locs_{int(g)}.csv"
        table = {
            "frame": np.asarray(locs["frame"], dtype=np.int64) + 1,
            # Picasso's pixel centres are whole numbers: the first pixel's corner is at −½.
            "x_nm": (np.asarray(locs["x"], dtype=np.float64) + 0.5) * px,
            "y_nm": (np.asarray(locs["y"], dtype=np.float64) + 0.5) * px,
            "photons": np.asarray(locs["photons"], dtype=np.float64),
        }
        import pandas as pd

        pd.DataFrame(table).to_csv(path, index=False)
        runs.append({"min_net_gradient": g, "seconds": seconds, "path": str(path)})
    print(json.dumps(runs))


if __name__ == "__main__":
    main()
