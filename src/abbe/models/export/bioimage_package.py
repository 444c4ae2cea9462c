"""bioimage.io export: a BioImage Model Zoo package (spec 0.5) written once for every method.

The package is a zip of ``rdf.yaml`` and the files it names: TorchScript, ONNX and PyTorch
state-dict weights (the state dict with a small architecture file that rebuilds the network
through abbe), test input and output tensors (``.npy``), a cover image and a README. What the
package says about inputs and outputs (percentile normalization as ``scale_range``, sigmoid,
softmax, fixed gains, channel names, the output scale of a super-resolution model) comes from
:meth:`abbe.models.base.Model.export_info`; the physical pixel size from the model's config.

The test output is computed by the package itself: the test input goes through the declared
pre-processing (re-implemented here in numpy, so that ``bioimageio test`` checks an independent
implementation), the TorchScript file read back from the package, and the declared
post-processing. ONNX and TorchScript must agree on it within :data:`AGREEMENT` (else a warning).

Spec: https://bioimage.io (model RDF 0.5); checked with ``bioimageio.core`` 0.11.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import yaml

from abbe import __version__
from abbe.errors import AbbeWarning
from abbe.io.atomic import atomic_path
from abbe.models.base import ExportInfo
from abbe.models.export import register

FORMAT_VERSION = "0.5.4"
RDF = "rdf.yaml"
INPUT_ID, OUTPUT_ID = "raw", "prediction"
#: Most absolute difference (normalized units) allowed between the ONNX and TorchScript outputs.
AGREEMENT = 1e-4
#: Smallest spatial edge a package accepts (rounded up to the network's multiple).
MIN_EDGE = 16
#: Smallest Y/X edge of the test tensors, from which the cover is made: large enough to show
#: structure (a few filaments, a dozen nuclei), small enough to keep `bioimageio test` quick.
COVER_EDGE = 128
EPS = 1e-6  # scale_range's epsilon (the spec's default)

_FILES = {
    "torchscript": "weights_torchscript.pt",
    "onnx": "weights.onnx",
    "state_dict": "weights_state_dict.pt",
    "architecture": "abbe_architecture.py",
    "environment": "environment.yaml",
    "test_input": "test_input.npy",
    "test_output": "test_output.npy",
    "sample_input": "sample_input.tif",
    "sample_output": "sample_output.tif",
    "cover": "cover.png",
    "readme": "README.md",
}

_ARCHITECTURE = '''"""Rebuild the network of an abbe model for the pytorch_state_dict weights.

Needs abbe (see environment.yaml); the TorchScript and ONNX weights need nothing but their
runtime.
"""


def build(method: str, config: dict):
    """The untrained network of an abbe ``method`` with the model's ``config``."""
    from abbe.models.registry import model_class

    cls = model_class(method)
    return cls(cls.config_class.model_validate(config)).network
