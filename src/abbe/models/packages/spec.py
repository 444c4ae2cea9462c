"""Read a bioimage.io model package (spec 0.5): its files, its ``rdf.yaml`` and a small validation.

A package is a zip file or a folder holding ``rdf.yaml`` (or ``bioimageio.yaml``) beside the
weights and test tensors it names. This module reads the YAML with PyYAML and checks only what
abbe uses (inputs, outputs, axes, processing, weights), so loading a package does not import
``bioimageio.spec`` (seconds of pydantic models) and ``abbe`` starts as fast as before. Every
problem is one :class:`abbe.errors.InputError` naming the package and the field or file.

Specification: https://bioimage.io (model RDF 0.5; Ouyang et al., bioRxiv 2022.06.07.495102).
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from abbe.errors import InputError

RDF_NAMES = ("rdf.yaml", "bioimageio.yaml")
#: Weight formats abbe runs, in its order of preference.
RUNNABLE = ("torchscript", "onnx", "pytorch_state_dict")
#: Weight formats of the spec that abbe does not run.
NOT_RUNNABLE = ("keras_hdf5", "keras_v3", "tensorflow_js", "tensorflow_saved_model_bundle")
#: Length units of space axes, in nm.
UNITS_NM = {
    "angstrom": 0.1,
    "nanometer": 1.0,
    "micrometer": 1e3,
    "millimeter": 1e6,
    "centimeter": 1e7,
    "meter": 1e9,
}
_DEFAULT_ID = {"batch": "batch", "channel": "channel", "index": "index", "time": "time"}


class PackageFiles:
    """The files of a package, in a folder or a zip, read as bytes on demand.

    Parameters
    ----------
    path : the zip file or the folder.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._zip: zipfile.ZipFile | None = None
        if self.path.is_file():
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError):
                raise InputError(
                    "is not a zip file; a bioimage.io package is a .zip or a folder with rdf.yaml",
                    self.path,
                ) from None
            self._names = set(self._zip.namelist())

    def exists(self, name: str) -> bool:
        if Path(name).is_absolute() or ".." in Path(name).parts:
            # A package names its own files; nothing outside it is read.
            raise InputError(f"names a file outside the package: {name}", self.path)
        if self._zip is not None:
            return name in self._names
        return (self.path / name).is_file()

    def read(self, name: str) -> bytes:
        """The bytes of ``name``; an :class:`InputError` naming the package when it is absent."""
        if not self.exists(name):
            raise InputError(f"{name} is named in the package but not in it", self.path)
        if self._zip is not None:
            return self._zip.read(name)
        return (self.path / name).read_bytes()

    def rdf_name(self) -> str | None:
        return next((n for n in RDF_NAMES if self.exists(n)), None)


@dataclass(frozen=True)
class Axis:
    """One axis of a tensor, as abbe uses it.

    ``size`` is a fixed size, else ``min``/``step`` give the sizes ``min + k·step``; ``ref``
    names the ``(tensor_id, axis_id)`` an output axis takes its size from.
    """

    id: str
    type: str
    size: int | None = None
    min: int | None = None
    step: int | None = None
    ref: tuple[str, str] | None = None
    ref_offset: int = 0
    halo: int = 0
    scale: float = 1.0
    unit: str | None = None
    channel_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Op:
    """A pre- or postprocessing step: its spec ``id`` and keyword arguments."""

    id: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TensorSpec:
    """An input or output tensor: id, axes, processing and test tensor file."""

    id: str
    axes: tuple[Axis, ...]
    processing: tuple[Op, ...]
    test_tensor: str | None
    test_sha256: str | None
    data_range: tuple[float | None, float | None] | None = None

    @property
    def axis_ids(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.axes)

    def axis(self, axis_id: str) -> Axis | None:
        return next((a for a in self.axes if a.id == axis_id), None)

    @property
    def channel_names(self) -> tuple[str, ...]:
        a = next((a for a in self.axes if a.type == "channel"), None)
        return a.channel_names if a is not None else ()

    @property
    def channels(self) -> int:
        """Number of channels (1 without a channel axis)."""
        a = next((a for a in self.axes if a.type == "channel"), None)
        if a is None:
            return 1
        return len(a.channel_names) if a.channel_names else int(a.size or 1)


