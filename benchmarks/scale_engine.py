"""Scale-out benchmark, issue 24 items 4–5: CPU inference near the machine's limit (PyTorch,
ONNX Runtime fp32 and int8) and data-parallel training (Lightning DDP, 2 CPU processes).

inference
    - ceiling: a 4096² fp32 matmul on the thread count used below (best of 3), GFLOP/s;
    - the bundled ``denoise-widefield`` network's FLOPs per input pixel: every convolution's
      multiply-accumulates counted on a forward pass (1 MAC = 2 FLOPs; pooling, ReLU, the
      nearest upsampling and the residual add are left out: < 1 % of the total);
    - throughput (px/s of a 1024² image through ``model.predict``: normalization, tiling and
      all) and GFLOP/s achieved = FLOPs/px × px/s, for torch (eager, ``inference_mode``, fused
      batch norm, channels_last; tile sizes; TorchScript freeze; ``torch.compile`` when it
      builds) and ONNX Runtime fp32 and int8 (``--engine onnx`` / ``onnx-int8``);
    - PSNR on the denoise benchmark's test image (benchmarks/denoise.py protocol, seed 1000)
      for torch, ONNX fp32 and int8.
ddp
    One process with batch 2B against two processes (gloo, 1 thread each) with batch B, same
    seed, same steps: validation loss per epoch and training seconds per epoch; also one process
    on one thread with batch 2B (what a single core does).

Run:    flock /work/notes/cpu.lock .venv/bin/python benchmarks/scale_engine.py [--quick]
Output: one JSON object on stdout; benchmarks/results/scale_engine.json. The load average
        (``uptime``) before and after is recorded: timings need an otherwise idle CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TARGETS = {"fraction of matmul ceiling": 0.60, "int8 psnr loss db": 0.1, "int8 speed-up": 2.0}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def best_of(fn, repeats: int) -> float:
    """Fastest of ``repeats`` timed calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


# ------------------------------------------------------------------------------------ inference
def matmul_ceiling(threads: int, n: int = 4096) -> float:
    import torch

    torch.set_num_threads(threads)
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    seconds = best_of(lambda: torch.mm(a, b), 3)
    return 2 * n**3 / seconds / 1e9


def conv_flops_per_pixel(network, shape: tuple[int, int] = (256, 256)) -> float:
    """2 × the multiply-accumulates of every convolution of one forward pass, per input pixel."""
    import torch

    macs = [0]

    def hook(module, inputs, output):
        k = int(np.prod(module.kernel_size))
        if isinstance(module, torch.nn.ConvTranspose2d | torch.nn.ConvTranspose3d):
            macs[0] += inputs[0].numel() * module.out_channels // module.groups * k
        else:
            macs[0] += output.numel() * module.in_channels // module.groups * k

    kinds = (torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d)
    handles = [m.register_forward_hook(hook) for m in network.modules() if isinstance(m, kinds)]
    try:
        with torch.inference_mode():
            network(torch.zeros(1, 1, *shape))
    finally:
        for h in handles:
            h.remove()
    return 2.0 * macs[0] / float(np.prod(shape))


def _torch_variant(model, kind: str):
    """A window → output function for the raw network in one of the torch set-ups."""
    import copy

    import torch

    from abbe.nn.unet import fuse_batch_norm

    net = fuse_batch_norm(copy.deepcopy(model.network)).eval()
    example = torch.zeros(1, 1, 256, 256)
    if kind == "eager":
        return lambda x: net(x)
    if kind == "channels_last":
        net = net.to(memory_format=torch.channels_last)
        return lambda x: net(x.to(memory_format=torch.channels_last))
    if kind == "torchscript":
        with torch.inference_mode():
            frozen = torch.jit.freeze(torch.jit.trace(net, example))
        return lambda x: frozen(x)
    if kind == "compile":
        compiled = torch.compile(net, dynamic=False)
        return lambda x: compiled(x)
    raise ValueError(kind)


