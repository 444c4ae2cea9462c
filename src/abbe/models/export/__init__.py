"""Export formats: one registry, one function, written once for every learned method.

An exporter is a function ``(model, path) -> Path`` registered under a format name with
:func:`register`; :func:`export` (and :meth:`abbe.models.base.Model.export`) checks the output
and calls it. The exporter sees only the model contract (``model.network``, ``model.config``,
``model.example_input()``, ``model.export_info()``), so a format written once serves every
method: ``torchscript`` and ``onnx`` (the network alone) and ``bioimageio`` (a BioImage Model
Zoo package: both, a state dict, pre- and post-processing, test tensors, documentation).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from abbe.errors import InputError, OutputExistsError

Exporter = Callable[[Any, Path], Path]
_FORMATS: dict[str, Exporter] = {}


def register(name: str) -> Callable[[Exporter], Exporter]:
    """Decorator: register ``fn(model, path) -> Path`` as the exporter of format ``name``."""

    def wrap(fn: Exporter) -> Exporter:
        _FORMATS[name] = fn
        return fn

    return wrap


def formats() -> list[str]:
    """Names of the export formats abbe can write."""
    _load_builtin()
    return sorted(_FORMATS)


def export(
    model: Any, path: str | os.PathLike[str], *, format: str, overwrite: bool = False
) -> Path:
    """Write ``model`` to ``path`` in ``format`` (see :func:`formats`), refusing to replace an
    existing file unless ``overwrite``."""
    _load_builtin()
    if format not in _FORMATS:
        raise InputError(f"unknown export format {format!r}; abbe writes {', '.join(formats())}")
    target = Path(path)
    if target.exists() and not overwrite:
        raise OutputExistsError("already exists; pass --overwrite to replace it", target)
    if target.is_dir():
        raise OutputExistsError("is a folder; give a file name", target)
    return _FORMATS[format](model, target)


def _load_builtin() -> None:
    from abbe.models.export import (  # noqa: F401  (each registers itself)
        bioimage_package,
        onnx_export,
        torchscript,
    )
