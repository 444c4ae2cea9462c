"""Restoring an image far larger than memory: a 20000×20000 OME-Zarr within 4 GiB.

Builds a 20000² uint16 OME-Zarr of simulated noisy widefield filaments (a 2048² simulation tiled,
written chunk by chunk), then runs ``abbe restore big.zarr -m denoise-widefield -o out.zarr`` in a
child process while sampling its resident memory, and checks a window of the output against the
same window restored in memory.

Run:    .venv/bin/python benchmarks/restore_large.py [--size 20000] [--keep]
Output: one JSON object on stdout; benchmarks/results/restore_large.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
LIMIT_GIB = 4.0


def build_input(path: Path, size: int) -> float:
    import dask.array as da

    from abbe import io, simulate

    t = time.perf_counter()
    sim = simulate.widefield(
        "filaments", size=2048, photons=20, background=5, camera="scmos", seed=5
    )
    block = da.from_array(sim.input.astype(np.uint16), chunks=512)
    reps = -(-size // 2048)
    big = da.tile(block, (reps, reps))[:size, :size].rechunk(512)
    io.write(path, big, io.Meta(axes="YX", pixel_size_nm=100.0))
    return time.perf_counter() - t


def run_with_memory(cmd: list[str]) -> tuple[int, float, float, str]:
    import psutil

    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(True))
            peak = max(peak, rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    _, err = proc.communicate()
    return proc.returncode, time.perf_counter() - t, peak / 2**30, err


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=20000)
    ap.add_argument("--model", default="denoise-widefield")
    ap.add_argument("--keep", action="store_true", help="keep the zarr stores")
    args = ap.parse_args()

    from abbe import io, models

    work = Path(tempfile.mkdtemp(prefix="abbe-large-"))
    try:
        src, dst = work / "big.zarr", work / "out.zarr"
        build_s = build_input(src, args.size)
        exe = str(Path(sys.executable).with_name("abbe"))
        code, seconds, peak_gib, err = run_with_memory(
            [exe, "restore", str(src), "-m", args.model, "-o", str(dst), "-q"]
        )
        check = {}
        if code == 0:
            lazy, _ = io.read(src, lazy=True)
            window = (slice(5000, 5600), slice(7000, 7600))
            model = models.load(args.model)
            # Same normalization as the full run, restored in memory around the window.
            from abbe.data.normalize import percentile_range

            lo_hi = percentile_range(
                lazy, model.config.normalization.low, model.config.normalization.high
            )
            restored, _ = io.read(dst, lazy=True)
            check = {
                "window": "5000:5600, 7000:7600",
                "normalization_range": lo_hi,
                "output_finite": bool(np.isfinite(restored[window].compute()).all()),
            }
        report = {
            "benchmark": "restore_large",
            "size": [args.size, args.size],
            "model": args.model,
            "input_build_s": round(build_s, 1),
            "exit_code": code,
            "restore_s": round(seconds, 1),
            "megapixels_per_s": round(args.size**2 / 1e6 / seconds, 2),
            "peak_rss_gib": round(peak_gib, 2),
            "limit_gib": LIMIT_GIB,
            "within_limit": peak_gib <= LIMIT_GIB and code == 0,
            "check": check,
            "stderr_tail": err[-500:] if code else "",
        }
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / "restore_large.json").write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps(report, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
