"""Run a package's weights: TorchScript, ONNX (onnxruntime) or a PyTorch state dict.

:func:`open_weights` picks the first format that abbe can run and whose file is in the package,
in the order TorchScript, ONNX, PyTorch state dict, and returns a :class:`Runner` mapping a
float32 array in the package's input axis order to the output array.
"""

from __future__ import annotations

import io
import types
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from abbe.errors import InputError
from abbe.models.packages.spec import (
    NOT_RUNNABLE,
    RUNNABLE,
    PackageFiles,
    PackageSpec,
    is_url,
    verified,
)


@dataclass
class Runner:
    """A loaded network: ``format`` (the weight format), ``skipped`` (formats passed over and
    why) and :meth:`__call__` (array in the package's input axes → output array)."""

    format: str
    skipped: dict[str, str]
    _call: Any
    _to: Any = None

    def __call__(self, x: np.ndarray, device: str | None = "auto") -> np.ndarray:
        return self._call(x, device)

    def to(self, device: str | None) -> None:
        if self._to is not None:
            self._to(device)


def open_weights(spec: PackageSpec, files: PackageFiles, *, weights: str | None = None) -> Runner:
    """Load the preferred runnable weights of a package, or only the format ``weights``.

    Raises
    ------
    InputError
        When no entry is runnable: only TensorFlow/Keras weights, files missing from the package
        (or given as URLs, which abbe does not download), or a state dict whose architecture
        cannot be built; the message lists each format and why. With ``weights``: when that
        format is not one abbe runs, not in the package, or not runnable.
    """
    skipped: dict[str, str] = {}
    if weights is not None:
        if weights not in RUNNABLE:
            raise InputError(
                f"weights {weights!r}: abbe runs {', '.join(RUNNABLE)} weights", spec.path
            )
        if weights not in spec.weights:
            listed = ", ".join(spec.weights) or "none"
            raise InputError(f"has no {weights} weights (it lists {listed})", spec.path)
    for fmt in RUNNABLE if weights is None else (weights,):
        entry = spec.weights.get(fmt)
        if entry is None:
            continue
        source = str(entry.get("source", ""))
        if not source:
            skipped[fmt] = "no 'source'"
        elif is_url(source):
            skipped[fmt] = f"{source} is a URL (abbe does not download weights)"
        elif not files.exists(source):
            skipped[fmt] = f"{source} is not in the package"
        else:
            data = verified(files, source, entry.get("sha256"))
            loader = {"torchscript": _torchscript, "onnx": _onnx, "pytorch_state_dict": _state}
            runner = loader[fmt](data, entry, spec, files, skipped)
            if runner is not None:
                return runner
    others = [f for f in spec.weights if f in NOT_RUNNABLE]
    reasons = "; ".join(f"{k}: {v}" for k, v in skipped.items())
    if others and not skipped:
        raise InputError(
            f"has only {', '.join(others)} weights; abbe runs torchscript, onnx or "
            "pytorch_state_dict weights (convert the package with bioimageio.core)",
            spec.path,
        )
    raise InputError(
        f"no weights abbe can run ({reasons or 'none listed'}); abbe runs torchscript, onnx "
        "or pytorch_state_dict weights stored in the package",
        spec.path,
    )


# ----------------------------------------------------------------------------- formats
def _torch_call(net: Any) -> tuple[Any, Any]:
    import torch

    from abbe.compute import resolve_device

    state = {"device": torch.device("cpu")}

    def to(device: str | None) -> None:
        dev = resolve_device(device)
        if dev != state["device"]:
            net.to(dev)
            state["device"] = dev

    def call(x: np.ndarray, device: str | None) -> np.ndarray:
        to(device)
        with torch.inference_mode():
            y = net(torch.from_numpy(np.ascontiguousarray(x)).to(state["device"]))
        if isinstance(y, list | tuple):
            y = y[0]
        return y.float().cpu().numpy()

    return call, to


def _torchscript(data: bytes, entry: dict, spec: PackageSpec, files: PackageFiles, skipped: dict):
    import torch

    try:
        with warnings.catch_warnings():
            # torch 2.13 marks TorchScript deprecated; bioimage.io packages still ship it.
            warnings.simplefilter("ignore", DeprecationWarning)
            net = torch.jit.load(io.BytesIO(data), map_location="cpu").eval()
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise InputError(
            f"{entry['source']}: not a TorchScript archive ({first})", spec.path
        ) from None
    call, to = _torch_call(net)
    return Runner("torchscript", skipped, call, to)


def _onnx(data: bytes, entry: dict, spec: PackageSpec, files: PackageFiles, skipped: dict):
    try:
        import onnxruntime as ort
    except ImportError:
        skipped["onnx"] = "onnxruntime is not installed (pip install 'abbe[onnx]')"
        return None
    import torch

    sessions: dict[tuple[str, int], Any] = {}

    def session(device: str | None) -> Any:
        # CUDA when the device asks for it and onnxruntime has the provider; else CPU, on as
        # many threads as torch is set to (--threads, abbe.compute.torch_threads).
        from abbe.compute import resolve_device

        kind = resolve_device(device).type
        key = (kind, torch.get_num_threads())
        providers = ["CPUExecutionProvider"]
        if kind == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        if key not in sessions:
            options = ort.SessionOptions()
            options.intra_op_num_threads = key[1]
            try:
                sessions[key] = ort.InferenceSession(data, options, providers=providers)
            except Exception as exc:  # onnxruntime raises its own error kinds
                first = str(exc).strip().splitlines()[0]
                raise InputError(
                    f"{entry['source']}: onnxruntime cannot load it ({first})", spec.path
                ) from None
        return sessions[key]

    def call(x: np.ndarray, device: str | None) -> np.ndarray:
        s = session(device)
        name = s.get_inputs()[0].name
        return np.asarray(s.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0])

    session("cpu")  # a broken file fails at load, not in the middle of an image
    return Runner("onnx", skipped, call)


def _state(data: bytes, entry: dict, spec: PackageSpec, files: PackageFiles, skipped: dict):
    """A state dict with its architecture.

    The architecture is **code from the package**: its ``source`` file is executed (or its
    ``import_from`` module imported) to build the network, so load state-dict packages only from
    sources you trust. The weights themselves are read with ``torch.load(weights_only=True)``:
    tensors only, never pickled objects.
    """
    import torch

    arch = entry.get("architecture") or {}
    callable_name = arch.get("callable")
    if not callable_name:
        skipped["pytorch_state_dict"] = "no architecture callable"
        return None
    if arch.get("source"):
        src = str(arch["source"])
        if is_url(src) or not files.exists(src):
            skipped["pytorch_state_dict"] = f"architecture {src} is not in the package"
            return None
        code = verified(files, src, arch.get("sha256")).decode("utf-8")
        module = types.ModuleType(f"abbe_package_{src.replace('.', '_').replace('/', '_')}")
        exec(compile(code, src, "exec"), module.__dict__)  # the package's own code
    else:
        import importlib

        try:
            module = importlib.import_module(str(arch.get("import_from", "")))
        except ImportError:
            skipped["pytorch_state_dict"] = f"cannot import {arch.get('import_from')!r}"
            return None
    try:
        net = getattr(module, str(callable_name))(**dict(arch.get("kwargs") or {}))
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    except Exception as exc:  # the package's code and weights can fail in any way
        raise InputError(
            f"{entry['source']}: cannot build {callable_name} with these weights "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
            spec.path,
        ) from None
    call, to = _torch_call(net.eval())
    return Runner("pytorch_state_dict", skipped, call, to)
