"""TorchScript export: the network alone, traced on the model's example input.

TorchScript runs without Python's abbe (``torch.jit.load`` in Python or LibTorch in C++, e.g.
deepImageJ), so the file holds only the network; normalization and decoding stay documented in
the model's ``config.yaml``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from abbe.io.atomic import atomic_path
from abbe.models.export import register


@register("torchscript")
def export_torchscript(model: Any, path: Path) -> Path:
    """Trace ``model.network`` on ``model.example_input()`` and save it (atomically)."""
    import torch

    network = model.network.eval().cpu()
    example = torch.from_numpy(model.example_input())
    with torch.no_grad(), warnings.catch_warnings():
        # torch 2.13 marks TorchScript deprecated; LibTorch, deepImageJ and bioimage.io still
        # run it, and no replacement loads outside Python yet.
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(network, example, check_trace=False)
        with atomic_path(path, overwrite=True) as tmp:
            torch.jit.save(traced, str(tmp))
    return path
