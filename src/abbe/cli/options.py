"""Options shared by every verb that runs a network: where it runs (``--device``,
``--threads``) and how much memory a tile may take (``--memory-mb``, on the verbs that tile:
restore, segment, localize; classify runs whole crops). The same names everywhere, so a user
learns them once."""

from __future__ import annotations

from typing import Any

import typer

DEVICE_HELP = "auto (CUDA when present), cpu, cuda or cuda:N."
THREADS_HELP = "CPU threads (default: all cores)."
MEMORY_HELP = "Memory budget of one tile's computation, MB; larger images are cut into tiles."


def device_option() -> Any:
    return typer.Option("auto", "--device", help=DEVICE_HELP)


def threads_option() -> Any:
    return typer.Option(None, "--threads", min=1, help=THREADS_HELP)


def memory_option(default: float = 1024) -> Any:
    return typer.Option(default, "--memory-mb", min=64, help=MEMORY_HELP)


ENGINE_HELP = (
    "torch, onnx (ONNX Runtime on the CPU) or onnx-int8 (int8-quantized, faster, slightly less "
    "exact); the ONNX files are made once and cached. abbe's own models only."
)


def engine_option() -> Any:
    return typer.Option("torch", "--engine", help=ENGINE_HELP)


def compute(device: str, threads: int | None, memory_mb: float | None = None) -> dict[str, Any]:
    """The prediction options of a model's ``predict``, the device checked before any work
    (a missing GPU is a one-line error, not a failure after minutes)."""
    from abbe.compute import resolve_device

    resolve_device(device)
    options: dict[str, Any] = {"device": device, "threads": threads}
    if memory_mb is not None:
        options["memory_mb"] = memory_mb
    return options
