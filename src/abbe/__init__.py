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


#: Functions offered at the top level, imported on first use: name -> module.
_FUNCTIONS = {"verify": "abbe.trust.verify"}


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"abbe.{name}")
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(_FUNCTIONS[name]), name)
    raise AttributeError(f"module 'abbe' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_SUBPACKAGES, *_FUNCTIONS])
