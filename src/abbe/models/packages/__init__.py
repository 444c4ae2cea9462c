"""Run bioimage.io model packages (spec 0.5) as abbe models.

``abbe.models.load("model.zip")`` (or a folder holding ``rdf.yaml``) returns a
:class:`PackageModel`: the package's pre- and postprocessing around its TorchScript, ONNX or
PyTorch state-dict weights, tiled like abbe's own models. ``abbe restore IN -m model.zip`` and
``abbe segment IN -m model.zip`` run it from the command line.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from abbe.models.packages.spec import is_package

if TYPE_CHECKING:
    from abbe.models.packages.model import PackageModel


def load_package(path: str | os.PathLike[str], *, weights: str | None = None) -> PackageModel:
    """Load a bioimage.io package; see :func:`abbe.models.packages.model.load_package`.

    Imported on use, so ``import abbe.models`` stays free of torch and onnxruntime."""
    from abbe.models.packages.model import load_package as _load

    return _load(path, weights=weights)


__all__ = ["is_package", "load_package"]
