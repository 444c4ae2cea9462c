"""Where torch runs: the device (with a clear error when it is not there), the CPU thread count,
and a network put on a device and back. Shared by the training engine and every model's
prediction; torch is imported only when these are called, so importing this module is free."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from abbe.errors import InputError

if TYPE_CHECKING:
    import torch


def resolve_device(device: str | None = "auto") -> torch.device:
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``, with a clear
    error when the device is not there."""
    import torch

    name = (device or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(
            f"--device {device}: no CUDA GPU is available to this torch build; "
            "use --device cpu or auto"
        )
    try:
        return torch.device(name)
    except RuntimeError:
        raise InputError(f"--device {device}: expected auto, cpu, cuda or cuda:N") from None


@contextlib.contextmanager
def network_on(network: torch.nn.Module, device: str | None = "auto") -> Iterator[torch.device]:
    """Run ``network`` on ``device`` (see :func:`resolve_device`), then put it back where it
    was, also after an error: a model the user placed on a GPU stays there."""
    dev = resolve_device(device)
    before = next((p.device for p in network.parameters()), dev)
    network.to(dev)
    try:
        yield dev
    finally:
        network.to(before)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run on ``threads`` CPU threads (None: leave as is), then restore the process's count."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)
