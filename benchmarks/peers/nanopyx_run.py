"""FRC and decorrelation with NanoPyx, timed, for ``benchmarks/resolution.py``.

Runs inside the NanoPyx venv (``benchmarks/peers/setup_nanopyx.sh``); abbe is not imported.

    python nanopyx_run.py --data images.npz --pixel-size 100 --repeats 3
    (npz: a, b (two images of one field), single (the image for decorrelation))
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np


def best_time(fn, repeats: int) -> tuple[float, object]:
    """Fastest of ``repeats`` calls (after one warm-up), and the last result."""
    out = fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--pixel-size", type=float, required=True)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    from nanopyx.core.analysis.decorr import DecorrAnalysis
    from nanopyx.core.analysis.frc import FIRECalculator

    data = np.load(args.data)
    a, b = data["a"].astype(np.float32), data["b"].astype(np.float32)
    single = data["single"].astype(np.float32)

    def frc():
        return FIRECalculator(pixel_size=args.pixel_size, units="nm").calculate_fire_number(a, b)

    def decorr():
        analysis = DecorrAnalysis(pixel_size=args.pixel_size, units="nm")
        analysis.run_analysis(single)
        return analysis.resolution

    frc_s, frc_nm = best_time(frc, args.repeats)
    dec_s, dec_nm = best_time(decorr, args.repeats)
    print(
        json.dumps(
            {
                "frc_nm": float(frc_nm),
                "frc_s": frc_s,
                "decorr_nm": float(dec_nm),
                "decorr_s": dec_s,
                "shape": list(a.shape),
            }
        )
    )


if __name__ == "__main__":
    main()