@dataclass(frozen=True)
class PackageSpec:
    """What abbe reads from a package's RDF."""

    path: Path
    name: str
    description: str
    format_version: str
    input: TensorSpec
    output: TensorSpec
    weights: dict[str, dict[str, Any]]
    cite: tuple[str, ...]
    license: str
    documentation: str | None
    scale: int = 1
    abbe: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``"image"`` (an output with Y and X axes) or ``"classes"`` (scores, no space axes)."""
        return "image" if self.output.axis("y") is not None else "classes"

    @property
    def pixel_size_nm(self) -> float | None:
        """Pixel size of the input's Y and X axes in nm, when the package gives scale and unit
        (the mean of Y and X; None when either lacks a length unit)."""
        sizes = []
        for name in ("y", "x"):
            a = self.input.axis(name)
            if a is None or a.unit not in UNITS_NM:
                return None
            sizes.append(a.scale * UNITS_NM[a.unit])
        return sum(sizes) / 2


# ----------------------------------------------------------------------------- reading
def is_package(path: str | Path) -> bool:
    """Whether ``path`` looks like a bioimage.io package: a ``.zip`` file, or a folder holding
    ``rdf.yaml`` or ``bioimageio.yaml`` (and no abbe ``config.yaml``)."""
    p = Path(path)
    if p.is_file():
        return p.suffix.lower() == ".zip"
    return (
        p.is_dir()
        and not (p / "config.yaml").exists()
        and any((p / n).is_file() for n in RDF_NAMES)
    )


def read_spec(path: str | Path) -> tuple[PackageSpec, PackageFiles]:
    """Read and check the RDF of the package at ``path`` (zip or folder).

    Raises
    ------
    InputError
        Not a zip, no RDF, malformed YAML, not a model, not spec 0.5, a missing field, or axes
        or sizes abbe does not run; the message names the package and the field.
    """
    files = PackageFiles(Path(path))
    where = files.path
    name = files.rdf_name()
    if name is None:
        raise InputError(
            "is not a bioimage.io package: no rdf.yaml or bioimageio.yaml at its top level", where
        )
    try:
        rdf = yaml.safe_load(files.read(name).decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{name} is not valid YAML: {first}", where) from None
    if not isinstance(rdf, dict):
        raise InputError(f"{name} does not hold a mapping of fields", where)
    return _parse(rdf, name, where), files


def _parse(rdf: dict[str, Any], rdf_name: str, where: Path) -> PackageSpec:
    def need(key: str) -> Any:
        if key not in rdf:
            raise InputError(f"{rdf_name} has no '{key}' field (required by spec 0.5)", where)
        return rdf[key]

    kind = need("type")
    if kind != "model":
        raise InputError(f"{rdf_name} describes a {kind!r}, not a model", where)
    version = str(need("format_version"))
    if not version.startswith("0.5"):
        raise InputError(
            f"{rdf_name} is spec {version}; abbe reads spec 0.5 (axes as a list of objects with "
            "'type' and 'id', processing steps with 'id', weights with 'source'); convert it "
            "with 'bioimageio update-format'",
            where,
        )
    inputs, outputs = need("inputs"), need("outputs")
    for key, value in (("inputs", inputs), ("outputs", outputs)):
        if not isinstance(value, list) or not value:
            raise InputError(f"{rdf_name}: '{key}' must be a non-empty list of tensors", where)
    if len(inputs) != 1 or len(outputs) != 1:
        raise InputError(
            f"{rdf_name}: {len(inputs)} inputs and {len(outputs)} outputs; abbe runs packages "
            "with one input and one output tensor",
            where,
        )
    weights = need("weights")
    if not isinstance(weights, dict) or not weights:
        raise InputError(f"{rdf_name}: 'weights' must map formats to weight entries", where)
    tin = _tensor(inputs[0], "inputs[0]", "preprocessing", rdf_name, where)
    tout = _tensor(outputs[0], "outputs[0]", "postprocessing", rdf_name, where)
    scale = _check_axes(tin, tout, rdf_name, where)
    config = rdf.get("config")
    abbe = config.get("abbe") if isinstance(config, dict) else None
    return PackageSpec(
        path=where,
        name=str(need("name")),
        description=str(rdf.get("description", "")),
        format_version=version,
        input=tin,
        output=tout,
        weights={str(k): dict(v or {}) for k, v in weights.items()},
        cite=tuple(_citation(c) for c in rdf.get("cite") or [] if isinstance(c, dict)),
        license=str(rdf.get("license", "")),
        documentation=rdf.get("documentation"),
        scale=scale,
        abbe=dict(abbe) if isinstance(abbe, dict) else {},
    )


def _tensor(data: Any, label: str, proc_key: str, rdf_name: str, where: Path) -> TensorSpec:
    if not isinstance(data, dict) or "axes" not in data:
        raise InputError(f"{rdf_name}: {label} has no 'axes'", where)
    raw_axes = data["axes"]
    if isinstance(raw_axes, str):
        raise InputError(
            f"{rdf_name}: {label}.axes is {raw_axes!r}, a spec 0.4 string; spec 0.5 lists axis "
            "objects",
            where,
        )
    axes = tuple(_axis(a, f"{label}.axes[{i}]", rdf_name, where) for i, a in enumerate(raw_axes))
    ops = []
    for i, step in enumerate(data.get(proc_key) or []):
        if not isinstance(step, dict) or "id" not in step:
            raise InputError(f"{rdf_name}: {label}.{proc_key}[{i}] has no 'id'", where)
        ops.append(Op(str(step["id"]), dict(step.get("kwargs") or {})))
    test = data.get("test_tensor") or {}
    rng = (data.get("data") or {}).get("range") if isinstance(data.get("data"), dict) else None
    return TensorSpec(
        id=str(data.get("id", "input" if label.startswith("in") else "output")),
        axes=axes,
        processing=tuple(ops),
        test_tensor=test.get("source") if isinstance(test, dict) else None,
        test_sha256=test.get("sha256") if isinstance(test, dict) else None,
        data_range=tuple(rng) if isinstance(rng, list) and len(rng) == 2 else None,
    )


def _axis(data: Any, label: str, rdf_name: str, where: Path) -> Axis:
    if not isinstance(data, dict) or "type" not in data:
        raise InputError(f"{rdf_name}: {label} has no 'type'", where)
    kind = str(data["type"])
    axis_id = str(data.get("id", _DEFAULT_ID.get(kind, "x")))
    size = data.get("size")
    fixed = lo = step = None
    ref = None
    offset = 0
    if isinstance(size, int):
        fixed = size
    elif isinstance(size, dict) and "min" in size:
        lo, step = int(size["min"]), int(size.get("step", 0) or 0)
        if step == 0:
            fixed = lo
    elif isinstance(size, dict) and "tensor_id" in size:
        ref = (str(size["tensor_id"]), str(size["axis_id"]))
        offset = int(size.get("offset", 0))
    names = tuple(str(n) for n in data.get("channel_names") or ())
    if kind == "channel" and names:
        fixed = len(names)
    return Axis(
        id=axis_id,
        type=kind,
        size=fixed,
        min=lo,
        step=step,
        ref=ref,
        ref_offset=offset,
        halo=int(data.get("halo", 0) or 0),
        scale=float(data.get("scale", 1.0) or 1.0),
        unit=data.get("unit"),
        channel_names=names,
    )


def _check_axes(tin: TensorSpec, tout: TensorSpec, rdf_name: str, where: Path) -> int:
    """abbe runs 2D packages: batch, channel, y and x axes; the output either the input's
    size, an integer factor larger along y and x (super-resolution), or class scores without
    space axes. Returns that factor (1 for class scores)."""
    space_out = sorted(a.id for a in tout.axes if a.type == "space")
    classes = not space_out and all(a.type in ("batch", "channel") for a in tout.axes)
    for t, label in ((tin, "input"), (tout, "output")):
        if label == "output" and classes:
            continue
        space = sorted(a.id for a in t.axes if a.type == "space")
        other = [a for a in t.axes if a.type not in ("batch", "channel", "space")]
        if space != ["x", "y"] or other:
            kinds = ", ".join(f"{a.id} ({a.type})" for a in t.axes)
            raise InputError(
                f"{rdf_name}: the {label} {t.id!r} has axes {kinds}; abbe runs 2D packages "
                "(batch, channel, y, x; or batch, channel class scores), not 3D (z), time or "
                "index axes",
                where,
            )
    if classes:
        return 1
    factors = [_factor(tin, tout, name) for name in ("y", "x")]
    if factors[0] is None or factors[0] != factors[1]:
        raise InputError(
            f"{rdf_name}: the output's y and x axes are not the input's size times one whole "
            "factor (offsets, fixed sizes or unequal scales); abbe runs packages whose output "
            "is the input's size or a whole multiple of it along y and x",
            where,
        )
    return int(factors[0])


def _factor(tin: TensorSpec, tout: TensorSpec, name: str) -> int | None:
    """Output pixels per input pixel along axis ``name`` (None when not a whole number).

    Spec 0.5 sizes an output axis that references an input axis as
    ``size_in · scale_in / scale_out + offset``; abbe takes a zero offset and a whole ratio
    (an exporter may have nudged the scale by a few ulps to keep that integer exact)."""
    a, b = tout.axis(name), tin.axis(name)
    assert a is not None and b is not None
    if a.ref is None:
        return 1 if a.size is not None and a.size == b.size else None
    if a.ref != (tin.id, name) or a.ref_offset != 0:
        return None
    ratio = b.scale / a.scale
    whole = round(ratio)
    return whole if whole >= 1 and abs(ratio - whole) <= 1e-9 * whole else None


def _citation(entry: dict[str, Any]) -> str:
    text = str(entry.get("text", "")).strip()
    if entry.get("doi"):
        return f"{text} doi:{entry['doi']}"
    if entry.get("url"):
        return f"{text} {entry['url']}"
    return text


# ----------------------------------------------------------------------------- checks
def verified(files: PackageFiles, name: str, sha256: str | None) -> bytes:
    """The bytes of ``name``, checked against ``sha256`` when the package gives one."""
    data = files.read(name)
    if sha256 and hashlib.sha256(data).hexdigest() != str(sha256).lower():
        raise InputError(
            f"{name}: its SHA-256 differs from the one in the package's RDF (changed or "
            "corrupt file); get the package again",
            files.path,
        )
    return data


def is_url(source: str) -> bool:
    return "://" in str(source)
