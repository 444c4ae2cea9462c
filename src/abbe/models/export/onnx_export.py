"""ONNX export: the network alone, opset 17, any batch size and any image size.

ONNX runs in ONNX Runtime (Python, C++, Java: ilastik, QuPath, deepImageJ through bioimage.io)
without PyTorch. The legacy TorchScript-based exporter (``dynamo=False``) is used: its graphs
passed ``bioimageio test`` offline, and it names dynamic axes directly.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from abbe.errors import InputError
from abbe.io.atomic import atomic_path
from abbe.models.export import register

OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "output"


@register("onnx")
def export_onnx(model: Any, path: Path) -> Path:
    """Write ``model.network`` as ONNX (atomically), traced on ``model.example_input()``, with
    the batch axis and, for image outputs, every spatial axis dynamic."""
    import torch

    network = model.network.eval().cpu()
    example = torch.from_numpy(model.example_input())
    with torch.no_grad():
        out_ndim = network(example).ndim
    names = ["y", "x"] if example.ndim == 4 else ["z", "y", "x"]
    dynamic_in = {0: "batch", **{2 + i: n for i, n in enumerate(names)}}
    # Class scores (B, C) keep only the batch dynamic; images keep their spatial axes too.
    dynamic_out = dynamic_in if out_ndim == example.ndim else {0: "batch"}
    with atomic_path(path, overwrite=True) as tmp, torch.no_grad(), warnings.catch_warnings():
        # The legacy exporter is deprecated in favour of dynamo, whose graphs bioimage.io tools
        # do not all read yet; the warning would only confuse users.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        try:
            torch.onnx.export(
                network,
                (example,),
                str(tmp),
                opset_version=OPSET,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: dynamic_in, OUTPUT_NAME: dynamic_out},
                dynamo=False,
            )
        except ModuleNotFoundError as exc:
            raise InputError(
                f"ONNX export needs the package {exc.name!r}: pip install 'abbe[onnx]'"
            ) from None
    return path