def inference(quick: bool, threads: int) -> dict:
    import torch

    import denoise as dn  # benchmarks/denoise.py: the protocol and its scores
    from abbe import models

    torch.set_num_threads(threads)
    model = models.load("denoise-widefield")
    size = 512 if quick else 1024
    image = dn.simulate(4242, size=size).input
    px = float(image.size)
    repeats = 2 if quick else 3
    flops = conv_flops_per_pixel(model.network)
    out: dict = {
        "model": "denoise-widefield",
        "threads": threads,
        "image": [size, size],
        "conv_flops_per_pixel": round(flops),
        "gflop_per_megapixel": round(flops * 1e6 / 1e9, 2),
    }
    rows: dict[str, dict] = {}

    def row(name: str, seconds: float, note: str = "") -> None:
        rows[name] = {
            "seconds": round(seconds, 4),
            "px_per_s": round(px / seconds),
            "gflop_s": round(flops * px / seconds / 1e9, 1),
            **({"note": note} if note else {}),
        }

    # The raw network on the whole image (one window, no tiling), per torch set-up.
    x = torch.from_numpy(np.ascontiguousarray(image[None, None] / image.max(), np.float32))
    for kind in ("eager", "channels_last", "torchscript", "compile"):
        try:
            t0 = time.perf_counter()
            fn = _torch_variant(model, kind)
            with torch.inference_mode():
                fn(x)  # compile / first-call cost, reported apart
                first = time.perf_counter() - t0
                seconds = best_of(lambda fn=fn: fn(x), repeats)
            row(f"torch {kind} (network, one window)", seconds, f"set-up {first:.1f} s")
        except Exception as exc:  # e.g. torch.compile without a working compiler
            rows[f"torch {kind} (network, one window)"] = {"error": str(exc).splitlines()[0]}
    # The user's path: model.predict (normalization, tiles, copies), per engine and tile.
    for engine in ("torch", "onnx", "onnx-int8"):
        model.predict(image[:64, :64], "YX", engine=engine, warn=False)  # export, cache, session
        for tile in ("auto", 256, 512, None):
            if engine != "torch" and tile not in ("auto", None):
                continue
            seconds = best_of(
                lambda e=engine, t=tile: model.predict(image, "YX", engine=e, tile=t, warn=False),
                repeats,
            )
            row(f"predict engine={engine} tile={tile}", seconds)
    out["throughput"] = rows
    best = max((r for r in rows.values() if "gflop_s" in r), key=lambda r: r["gflop_s"])
    best_fp32 = max(
        (r for k, r in rows.items() if "gflop_s" in r and "int8" not in k),
        key=lambda r: r["gflop_s"],
    )
    out["best_fp32_gflop_s"] = best_fp32["gflop_s"]
    out["best_gflop_s_any_precision"] = best["gflop_s"]
    # Quality on the denoise benchmark's test image.
    test = dn.simulate(dn.TEST_SEED)
    quality = {}
    for engine in ("torch", "onnx", "onnx-int8"):
        quality[engine] = dn.scores(model.predict(test.input, "YX", engine=engine), test.clean)
    out["denoise_benchmark_quality"] = quality
    out["int8_psnr_change_db"] = round(quality["onnx-int8"]["psnr"] - quality["onnx"]["psnr"], 3)
    fp32_s = rows["predict engine=onnx tile=auto"]["seconds"]
    int8_s = rows["predict engine=onnx-int8 tile=auto"]["seconds"]
    torch_s = min(v["seconds"] for k, v in rows.items() if k.startswith("predict engine=torch"))
    out["int8_speedup_vs_onnx_fp32"] = round(fp32_s / int8_s, 2)
    out["int8_speedup_vs_best_torch_predict"] = round(torch_s / int8_s, 2)
    return out


# ------------------------------------------------------------------------------------------ ddp
def ddp(quick: bool) -> dict:
    import torch

    import denoise as dn
    from abbe.data import PatchPool, PercentileNorm, normalize_pair
    from abbe.nn import UNet
    from abbe.restore.model import RestorationConfig
    from abbe.train import TrainingConfig, fit

    pairs = [dn.simulate(seed, size=128) for seed in range(10)]
    xs, ys = zip(*(normalize_pair(s.input, s.clean, PercentileNorm()) for s in pairs), strict=True)
    xs, ys = [x[None] for x in xs], [y[None] for y in ys]
    train, val = PatchPool(xs[:8], ys[:8], (64, 64)), PatchPool(xs[8:], ys[8:], (64, 64))
    net_cfg = RestorationConfig().network  # the default CARE U-Net (width 16, depth 3)
    b = 8
    common = {
        "patch_size": 64,
        "steps_per_epoch": 5 if quick else 20,
        "max_epochs": 2 if quick else 4,
        "validation_batches": 4,
        "accelerator": "cpu",
        "seed": 0,
    }
    runs = {
        "1 process, 2 threads, batch 2B": {"batch_size": 2 * b, "devices": 1, "threads": 2},
        "2 processes (ddp), 1 thread each, batch B": {
            "batch_size": b,
            "devices": 2,
            "strategy": "ddp",
        },
        "1 process, 1 thread, batch 2B": {"batch_size": 2 * b, "devices": 1, "threads": 1},
    }
    out: dict = {"B": b, "network": net_cfg.model_dump(), **common, "runs": {}}
    for name, settings in runs.items():
        cfg = TrainingConfig(**common, **settings)
        torch.manual_seed(0)
        net = UNet(net_cfg)
        with tempfile.TemporaryDirectory() as work:
            t = time.perf_counter()
            result = fit(net, train, val, cfg, work_dir=Path(work), quiet=True)
            wall = time.perf_counter() - t
        elapsed = [0.0] + [r["elapsed_s"] for r in result.history]
        per_epoch = np.diff(elapsed)
        out["runs"][name] = {
            "val_loss_per_epoch": [round(r["val_loss"], 5) for r in result.history],
            "train_seconds_per_epoch": [round(float(s), 2) for s in per_epoch],
            "mean_train_seconds_per_epoch": round(float(np.mean(per_epoch)), 2),
            "wall_seconds_total": round(wall, 1),
        }
    r1 = out["runs"]["1 process, 2 threads, batch 2B"]["mean_train_seconds_per_epoch"]
    r2 = out["runs"]["2 processes (ddp), 1 thread each, batch B"]["mean_train_seconds_per_epoch"]
    r0 = out["runs"]["1 process, 1 thread, batch 2B"]["mean_train_seconds_per_epoch"]
    out["epoch_time_ratio_ddp2_vs_1process_2threads"] = round(r2 / r1, 2)
    out["epoch_time_ratio_ddp2_vs_1process_1thread"] = round(r2 / r0, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the script")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-ddp", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import torch

    from abbe import __version__

    before = uptime()
    result: dict = {"benchmark": "scale_engine", "quick": args.quick, "targets": TARGETS}
    result["inference"] = inference(args.quick, args.threads)
    result["inference"]["matmul_ceiling_gflop_s"] = round(matmul_ceiling(args.threads), 1)
    ceiling = result["inference"]["matmul_ceiling_gflop_s"]
    result["inference"]["best_fp32_fraction_of_ceiling"] = round(
        result["inference"]["best_fp32_gflop_s"] / ceiling, 3
    )
    if not args.skip_ddp:
        result["ddp"] = ddp(args.quick)
    import onnxruntime

    result["machine"] = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "abbe": __version__,
        "uptime_before": before,
        "uptime_after": uptime(),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "scale_engine.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
