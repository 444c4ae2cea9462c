"""Hand-made bioimage.io packages (spec 0.5) for the import tests: a 2-layer conv net as
TorchScript and as a state dict with its architecture source, scale_range + scale_linear
preprocessing, and test tensors computed here, independently of abbe's processing code."""

from __future__ import annotations

import hashlib
import io
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

NUCLEI = "models/bioimageio_unet2d_nuclei_broad"


@pytest.fixture(scope="module", autouse=True)
def private_home(tmp_path_factory):
    """onnxruntime and torch write under ~/.cache: keep the tests out of the user's home
    (autouse in every module that imports it)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        yield


def nuclei_folder(shared_data: Path) -> Path:
    """The third-party nuclei U-Net package in ../shared, or skip where it or onnxruntime is
    missing."""
    folder = shared_data / NUCLEI
    if not folder.is_dir():
        pytest.skip(f"{folder} is not present")
    pytest.importorskip("onnxruntime")
    return folder


ARCH = '''
import torch


class Tiny(torch.nn.Module):
    """Two 3×3 convolutions: a receptive radius of 2 pixels."""

    def __init__(self, width=4, out_channels=1):
        super().__init__()
        self.a = torch.nn.Conv2d(1, width, 3, padding=1)
        self.b = torch.nn.Conv2d(width, out_channels, 3, padding=1)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))
'''

LOW, HIGH, GAIN, OFFSET = 1.0, 99.0, 2.0, -1.0


def tiny_network(seed: int = 0, out_channels: int = 1) -> Any:
    import torch

    namespace: dict[str, Any] = {}
    exec(compile(ARCH, "tiny_arch.py", "exec"), namespace)
    torch.manual_seed(seed)
    return namespace["Tiny"](width=4, out_channels=out_channels).eval()


def expected_output(net: Any, x: np.ndarray) -> np.ndarray:
    """What the package must give for ``x`` (B, C, Y, X): percentiles of each sample's image,
    the linear map, the network with its zero padding (no tiling)."""
    import torch

    lo = np.percentile(x, LOW, axis=(2, 3), keepdims=True)
    hi = np.percentile(x, HIGH, axis=(2, 3), keepdims=True)
    pre = ((x - lo) / (hi - lo + 1e-6)) * GAIN + OFFSET
    with torch.no_grad():
        return net(torch.from_numpy(pre.astype(np.float32))).numpy()


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def tiny_rdf(pixel_size_um: float | None = None, out_channels: int = 1) -> dict[str, Any]:
    # Spec 0.5: a space axis's scale and unit hold for inputs and outputs alike.
    unit = {} if pixel_size_um is None else {"scale": pixel_size_um, "unit": "micrometer"}
    space = {"size": {"min": 16, "step": 8}, **unit}

    def same(axis_id: str) -> dict[str, str]:
        return {"tensor_id": "raw", "axis_id": axis_id}

    return {
        "format_version": "0.5.4",
        "type": "model",
        "name": "tiny conv",
        "description": "Two convolutions, for tests.",
        "cite": [{"text": "Tiny et al. 2026", "doi": "10.0000/tiny"}],
        "license": "MIT",
        "inputs": [
            {
                "id": "raw",
                "axes": [
                    {"type": "batch"},
                    {"type": "channel", "channel_names": ["raw"]},
                    {"type": "space", "id": "y", **space},
                    {"type": "space", "id": "x", **space},
                ],
                "test_tensor": {"source": "test_input.npy"},
                "preprocessing": [
                    {
                        "id": "scale_range",
                        "kwargs": {
                            "axes": ["y", "x"],
                            "min_percentile": LOW,
                            "max_percentile": HIGH,
                        },
                    },
                    {"id": "scale_linear", "kwargs": {"gain": GAIN, "offset": OFFSET}},
                ],
            }
        ],
        "outputs": [
            {
                "id": "restored",
                "axes": [
                    {"type": "batch"},
                    {
                        "type": "channel",
                        "channel_names": [f"restored{c}" for c in range(out_channels)],
                    },
                    *(
                        {"type": "space", "id": a, "halo": 4, "size": same(a), **unit}
                        for a in ("y", "x")
                    ),
                ],
                "test_tensor": {"source": "test_output.npy"},
            }
        ],
        "weights": {},
    }


def make_package(
    target: Path,
    *,
    formats: tuple[str, ...] = ("torchscript",),
    edit: Callable[[dict[str, Any]], None] | None = None,
    pixel_size_um: float | None = None,
    drop: tuple[str, ...] = (),
    as_zip: bool = True,
    seed: int = 0,
    out_channels: int = 1,
) -> Path:
    """Write a tiny package to ``target`` (a .zip, or a folder when ``as_zip`` is False).

    ``edit`` changes the RDF before it is written; ``drop`` leaves files out after their hashes
    went into the RDF (a package that names a file it lacks)."""
    import torch

    net = tiny_network(seed, out_channels)
    rng = np.random.default_rng(seed)
    x = rng.gamma(2.0, 50.0, size=(1, 1, 48, 40)).astype(np.float32)
    files: dict[str, bytes] = {
        "test_input.npy": _npy(x),
        "test_output.npy": _npy(expected_output(net, x)),
    }
    rdf = tiny_rdf(pixel_size_um, out_channels)
    if "torchscript" in formats:
        buf = io.BytesIO()
        with warnings.catch_warnings():  # torch 2.13 marks TorchScript deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(torch.jit.trace(net, torch.from_numpy(x)), buf)
        files["weights.pt"] = buf.getvalue()
        rdf["weights"]["torchscript"] = {"source": "weights.pt"}
    if "pytorch_state_dict" in formats:
        buf = io.BytesIO()
        torch.save(net.state_dict(), buf)
        files["state.pt"] = buf.getvalue()
        files["tiny_arch.py"] = ARCH.encode()
        rdf["weights"]["pytorch_state_dict"] = {
            "source": "state.pt",
            "architecture": {
                "source": "tiny_arch.py",
                "callable": "Tiny",
                "kwargs": {"width": 4, "out_channels": out_channels},
                "sha256": hashlib.sha256(files["tiny_arch.py"]).hexdigest(),
            },
        }
    for entry in rdf["weights"].values():
        entry["sha256"] = hashlib.sha256(files[entry["source"]]).hexdigest()
        entry["pytorch_version"] = torch.__version__.split("+")[0]  # required by spec 0.5
    for t in (*rdf["inputs"], *rdf["outputs"]):
        t["test_tensor"]["sha256"] = hashlib.sha256(files[t["test_tensor"]["source"]]).hexdigest()
    if edit is not None:
        edit(rdf)
    files["rdf.yaml"] = yaml.safe_dump(rdf, sort_keys=False).encode()
    for name in drop:
        files.pop(name, None)
    return write_files(target, files, as_zip=as_zip)


def write_files(target: Path, files: dict[str, bytes], *, as_zip: bool = True) -> Path:
    if as_zip:
        with zipfile.ZipFile(target, "w") as z:
            for name, data in files.items():
                z.writestr(name, data)
    else:
        target.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (target / name).write_bytes(data)
    return target
