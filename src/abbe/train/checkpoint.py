"""Training checkpoints without pickle: tensors in safetensors, everything else as JSON.

Lightning's own checkpoints are pickled, and unpickling runs code; abbe never loads pickles. This
``CheckpointIO`` stores a checkpoint (model, optimizer, loop and callback states) as one
safetensors file whose metadata holds the non-tensor tree as JSON, written atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import CheckpointIO
from safetensors import safe_open
from safetensors.torch import save_file

from abbe.errors import ModelError
from abbe.io.atomic import temp_sibling

_TREE_KEY = "abbe_checkpoint_tree"


def flatten(obj: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split a nested checkpoint into a JSON-able tree and a flat dict of tensors."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(o: Any) -> Any:
        if isinstance(o, torch.Tensor):
            key = f"t{len(tensors)}"
            tensors[key] = o.detach().cpu().contiguous().clone()
            return {"__tensor__": key}
        if isinstance(o, dict):
            if all(isinstance(k, str) for k in o):
                return {"__dict__": {k: walk(v) for k, v in o.items()}}
            return {"__items__": [[walk(k), walk(v)] for k, v in o.items()]}
        if isinstance(o, tuple):
            return {"__tuple__": [walk(v) for v in o]}
        if isinstance(o, list):
            return [walk(v) for v in o]
        if o is None or isinstance(o, bool | int | float | str):
            return o
        if hasattr(o, "item") and callable(o.item):  # numpy scalars
            return o.item()
        if isinstance(o, os.PathLike):
            return os.fspath(o)
        raise ModelError(f"cannot store a {type(o).__name__} in a checkpoint")

    return walk(obj), tensors


def unflatten(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten`."""
    if isinstance(tree, list):
        return [unflatten(v, tensors) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if "__tensor__" in tree:
        return tensors[tree["__tensor__"]]
    if "__dict__" in tree:
        return {k: unflatten(v, tensors) for k, v in tree["__dict__"].items()}
    if "__items__" in tree:
        return {unflatten(k, tensors): unflatten(v, tensors) for k, v in tree["__items__"]}
    if "__tuple__" in tree:
        return tuple(unflatten(v, tensors) for v in tree["__tuple__"])
    raise ModelError("corrupt checkpoint tree")


def save(checkpoint: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a checkpoint atomically as safetensors + JSON metadata."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tree, tensors = flatten(checkpoint)
    tmp = temp_sibling(final)
    try:
        save_file(tensors, str(tmp), metadata={_TREE_KEY: json.dumps(tree)})
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def load(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save`."""
    device = map_location if isinstance(map_location, str | torch.device) else "cpu"
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise ModelError(f"not a readable abbe checkpoint ({exc})", path) from None
    if _TREE_KEY not in meta:
        raise ModelError("not an abbe training checkpoint", path)
    return unflatten(json.loads(meta[_TREE_KEY]), tensors)


class SafeCheckpointIO(CheckpointIO):
    """Lightning plugin that reads and writes checkpoints with :func:`save` and :func:`load`."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        save(checkpoint, path)

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load(path, map_location or "cpu")

    def remove_checkpoint(self, path: Any) -> None:
        Path(path).unlink(missing_ok=True)
