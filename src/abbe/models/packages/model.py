"""A bioimage.io package as an abbe model: its processing, its weights, abbe's tiling.

:class:`PackageModel` fills the model contract (:class:`abbe.models.base.Model`) for a network
abbe did not train: ``predict`` normalizes the whole image with the package's preprocessing, runs
the weights tile by tile through :meth:`Model.windowed` (the one tiling path of
:mod:`abbe.predict.tiling`), and applies the postprocessing to the whole output.

Tiling. Each tile is predicted in a window that extends the package's output ``halo`` (32 px
when the package gives none) beyond its core, and only the core is kept, so tiles have no seams
within the network's context. A window smaller than the input accepts (the fixed size, or the
next ``min + k·step``) grows toward the image's start; only an image smaller than that is
padded (reflect, at its far end). A fixed-size network (e.g. 512²) on a larger image is tiled
with cores of ``size − 2·halo``. An output ``scale``× finer than the input (super-resolution)
has tiles ``scale``× the input's and a halo of ``scale`` × the input's context.

Units. The output is the package's, except for restoration packages that abbe wrote
(``config.abbe.output: input-normalized``): those are scaled back into the input's units with
the percentiles the package's ``scale_range`` took of each image, as abbe's own model does.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from abbe.errors import AbbeWarning, InputError, ModelError
from abbe.models.base import DEFAULT_MEMORY_MB, Model, ModelConfig
from abbe.models.packages import processing
from abbe.models.packages.runtime import Runner, open_weights
from abbe.models.packages.spec import PackageFiles, PackageSpec, read_spec, verified

#: Context per side when a package states no halo (pixels).
DEFAULT_HALO = 32
#: Peak memory per pixel assumed for a foreign network (a U-Net of width ~32), for ``auto`` tiles.
BYTES_PER_PIXEL = 4.0 * 32 * 14
#: Relative pixel-size difference above which the input is said to differ from the package's.
PIXEL_SIZE_TOLERANCE = 0.25


@dataclass(frozen=True)
class _Geometry:
    """What the tiling needs: context per side and size multiple per spatial axis."""

    receptive_radius: int
    multiple: tuple[int, int]


class PackageModel(Model):
    """A bioimage.io model package (spec 0.5) run by abbe.

    Load with :func:`abbe.models.load` (``"model.zip"`` or a folder holding ``rdf.yaml``).

    Attributes
    ----------
    spec : what the package's RDF says (name, tensors, processing, weights, citations).
    weight_format : the weights that run (``torchscript``, ``onnx`` or ``pytorch_state_dict``).
    """

    method = "bioimageio"
    usage = "abbe restore IN -o OUT -m"

    def __init__(self, spec: PackageSpec, files: PackageFiles, runner: Runner) -> None:
        config = ModelConfig(
            method=self.method,
            name=spec.name,
            description=spec.description,
            axes="YX",
            pixel_size_nm=spec.pixel_size_nm,
        )
        super().__init__(config, network=runner)
        self.spec, self.files, self.runner = spec, files, runner
        self.source = spec.path
        self._in_ids = self._internal_ids(spec.input)
        self._out_ids = self._internal_ids(spec.output)

    # ------------------------------------------------------------------ description
    @property
    def weight_format(self) -> str:
        return self.runner.format

    @property
    def citation(self) -> str:
        return self.spec.cite[0] if self.spec.cite else ""

    def describe(self) -> str:
        """One line for the console: name, package, weights, citation."""
        text = (
            f"{self.spec.name} (bioimage.io package {self.source.name}, "
            f"{self.weight_format} weights)"
        )
        if self.spec.cite:
            text += "; cite: " + " | ".join(self.spec.cite)
        return text

    # ------------------------------------------------------------------ contract
    @classmethod
    def load(  # type: ignore[override]
        cls, path: str | os.PathLike[str], *, weights: str | None = None
    ) -> PackageModel:
        """Load a package (see :func:`load_package`)."""
        return load_package(path, weights=weights)

    def build_network(self) -> Any:
        raise ModelError("a bioimage.io package brings its own network", self.source)

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        raise ModelError(
            "is a bioimage.io package: use the package itself; abbe saves only its own models",
            self.source,
        )

    def export(self, path: str | os.PathLike[str], *, format: str, overwrite: bool = False) -> Path:
        raise ModelError(
            "is a bioimage.io package already; abbe exports its own models", self.source
        )

    @property
    def scale(self) -> int:
        """Output pixels per input pixel along Y and X (2 for a 2× super-resolution package)."""
        return self.spec.scale

    @property
    def network_config(self) -> _Geometry:
        """Context per side in input pixels (the output's halo over the scale; 32 when the
        package gives none) and the input's size multiple."""
        multiple = (self._multiple("y"), self._multiple("x"))
        if self.spec.kind == "classes":
            return _Geometry(receptive_radius=0, multiple=multiple)
        halos = [self.spec.output.axis(n).halo for n in ("y", "x")]  # type: ignore[union-attr]
        halo = -(-max(halos) // self.scale) or DEFAULT_HALO
        return _Geometry(receptive_radius=halo, multiple=multiple)

    @property
    def denormalizes(self) -> bool:
        """Whether :meth:`predict` returns the input's units rather than the package's
        normalized output: only for packages abbe wrote from a restoration model, whose
        ``config.abbe.output`` says ``input-normalized`` (see :meth:`_denormalize`)."""
        cfg = self.spec.abbe
        return cfg.get("output") == "input-normalized" and self._scale_range() is not None

    def units_note(self) -> str | None:
        """One console line on the units of :meth:`predict`'s result, or None."""
        if not self.denormalizes:
            return None
        lo, hi = self.spec.abbe.get("percentiles", ("low", "high"))
        return (
            f"output in the input's units: the package's normalized output is scaled back with "
            f"each image's {lo:g} and {hi:g} percentiles, as abbe's own "
            f"{self.spec.abbe.get('name', 'model')} does (package written by abbe)"
        )

    @property
    def bytes_per_pixel(self) -> float:
        return BYTES_PER_PIXEL

    def _multiple(self, name: str) -> int:
        a = self.spec.input.axis(name)
        assert a is not None
        if a.step:
            return a.step
        if a.size:  # a fixed window: align tiles on its largest power of 2 up to 16
            return min(16, a.size & -a.size)
        return 1

    def _fixed(self) -> tuple[int, int] | None:
        sizes = [self.spec.input.axis(n).size for n in ("y", "x")]  # type: ignore[union-attr]
        return (int(sizes[0]), int(sizes[1])) if all(sizes) else None

    def tile_shape(
        self,
        spatial_shape: tuple[int, ...],
        tile: int | tuple[int, ...] | str | None = "auto",
        memory_mb: float = DEFAULT_MEMORY_MB,
    ) -> tuple[int, ...] | None:
        """Core edge per axis. A fixed-size input takes windows of exactly its size, so its
        cores are ``size − 2·halo`` (``tile`` is then ignored), or the whole image when it
        fits in one window."""
        fixed = self._fixed()
        if fixed is None:
            return super().tile_shape(spatial_shape, tile, memory_mb)
        g = self.network_config
        core = []
        for n, size, m in zip(spatial_shape, fixed, g.multiple, strict=True):
            padded = -(-n // m) * m
            margin = -(-g.receptive_radius // m) * m
            if padded <= size:
                core.append(padded)
            elif size - 2 * margin < m:
                raise InputError(
                    f"takes {size}-pixel windows only, too small for its halo of "
                    f"{g.receptive_radius} px; abbe cannot tile a larger image with it",
                    self.source,
                )
            else:
                core.append((size - 2 * margin) // m * m)
        return tuple(core)

    # ------------------------------------------------------------------ prediction
    def predict(
        self,
        image: Any,
        axes: str = "YX",
        *,
        tile: int | str | None = "auto",
        memory_mb: float = DEFAULT_MEMORY_MB,
        device: str | None = "auto",
        threads: int | None = None,
        out: Any | None = None,
        progress: Callable[[Iterator[Any], int], Iterator[Any]] | None = None,
        uncertainty: bool | str = False,
        out_uncertainty: Any | None = None,
        warn: bool = True,
    ) -> Any:
        """Run the package on an image.

        Parameters
        ----------
        image : array with axes ``axes``: ``YX``, ``CYX``/``YXC``, or with leading ``T``, ``S``
            or ``Z`` axes, whose planes are the package's batch (predicted one by one; steps
            whose ``axes`` include ``batch`` take their statistics over all planes).
        axes : the image's axes.
        tile, memory_mb : core edge in pixels, ``"auto"`` (from ``memory_mb``) or None; a
            fixed-size package always tiles at its own size (see :meth:`tile_shape`).
        device : ``auto``, ``cpu``, ``cuda``…; ONNX weights use onnxruntime's CUDA provider
            when there is one, else its CPU provider.
        threads : CPU threads (torch weights).
        out : array to write the result into (e.g. zarr), shaped :meth:`output_shape`.
        progress : wraps the tile iterator.
        uncertainty, out_uncertainty, warn : part of the restore interface; a package gives
            no uncertainty (``uncertainty=True`` is an error).

        Returns
        -------
        float32 array with axes :meth:`output_axes` (the output's channels replace the input's;
        a single output channel has no C axis unless the input had one; Y and X are
        :attr:`scale` times the input's). In the package's output units, except for a
        restoration package abbe wrote, whose output is returned in the input's units like
        abbe's own model's (:attr:`denormalizes`). A classifier package (class scores, no
        space axes) returns ``(*loop, n_classes)`` probabilities, one row per plane: each
        plane is one object crop, resized to the package's input size as
        :meth:`abbe.classify.model.Classifier.prepare` does.
        """
        from abbe.compute import torch_threads
        from abbe.io import check_axes

        if uncertainty:
            raise ModelError("a bioimage.io package predicts no uncertainty", self.source)
        axes = check_axes(axes, image.ndim)
        raw, loop_shape = self._to_bcyx(np.asarray(image), axes)
        with torch_threads(threads):
            if self.spec.kind == "classes":
                scores = self._classify_bcyx(raw, device)
                return scores.reshape((*loop_shape, scores.shape[1]))
            result = self._predict_bcyx(raw, tile, memory_mb, device, progress)
            if self.denormalizes:
                result = self._denormalize(result, raw)
        result = self._from_bcyx(result, axes, loop_shape)
        if out is not None:
            out[...] = result
            return out
        return result

    def predict_tensor(self, tensor: np.ndarray, *, device: str | None = "auto", **kw: Any) -> Any:
        """Run the package on an array in its own input axes (e.g. its test tensor) and return
        the output in its own output axes, as bioimage.io tools do."""
        x = self._from_package(np.asarray(tensor, dtype=np.float32), self.spec.input)
        if self.spec.kind == "classes":
            return self._classify_bcyx(np.ascontiguousarray(x), device)
        y = self._predict_bcyx(np.ascontiguousarray(x), device=device, **kw)
        return self._to_package(y, self.spec.output)

    def check_image_output(self) -> None:
        """Refuse a classifier package where an image or maps are expected (``abbe restore``,
        ``abbe segment``), in one line saying how to run it."""
        if self.spec.kind == "classes":
            raise InputError(
                "is a classifier package (class scores, no image or maps); run it in Python: "
                "abbe.models.load(PACKAGE).predict(crops, axes='SYX')",
                self.source,
            )

    def output_axes(self, axes: str) -> str:
        """The axes of :meth:`predict`'s result for an image with ``axes`` (a classifier
        package: the loop axes and ``C``, its classes)."""
        loop = "".join(a for a in axes.upper() if a not in "CYX")
        if self.spec.kind == "classes":
            return loop + "C"
        keep_c = "C" in axes.upper() or self.spec.output.channels > 1
        return loop + ("C" if keep_c else "") + "YX"

    def output_shape(self, shape: tuple[int, ...], axes: str) -> tuple[int, ...]:
        """Shape of :meth:`predict`'s result for an input of ``shape`` with ``axes``."""
        axes = axes.upper()
        size = dict(zip(axes, shape, strict=True))
        size["C"] = self.spec.output.channels
        size["Y"], size["X"] = size["Y"] * self.scale, size["X"] * self.scale
        return tuple(size[a] for a in self.output_axes(axes))

    def check_pixel_size(self, pixel_size_nm: float | None, path: Any = None) -> None:
        """Warn (:class:`AbbeWarning`) when the image's pixel size differs from the package's by
        more than 25 % (the network's features are learnt in pixels of that size)."""
        own = self.spec.pixel_size_nm
        if own and pixel_size_nm and abs(pixel_size_nm / own - 1) > PIXEL_SIZE_TOLERANCE:
            warnings.warn(
                AbbeWarning(
                    f"pixel size {pixel_size_nm:g} nm, but the package {self.spec.name!r} is "
                    f"for {own:g} nm; resample the image to its pixel size",
                    path,
                ),
                stacklevel=2,
            )

    def test_tensors(self) -> tuple[np.ndarray, np.ndarray]:
        """The package's own test input and expected output (checked against their SHA-256)."""
        pair = []
        for t in (self.spec.input, self.spec.output):
            if not t.test_tensor:
                raise InputError(f"the package gives no test tensor for {t.id!r}", self.source)
            data = verified(self.files, t.test_tensor, t.test_sha256)
            import io

            pair.append(np.load(io.BytesIO(data), allow_pickle=False))
        return pair[0], pair[1]

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _pkg_id(t: Any, kind: str) -> str | None:
        return next((a.id for a in t.axes if a.type == kind), None)

    @classmethod
    def _internal_ids(cls, t: Any) -> tuple[str, str, str, str]:
        """Names of the (batch, channel, y, x) axes as the package's processing calls them."""
        return ("batch", cls._pkg_id(t, "channel") or "channel", "y", "x")

    def _to_bcyx(self, image: np.ndarray, axes: str) -> tuple[np.ndarray, tuple[int, ...]]:
        loop = [a for a in axes if a not in "CYX"]
        order = [axes.index(a) for a in loop]
        order += [axes.index("C")] if "C" in axes else []
        order += [axes.index("Y"), axes.index("X")]
        x = image.transpose(order)
        loop_shape = x.shape[: len(loop)]
        x = x.reshape((-1, *x.shape[len(loop) :]))
        if "C" not in axes:
            x = x[:, None]
        want = self.spec.input.channels
        if x.shape[1] != want:
            raise InputError(
                f"the package {self.spec.name!r} takes {want} channel(s); the image has "
                f"{x.shape[1]} (axes {axes})"
            )
        return np.ascontiguousarray(x, dtype=np.float32), loop_shape

    def _from_bcyx(self, y: np.ndarray, axes: str, loop_shape: tuple[int, ...]) -> np.ndarray:
        y = y.reshape((*loop_shape, *y.shape[1:]))
        if "C" not in self.output_axes(axes):
            y = y[..., 0, :, :]
        return y.astype(np.float32, copy=False)

    def _predict_bcyx(
        self,
        raw: np.ndarray,
        tile: int | str | tuple[int, ...] | None = "auto",
        memory_mb: float = DEFAULT_MEMORY_MB,
        device: str | None = "auto",
        progress: Any = None,
    ) -> np.ndarray:
        """Preprocess the whole (B, C, Y, X) input, run the network tile by tile on each plane,
        postprocess the whole output."""
        pre = processing.apply(self.spec.input.processing, raw, self._in_ids, {})
        pre = np.asarray(pre, dtype=np.float32)
        n_out = self.spec.output.channels
        tiles = self.tile_shape(pre.shape[2:], tile, memory_mb)
        planes = [
            self._tiled(lambda w: self._window(w, device), pre[b], tiles, n_out, progress)
            for b in range(pre.shape[0])
        ]
        y = np.stack(planes)
        refs = {self.spec.input.id: (raw, self._in_ids)}
        return np.asarray(
            processing.apply(self.spec.output.processing, y, self._out_ids, refs)
        ).astype(np.float32)

    def _tiled(
        self,
        fn: Callable[[np.ndarray], np.ndarray],
        image: np.ndarray,
        tile: tuple[int, ...] | None,
        n_out: int,
        progress: Any = None,
    ) -> np.ndarray:
        """:func:`abbe.predict.tiling.predict_tiled` for a package: the same tiles and
        windows, except that a window smaller than the package accepts (the last, short tile
        of a row) grows toward the image's start rather than being padded at its far end.

        Padding there would put reflected pixels within the network's reach of the core,
        where the whole image has its own far end; grown backwards, every core sees what it
        sees in one pass over the whole image, so tiled equals untiled (abbe's own networks
        take any multiple of their size step and need no such care)."""
        from abbe.predict.tiling import plan_tiles, read_window

        g = self.network_config
        shape = tuple(image.shape[1:])
        whole = tuple(-(-n // m) * m for n, m in zip(shape, g.multiple, strict=True))
        margin = (g.receptive_radius,) * len(shape)
        _, tiles = plan_tiles(shape, tile=tile or whole, margin=margin, multiple=g.multiple)
        f = self.scale
        out = np.empty((n_out, *(n * f for n in shape)), dtype=np.float32)
        iterator: Any = iter(tiles)
        if progress is not None:
            iterator = progress(iterator, len(tiles))
        for t in iterator:
            window, offset = [], []
            for w, c, name in zip(t.window, t.core_in_window, ("y", "x"), strict=True):
                start = min(w.start, max(0, w.stop - self._valid_size(w.stop - w.start, name)))
                window.append(slice(start, w.stop))
                offset.append(c.start + w.start - start)  # the core's start in the window
            result = fn(read_window(image, tuple(window)))
            dst: list[slice] = [slice(None)]
            src: list[slice] = [slice(None)]
            for c, k in zip(t.core, offset, strict=True):
                size = (c.stop - c.start) * f
                dst.append(slice(c.start * f, c.start * f + size))
                src.append(slice(k * f, k * f + size))
            out[tuple(dst)] = result[tuple(src)]
        return out

    def _window(self, window: np.ndarray, device: str | None) -> np.ndarray:
        """One window (C, h, w) → (C_out, h, w): padded to a size the input accepts, arranged
        in the package's axes, run, and cropped back."""
        h, w = window.shape[1:]
        target = [self._valid_size(n, name) for n, name in zip((h, w), ("y", "x"), strict=True)]
        pad = [(0, 0), (0, target[0] - h), (0, target[1] - w)]
        if any(p[1] for p in pad):
            window = np.pad(window, pad, mode="reflect" if min(h, w) > 1 else "edge")
        x = self._to_package(window[None], self.spec.input)
        y = self.runner(x, device)
        f = self.scale
        return self._from_package(y, self.spec.output)[0][:, : h * f, : w * f]

    def _classify_bcyx(self, raw: np.ndarray, device: str | None) -> np.ndarray:
        """Class probabilities ``(B, n_classes)`` of each plane of ``raw`` ``(B, C, Y, X)``:
        no tiling (one crop is one object); planes of another size than the package's fixed
        input are resized first, with the classifier's own :func:`whole_image_crop`."""
        from abbe.classify.model import whole_image_crop

        fixed = self._fixed()
        if fixed is not None and raw.shape[2:] != fixed:
            if fixed[0] != fixed[1]:
                raise InputError(
                    f"takes {fixed[0]}×{fixed[1]} crops; the image is "
                    f"{raw.shape[2]}×{raw.shape[3]}",
                    self.source,
                )
            raw = np.stack(
                [np.stack([whole_image_crop(c, fixed[0]).crop for c in plane]) for plane in raw]
            ).astype(np.float32)
        pre = processing.apply(self.spec.input.processing, raw, self._in_ids, {})
        x = self._to_package(np.asarray(pre, dtype=np.float32), self.spec.input)
        y = np.asarray(self.runner(x, device), dtype=np.float32)
        ids = ("batch", "channel")
        kinds = [a.type for a in self.spec.output.axes]
        if "batch" not in kinds:
            y, kinds = y[None], ["batch", *kinds]
        if "channel" not in kinds:
            y, kinds = y[..., None], [*kinds, "channel"]
        y = y.transpose([kinds.index("batch"), kinds.index("channel")])
        refs = {self.spec.input.id: (raw, self._in_ids)}
        return np.asarray(processing.apply(self.spec.output.processing, y, ids, refs), np.float32)

    def _scale_range(self) -> Any:
        """The input's ``scale_range`` step without a reference tensor (None if there is none)."""
        return next(
            (
                op
                for op in self.spec.input.processing
                if op.id == "scale_range" and not op.kwargs.get("reference_tensor")
            ),
            None,
        )

    def _denormalize(self, y: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """Back to the input's units: each plane and channel of the output ``(B, C, Y, X)``
        named in ``config.abbe.normalized_channels`` times (high − low + eps) plus low, where
        low and high are the percentiles the package's ``scale_range`` took of that plane —
        :func:`abbe.data.normalize.denormalize`, the inverse abbe's restoration models apply."""
        from abbe.data.normalize import denormalize

        op = self._scale_range()
        kw = op.kwargs
        eps = float(kw.get("eps", 1e-6))
        names = self.spec.output.channel_names
        wanted = self.spec.abbe.get("normalized_channels") or names or [0]
        channels = [names.index(c) if c in names else int(c) for c in wanted]
        y = np.array(y, dtype=np.float32, copy=True)
        for b in range(raw.shape[0]):
            source = raw[b, 0] if raw.shape[1] == 1 else raw[b]
            lo, hi = np.percentile(
                np.asarray(source, dtype=np.float64),
                [float(kw.get("min_percentile", 0.0)), float(kw.get("max_percentile", 100.0))],
            )
            for c in channels:
                y[b, c] = denormalize(y[b, c], float(lo), float(hi) + eps)
        return y

    def _valid_size(self, n: int, name: str) -> int:
        a = self.spec.input.axis(name)
        assert a is not None
        if a.size:
            if n > a.size:
                raise InputError(f"window of {n} px exceeds the package's {a.size}", self.source)
            return a.size
        if a.min is not None:
            if n <= a.min or not a.step:
                return max(n, a.min) if a.step else a.min
            return a.min + -(-(n - a.min) // a.step) * a.step
        return n

    def _to_package(self, bcyx: np.ndarray, t: Any) -> np.ndarray:
        """(B, C, Y, X) → the tensor's own axis order (axes it lacks squeezed)."""
        kinds = {"batch": 0, "channel": 1, "y": 2, "x": 3}
        order = []
        for a in t.axes:
            order.append(kinds[a.type] if a.type in ("batch", "channel") else kinds[a.id])
        drop = [i for i in (0, 1) if i not in order]
        x = bcyx
        for i in sorted(drop, reverse=True):
            x = x.take(0, axis=i)
        remaining = [i for i in range(4) if i not in drop]
        return np.ascontiguousarray(x.transpose([remaining.index(i) for i in order]))

    def _from_package(self, y: np.ndarray, t: Any) -> np.ndarray:
        """The tensor's own axis order → (B, C, Y, X)."""
        ids = [a.type if a.type in ("batch", "channel") else a.id for a in t.axes]
        if y.ndim != len(ids):
            raise InputError(
                f"an array of {y.ndim} axes where the package's {t.id!r} has {len(ids)}",
                self.source,
            )
        for name in ("batch", "channel"):
            if name not in ids:
                y = y[None]
                ids = [name, *ids]
        return y.transpose([ids.index(n) for n in ("batch", "channel", "y", "x")])


def load_package(path: str | os.PathLike[str], *, weights: str | None = None) -> PackageModel:
    """Load a bioimage.io model package (a ``.zip`` or a folder with ``rdf.yaml``).

    Checks the RDF (spec 0.5, 2D axes, processing steps abbe runs) and each file's SHA-256 where
    the RDF gives one, then loads the first weights abbe can run (TorchScript, ONNX, PyTorch
    state dict; see :func:`abbe.models.packages.runtime.open_weights`), or the format named by
    ``weights``. Every problem is one :class:`abbe.errors.InputError` naming the package.
    """
    spec, files = read_spec(Path(path))
    processing.check_ops(spec.input.processing, "preprocessing", spec.path)
    processing.check_ops(spec.output.processing, "postprocessing", spec.path)
    return PackageModel(spec, files, open_weights(spec, files, weights=weights))
