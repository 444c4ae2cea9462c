"""abbe: deep learning for fluorescence microscopy, with physical simulation and measures of trust.

Subpackages are imported on first use so that ``import abbe`` (and the command line) stays fast:
``abbe.io``, ``abbe.simulate`` and ``abbe.metrics`` never import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBPACKAGES = {
    "io",
    "simulate",
    "metrics",
    "errors",
    "report",
    "data",
    "nn",
    "train",
    "restore",
    "predict",
    "models",
    "trust",
    "localize",
    "segment",
    "classify",
}


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"abbe.{name}")
    raise AttributeError(f"module 'abbe' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_SUBPACKAGES])