'''


@register("bioimageio")
def export_bioimageio(model: Any, path: Path) -> Path:
    """Write ``model`` as a bioimage.io model package (a zip, atomically) at ``path``.

    A model whose output is no image, map or class scores (the learned localizer's table)
    raises :class:`abbe.errors.ModelError` from its ``export_info`` before anything is written.
    """
    info = model.export_info()
    with tempfile.TemporaryDirectory(prefix="abbe-bioimageio-") as work:
        folder = Path(work)
        write_package_folder(model, info, folder)
        with atomic_path(path, overwrite=True) as tmp:
            _zip(folder, tmp)
    return path


def write_package_folder(model: Any, info: ExportInfo, folder: Path) -> Path:
    """Write every file of the package into ``folder`` and return its ``rdf.yaml``."""
    import torch

    from abbe.models.export.onnx_export import export_onnx
    from abbe.models.export.torchscript import export_torchscript

    export_torchscript(model, folder / _FILES["torchscript"])
    export_onnx(model, folder / _FILES["onnx"])
    state = {k: v.detach().cpu().contiguous() for k, v in model.network.state_dict().items()}
    torch.save(state, folder / _FILES["state_dict"])
    (folder / _FILES["architecture"]).write_text(_ARCHITECTURE)
    (folder / _FILES["environment"]).write_text(_environment())

    raw = sample_input(model, info)
    output = run_package(folder / _FILES["torchscript"], raw, info)
    caveats = _check_onnx_agrees(folder, raw, info, output)
    np.save(folder / _FILES["test_input"], raw)
    np.save(folder / _FILES["test_output"], output)
    # Sample tensors (FAIR): the same arrays as TIFF, which image viewers open.
    tifffile.imwrite(folder / _FILES["sample_input"], raw)
    tifffile.imwrite(folder / _FILES["sample_output"], output)
    (folder / _FILES["cover"]).write_bytes(cover_png(raw, output, info))
    (folder / _FILES["readme"]).write_text(readme(model, info))
    rdf = describe(model, info, folder)
    rdf["config"]["abbe"]["warnings"] = caveats
    target = folder / RDF
    target.write_text(yaml.safe_dump(rdf, sort_keys=False, allow_unicode=True))
    return target


# ----------------------------------------------------------------------------- test tensors
def sample_input(model: Any, info: ExportInfo, seed: int = 0) -> np.ndarray:
    """A raw test image ``(1, C, *spatial)`` float32 of :func:`test_shape`, seeded, of what the
    model is for (:attr:`ExportInfo.sample`): a simulated widefield image of filaments at the
    model's pixel size, simulated nuclei of the model's size, or generic blobs."""
    shape = (1, model.example_input().shape[1], *test_shape(model, info))
    spatial = shape[2:]
    if info.sample == "filaments" and len(spatial) == 2:
        image = _filaments(spatial, pixel_size_nm(model) or 100.0, seed)
    elif info.sample == "nuclei" and len(spatial) == 2:
        image = _nuclei(spatial, getattr(model.config, "typical_radius_px", None), seed)
    else:
        image = _blobs(spatial, info, seed)
    return np.broadcast_to(image, shape).astype(np.float32).copy()


def _filaments(shape: tuple[int, ...], pixel_size_nm: float, seed: int) -> np.ndarray:
    """Dim widefield filaments (peak 20 photons over 5, sCMOS noise), as in abbe's sample."""
    from abbe.simulate import widefield

    sim = widefield(
        "filaments",
        size=(int(shape[0]), int(shape[1])),
        pixel_size_nm=pixel_size_nm,
        photons=20.0,
        background=5.0,
        seed=seed,
    )
    return np.asarray(sim.input, np.float32)


def _nuclei(shape: tuple[int, ...], radius_px: float | None, seed: int) -> np.ndarray:
    """Simulated nuclei; their long semi-axis around the size the model was trained for
    (segmentation packages hold no zoom to the model's nucleus size)."""
    from abbe.models.base import revalidated
    from abbe.simulate.cells import NucleiImageConfig, nuclei_image

    config = NucleiImageConfig()
    if radius_px:
        config = revalidated(config, {"radius_px": (0.8 * radius_px, 1.25 * radius_px)})
    return nuclei_image((int(shape[0]), int(shape[1])), config, seed=seed).image


def _blobs(shape: tuple[int, ...], info: ExportInfo, seed: int) -> np.ndarray:
    """Blobs of several sizes on a background, with shot noise, in photons; for a model with a
    fixed input gain (frames in photo-electrons) median-subtracted and brightened so that the
    blobs peak near ``1 / input_gain``."""
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij")
    signal = np.zeros(shape, np.float32)
    small = min(shape[-2:])
    for _ in range(max(4, int(np.prod(shape[-2:]) / 300))):
        centre = [rng.uniform(0.1 * n, 0.9 * n) for n in shape]
        radius = rng.uniform(1.0, small / 8)
        r2 = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True))
        signal += rng.uniform(0.3, 1.0) * np.exp(-r2 / (2 * radius**2)).astype(np.float32)
    peak = 100.0 if info.input_gain is None else 2.0 / info.input_gain
    photons = rng.poisson(peak * signal / max(float(signal.max()), 1e-6) + 0.1 * peak)
    image = photons.astype(np.float32)
    if info.input_gain is not None:
        image -= np.float32(np.median(image))
    return image


def preprocess(raw: np.ndarray, info: ExportInfo) -> np.ndarray:
    """The package's declared pre-processing, in numpy: percentiles of each sample and
    channel over the spatial axes to 0 and 1 (``scale_range``), or a fixed gain."""
    x = raw.astype(np.float32)
    if info.percentiles is not None:
        axes = tuple(range(2, x.ndim))
        lo = np.percentile(x, info.percentiles[0], axis=axes, keepdims=True)
        hi = np.percentile(x, info.percentiles[1], axis=axes, keepdims=True)
        x = (x - lo) / (hi - lo + EPS)
    if info.input_gain is not None:
        x = x * np.float32(info.input_gain)
    return x.astype(np.float32)


def postprocess(y: np.ndarray, info: ExportInfo) -> np.ndarray:
    """The package's declared post-processing, in numpy (gain, activation, clip)."""
    y = y.astype(np.float32)
    if info.output_gain is not None:
        y = y * np.float32(info.output_gain)
    if info.activation == "sigmoid":
        y = 1.0 / (1.0 + np.exp(-y))
    elif info.activation == "softmax":
        z = np.exp(y - y.max(axis=1, keepdims=True))
        y = z / z.sum(axis=1, keepdims=True)
    if info.clip_min is not None:
        y = np.maximum(y, np.float32(info.clip_min))
    return y.astype(np.float32)


def run_package(torchscript: Path, raw: np.ndarray, info: ExportInfo) -> np.ndarray:
    """What the package computes for ``raw``: pre-processing, the TorchScript weights (read
    back from the file), post-processing."""
    import torch

    net = torch.jit.load(str(torchscript), map_location="cpu").eval()
    with torch.no_grad():
        y = net(torch.from_numpy(preprocess(raw, info))).numpy()
    return postprocess(y, info)


def _check_onnx_agrees(
    folder: Path, raw: np.ndarray, info: ExportInfo, expected: np.ndarray
) -> list[str]:
    """Warn (and return the message) when ONNX Runtime's output differs from TorchScript's by
    more than AGREEMENT on the test input."""
    try:
        import onnxruntime as ort
    except ImportError:  # the package is still valid; bioimageio test would run it
        return []
    session = ort.InferenceSession(str(folder / _FILES["onnx"]), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {session.get_inputs()[0].name: preprocess(raw, info)})
    diff = float(np.max(np.abs(postprocess(y, info) - expected)))
    if diff <= AGREEMENT:
        return []
    message = (
        f"the ONNX weights differ from the TorchScript weights by up to {diff:.2g} on the "
        f"test input (more than {AGREEMENT:g}); use the TorchScript weights"
    )
    warnings.warn(message, AbbeWarning, stacklevel=3)
    return [message]


# ----------------------------------------------------------------------------- description
def describe(model: Any, info: ExportInfo, folder: Path) -> dict[str, Any]:
    """The spec-0.5 model description (``rdf.yaml``) of the files in ``folder``."""
    import torch

    cfg = model.config
    name = cfg.name or cfg.method
    files = {key: folder / f for key, f in _FILES.items()}
    torch_version = torch.__version__.split("+")[0]
    cite = [
        {"text": c.text, **({"doi": c.doi} if c.doi else {}), **({"url": c.url} if c.url else {})}
        for c in info.citations
    ]
    return {
        "type": "model",
        "format_version": FORMAT_VERSION,
        "name": f"abbe {name}",
        "description": _short(cfg.description or info.output_description, 1024),
        "authors": [{"name": "abbe developers"}],
        "cite": cite,
        "license": "BSD-3-Clause",
        "documentation": _FILES["readme"],
        "covers": [_FILES["cover"]],
        "tags": sorted({*info.tags, "abbe", "fluorescence-light-microscopy", "pytorch"}),
        "version": __version__,
        "timestamp": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "inputs": [_input(model, info, files)],
        "outputs": [_output(model, info, files)],
        "weights": {
            "pytorch_state_dict": {
                **_file(files["state_dict"]),
                "architecture": {
                    **_file(files["architecture"]),
                    "callable": "build",
                    "kwargs": {"method": cfg.method, "config": cfg.model_dump(mode="json")},
                },
                "pytorch_version": torch_version,
                "dependencies": _file(files["environment"]),
            },
            "torchscript": {
                **_file(files["torchscript"]),
                "parent": "pytorch_state_dict",
                "pytorch_version": torch_version,
            },
            "onnx": {
                **_file(files["onnx"]),
                "parent": "pytorch_state_dict",
                "opset_version": 17,
            },
        },
        "config": {"abbe": _abbe_config(model, info, name)},
    }


def _abbe_config(model: Any, info: ExportInfo, name: str) -> dict[str, Any]:
    """The package's ``config.abbe``: what abbe needs to run the package as it runs the model.

    For a restoration model, ``output: input-normalized`` with the ``percentiles`` of the
    input's ``scale_range`` and the ``normalized_channels`` in those units: abbe's import
    multiplies them back into the input's units (the spec has no step that undoes another
    tensor's percentiles, so other tools give normalized units)."""
    from abbe.restore.model import RestorationModel

    cfg = model.config
    entry: dict[str, Any] = {"version": __version__, "method": cfg.method, "name": name}
    if isinstance(model, RestorationModel) and info.percentiles is not None:
        entry["output"] = "input-normalized"
        entry["percentiles"] = [float(p) for p in info.percentiles]
        entry["normalized_channels"] = [info.output_channels[0]]  # the mean, not log b
    return entry


def _file(path: Path) -> dict[str, str]:
    return {"source": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _short(text: str, limit: int = 128) -> str:
    """The spec's short descriptions (at most ``limit`` characters): the first clause, cut
    at a word if still too long; the README has the whole text."""
    text = _one_line(text)
    if len(text) <= limit:
        return text
    text = text.split(";")[0].split(":")[0]
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0] + "…"


def pixel_size_nm(model: Any) -> float | None:
    """The pixel size the model was trained for, in nm (None when the model has none).

    Nanometres, not µm: pixel sizes are whole nanometres as a rule, and whole numbers keep the
    spec's size and halo arithmetic exact in floating point (100 nm → 50 nm is exact;
    0.1 µm → 0.05 µm made 81 input pixels 161 output pixels)."""
    px = getattr(model.config, "pixel_size_nm", None)
    return float(px) if px else None


def input_sizes(model: Any, info: ExportInfo) -> list[tuple[int, int]]:
    """``(min, step)`` of each spatial input axis (``(n, 0)``: fixed at n). Y and X hold at
    least twice the halo plus :data:`MIN_EDGE` (the spec's rule for cropping the halo), each a
    multiple of the network's; Z (no halo) one multiple."""
    if info.fixed_size:
        return [(info.fixed_size, 0)] * len(info.spatial_axes)
    n = len(info.spatial_axes)
    multiple = list(getattr(model.network_config, "multiple", (1,) * n))
    sizes = []
    for i, a in enumerate(info.spatial_axes.lower()):
        m = int(multiple[i]) if i < len(multiple) else 1
        edge = m if a == "z" else 2 * _halo(model) + MIN_EDGE
        sizes.append((m * -(-edge // m), m))
    return sizes


def test_shape(model: Any, info: ExportInfo) -> tuple[int, ...]:
    """Spatial shape of the test tensors: the example input's, grown to :data:`COVER_EDGE` in
    Y and X (the cover is made from them) and to the smallest size the package accepts."""
    example = list(model.example_input().shape[2:])
    for i in range(max(0, len(example) - 2), len(example)):
        example[i] = max(example[i], COVER_EDGE)
    shape = []
    for edge, (low, step) in zip(example, input_sizes(model, info), strict=True):
        if step == 0:
            shape.append(low)
        else:
            shape.append(low + step * max(0, -(-(edge - low) // step)))
    return tuple(shape)


def _space_axes(model: Any, info: ExportInfo) -> list[dict[str, Any]]:
    """The input's spatial axes: sizes as :func:`input_sizes` says, the pixel size as scale in
    nm where the model knows it."""
    px = pixel_size_nm(model)
    axes = []
    sizes = input_sizes(model, info)
    for a, (low, step) in zip(info.spatial_axes.lower(), sizes, strict=True):
        size: Any = low if step == 0 else {"min": low, "step": step}
        axis: dict[str, Any] = {"type": "space", "id": a, "size": size}
        if px is not None and a != "z":
            axis.update(unit="nanometer", scale=px)
        axes.append(axis)
    return axes


def output_scale(input_scale: float, factor: int, largest: int = 8192) -> float:
    """The output axis' scale for an output ``factor``× finer: ``input_scale / factor``, made
    smaller by a few units in the last place where needed so that the spec's size rule,
    ``int(size · input_scale / output_scale)``, gives ``size · factor`` for every input size up
    to ``largest`` (0.1 µm / 0.05 µm gave 161 for 81 pixels: 8.1/0.05 = 161.99999999999997)."""
    scale = input_scale / factor
    sizes = np.arange(1, largest + 1)
    for _ in range(16):
        got = [int(n * input_scale / scale) for n in sizes.tolist()]
        if got == (sizes * factor).tolist():
            return float(scale)
        scale = float(np.nextafter(scale, 0.0))
    raise AssertionError(f"no output scale for {input_scale} / {factor}")  # not seen


def _halo(model: Any) -> int:
    """Input pixels of context that influence an output pixel (0 when unknown)."""
    return int(getattr(model.network_config, "receptive_radius", 0) or 0)


def _input(model: Any, info: ExportInfo, files: dict[str, Path]) -> dict[str, Any]:
    pre: list[dict[str, Any]] = [{"id": "ensure_dtype", "kwargs": {"dtype": "float32"}}]
    if info.percentiles is not None:
        low, high = info.percentiles
        pre.append(
            {
                "id": "scale_range",
                "kwargs": {
                    "axes": list(info.spatial_axes.lower()),
                    "min_percentile": float(low),
                    "max_percentile": float(high),
                    "eps": EPS,
                },
            }
        )
    if info.input_gain is not None:
        pre.append(
            {"id": "scale_linear", "kwargs": {"gain": float(info.input_gain), "offset": 0.0}}
        )
    pre.append({"id": "ensure_dtype", "kwargs": {"dtype": "float32"}})
    return {
        "id": INPUT_ID,
        "description": _short(info.input_description),
        "axes": [
            {"type": "batch"},
            {"type": "channel", "channel_names": list(info.input_channels)},
            *_space_axes(model, info),
        ],
        "test_tensor": _file(files["test_input"]),
        "sample_tensor": _file(files["sample_input"]),
        "data": {"type": "float32"},
        "preprocessing": pre,
    }


def _output(model: Any, info: ExportInfo, files: dict[str, Path]) -> dict[str, Any]:
    axes: list[dict[str, Any]] = [
        {"type": "batch"},
        {"type": "channel", "channel_names": list(info.output_channels)},
    ]
    if info.kind == "image":
        for axis in _space_axes(model, info):
            a = axis["id"]
            # Output size = input size × the input's scale / this axis' scale (spec 0.5).
            scale = output_scale(axis.get("scale", 1.0), info.scale if a != "z" else 1)
            out = {
                "type": "space",
                "id": a,
                "size": {"tensor_id": INPUT_ID, "axis_id": a},
                "scale": scale,
            }
            if "unit" in axis:
                out["unit"] = axis["unit"]
            halo = _halo(model) * info.scale if a != "z" else 0
            # The spec infers the input's halo as halo · scale_out / scale_in and wants an
            # integer; a pixel size whose float arithmetic misses it loses the halo (tools
            # then tile without cropping, as with no halo at all).
            if halo and halo * scale / axis.get("scale", 1.0) != halo // info.scale:
                halo = 0
            if halo:
                # Tools that tile crop this much of each tile's border: no seams (abbe's own
                # tiling keeps the same context, so tiled equals untiled).
                out["halo"] = halo
            axes.append(out)
    post: list[dict[str, Any]] = []
    if info.output_gain is not None:
        post.append(
            {"id": "scale_linear", "kwargs": {"gain": float(info.output_gain), "offset": 0.0}}
        )
    if info.activation == "sigmoid":
        post.append({"id": "sigmoid"})
    elif info.activation == "softmax":
        post.append({"id": "softmax", "kwargs": {"axis": "channel"}})
    if info.clip_min is not None:
        post.append({"id": "clip", "kwargs": {"min": float(info.clip_min)}})
    post.append({"id": "ensure_dtype", "kwargs": {"dtype": "float32"}})
    data: dict[str, Any] = {"type": "float32"}
    if info.output_range is not None:
        data["range"] = list(info.output_range)
    return {
        "id": OUTPUT_ID,
        "description": _short(info.output_description),
        "axes": axes,
        "test_tensor": _file(files["test_output"]),
        "sample_tensor": _file(files["sample_output"]),
        "data": data,
        "postprocessing": post,
    }


def _environment() -> str:
    import torch

    return yaml.safe_dump(
        {
            "name": "abbe",
            "channels": ["conda-forge", "nodefaults"],
            "dependencies": [
                "python>=3.10",
                "pip",
                {"pip": [f"abbe=={__version__}", f"torch=={torch.__version__.split('+')[0]}"]},
            ],
        },
        sort_keys=False,
    )


# ----------------------------------------------------------------------------- documentation
def readme(model: Any, info: ExportInfo) -> str:
    """README.md: what the model does, its input and output, training data, scores, limits,
    how to run it, papers and licence."""
    cfg = model.config
    name = cfg.name or cfg.method
    data = cfg.training_data or {}
    lines = [f"# abbe {name}", "", _one_line(cfg.description or info.output_description), ""]
    lines += ["## Input and output", ""]
    lines += [
        f"- **Input** `{INPUT_ID}` ({info.spatial_axes}): {_one_line(info.input_description)}."
    ]
    lines += [f"- **Output** `{OUTPUT_ID}`: {_one_line(info.output_description)}."]
    lines += [f"- Output channels: {', '.join(info.output_channels)}."]
    if info.scale > 1:
        lines += [f"- The output has {info.scale}× the pixels of the input along Y and X."]
    px = getattr(cfg, "pixel_size_nm", None)
    lines += [
        f"- Pixel size trained for: {px:g} nm."
        if px
        else "- Pixel size: none recorded (the axes carry no physical unit)."
    ]
    lines += ["", "## Training data", ""]
    lines += [f"- {_one_line(str(data['summary']))}" if data.get("summary") else "- not recorded"]
    for key, value in (data.get("ranges") or {}).items():
        lines += [f"- {key}: {value[0]:g}–{value[1]:g}"]
    lines += ["", "## Validation", "", "Scores from the model folder's metrics.json:", ""]
    lines += _scores(getattr(model, "metrics", {}) or {})
    lines += ["", "## Limits", ""]
    lines += [f"- {_one_line(text)}" for text in info.limits]
    lines += [
        "- The state-dict weights rebuild the network with abbe (environment.yaml); the "
        "TorchScript and ONNX weights need only their runtime.",
        "",
        "## How to run it",
        "",
        "Open the zip in any bioimage.io tool (deepImageJ/Fiji, ilastik, QuPath, napari, "
        "ZeroCostDL4Mic), or in Python:",
        "",
        "```python",
        "from bioimageio.core import load_model_description, predict",
        'model = load_model_description("model.zip")',
        "prediction = predict(model=model, inputs=image)  # image as in test_input.npy",
        "```",
        "",
        "Check it with `bioimageio test model.zip`. In abbe, the model it came from: "
        f"`{_abbe_usage(model)}`.",
        "",
        "## Cite",
        "",
    ]
    lines += [
        f"- {c.text}" + (f" doi:{c.doi}" if c.doi else "") + (f" {c.url}" if c.url else "")
        for c in info.citations
    ]
    lines += [
        "",
        "## Licence",
        "",
        f"BSD-3-Clause. Exported by abbe {__version__} (`abbe export`).",
        "",
    ]
    return "\n".join(lines)


def _abbe_usage(model: Any) -> str:
    use = model.config.name or str(getattr(model, "folder", "") or "MODEL")
    usage = type(model).usage
    return f"{usage} {use}" if usage else f"abbe.models.load({use!r})"


def _scores(metrics: dict[str, Any]) -> list[str]:
    """One line per validation score (nested tables flattened), then the training summary."""
    validation = metrics.get("validation") or {}
    lines: list[str] = []
    if "rows" in validation and "columns" in validation:  # PSNR per structure and level
        columns = validation["columns"]
        lines += [f"{validation.get('metric', 'score')} ({' / '.join(columns)}):", ""]
        for structure, levels in validation["rows"].items():
            cells = ", ".join(
                f"{level}: {'/'.join(f'{v:g}' for v in values)}" for level, values in levels.items()
            )
            lines += [f"- {structure} — {cells}"]
    else:
        lines += [f"- {k}: {v}" for k, v in validation.items()]
    for key in ("steps", "training_seconds", "val_loss"):
        if key in metrics:
            lines += [f"- {key}: {metrics[key]}"]
    return lines or ["- none recorded"]


def cover_png(raw: np.ndarray, output: np.ndarray, info: ExportInfo) -> bytes:
    """A 2:1 PNG: the test input (left) and the output (right; class scores as bars)."""
    from PIL import Image

    left = _plane(raw)
    h, w = left.shape
    if info.kind == "classes":
        right = np.zeros((h, w), np.float32)
        p = output[0]
        band = max(1, h // len(p))
        for k, v in enumerate(p):
            right[k * band + 1 : (k + 1) * band - 1, : round(float(v) * w)] = 1.0
    else:
        right = _resize(_plane(output), (h, w))
    pair = np.concatenate([_display(left), _display(right)], axis=1)
    zoom = max(1, 256 // h)  # covers are shown ~500 px wide on bioimage.io
    big = np.kron(pair, np.ones((zoom, zoom), np.uint8))
    buffer = io.BytesIO()
    Image.fromarray(big, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def _plane(a: np.ndarray) -> np.ndarray:
    """First sample and channel; the middle plane of a volume."""
    x = a[0, 0]
    return x[x.shape[0] // 2] if x.ndim == 3 else x


def _resize(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from scipy import ndimage

    if a.shape == shape:
        return a
    return ndimage.zoom(a, (shape[0] / a.shape[0], shape[1] / a.shape[1]), order=1)


def _display(a: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(a, [0.5, 99.5])
    return (np.clip((a - lo) / max(float(hi - lo), 1e-12), 0, 1) * 255).astype(np.uint8)


def _zip(folder: Path, target: Path) -> None:
    """Zip the package's files (rdf.yaml first) into ``target``."""
    names = [RDF, *sorted(p.name for p in folder.iterdir() if p.name != RDF)]
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for n in names:
            z.write(folder / n, n)


def package_files(path: Path) -> dict[str, Any]:
    """The ``rdf.yaml`` of a written package, as a dict (for checks and tests)."""
    with zipfile.ZipFile(path) as z:
        return yaml.safe_load(z.read(RDF))


__all__ = [
    "export_bioimageio",
    "package_files",
    "postprocess",
    "preprocess",
    "run_package",
    "sample_input",
]
