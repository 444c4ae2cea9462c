"""A trained restoration network with its normalization: predict, save, load.

CARE and Noise2Void differ only in how they are trained; once trained, both are this object.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from abbe.compute import resolve_device, torch_threads
from abbe.data.normalize import PercentileNorm, denormalize, normalize, percentile_range
from abbe.data.patches import N2VMasking
from abbe.errors import InputError, ModelError, OutputExistsError
from abbe.io.meta import check_axes
from abbe.models import folder as mf
from abbe.models.base import DEFAULT_MEMORY_MB, Citation, ExportInfo, Model, ModelConfig
from abbe.nn.unet import UNetConfig
from abbe.train.config import TrainingConfig


class RestorationConfig(ModelConfig):
    """Everything needed to rebuild, use and retrain a restoration model (``config.yaml``)."""

    version: Literal[1] = 1
    method: Literal["care", "n2v"] = "care"
    axes: Literal["YX", "ZYX"] = "YX"
    # On a CPU time budget a thin, deep U-Net wins: it takes more steps (benchmarks/denoise.py).
    network: UNetConfig = UNetConfig(width=16, depth=3)
    normalization: PercentileNorm = PercentileNorm()
    training: TrainingConfig = TrainingConfig(batch_size=8)
    masking: N2VMasking | None = None
    pixel_size_nm: float | None = Field(None, gt=0)
    training_data: dict[str, Any] = Field(default_factory=dict)
    uncertainty_scale: float = Field(
        1.0, gt=0, description="Calibration of a probabilistic model's Laplace scales."
    )
    uncertainty_floor: float = Field(
        0.0, ge=0, description="Calibrated error floor, in fractions of the normalized range."
    )
    uncertainty_noisier: float = Field(
        0.0,
        ge=0,
        description="The calibration factor grows as (image noise / uncertainty_noise_reference)"
        " to this power for noisier images; the noise is measured on each input.",
    )
    uncertainty_cleaner: float = Field(
        0.0,
        description="The same for images cleaner than the reference, as (reference / noise) to "
        "this power (negative: cleaner images get narrower intervals).",
    )
    uncertainty_noise_reference: float = Field(
        1.0, gt=0, description="Normalized noise SD at which the factor is uncertainty_scale."
    )

    def with_training(self, **changes: Any) -> RestorationConfig:
        """A copy with some training settings changed (validated)."""
        return self.updated(training=changes)

    @model_validator(mode="after")
    def _consistent(self) -> RestorationConfig:
        if self.network.probabilistic != (self.training.loss == "laplace"):
            raise ValueError("a probabilistic network trains with loss: laplace, and only it does")
        if self.network.dims != len(self.axes):
            raise ValueError(
                f"axes {self.axes} need a {len(self.axes)}D network, "
                f"got network.dims={self.network.dims}"
            )
        return self


class RestorationModel(Model):
    """A U-Net restoration model with its percentile normalization.

    Parameters
    ----------
    config : the model's configuration (architecture, normalization, training).
    """

    config_class = RestorationConfig
    usage = "abbe restore IMAGE -m"
    #: Papers cited by exported packages (each method sets its own).
    citations: tuple[Citation, ...] = ()
    #: Keywords of exported packages.
    tags: tuple[str, ...] = ("denoising", "restoration")

    def __init__(self, config: RestorationConfig | None = None) -> None:
        super().__init__(config)

    def build_network(self) -> Any:
        from abbe.nn.unet import UNet

        return UNet(self.config.network)

    def training_extras(self) -> dict[str, Any]:
        """Extra arguments of the training engine (loss, discriminator) for this kind of model."""
        return {}

    @property
    def scale(self) -> int:
        """Output pixels per input pixel along Y and X."""
        return int(getattr(self.config.network, "scale", 1))

    @property
    def bytes_per_pixel(self) -> float:
        """Rough peak memory per pixel of a forward pass (float32 activations, oneDNN buffers)."""
        cfg = self.config.network
        return 4.0 * cfg.width * (10 + 2 * cfg.convs_per_level)

    def export_info(self) -> ExportInfo:
        """Percentile-normalized input; the network's output in the same normalized units
        (the mean, then the log Laplace scale for a probabilistic model)."""
        cfg = self.config
        norm = cfg.normalization
        channels = ("restored", "log_laplace_scale") if cfg.network.probabilistic else ("restored",)
        return ExportInfo(
            kind="image",
            spatial_axes=cfg.axes,
            input_description=(
                f"a fluorescence image, any linear unit; its {norm.low:g} and {norm.high:g} "
                "percentiles are mapped to 0 and 1"
            ),
            output_description=(
                "the restored image in the input's normalized units (0 and 1 are the input's "
                f"{norm.low:g} and {norm.high:g} percentiles): multiply by their difference and "
                "add the low one to return to the input's units (abbe restore does; the "
                "bioimage.io spec has no step that undoes another tensor's percentiles)"
            ),
            output_channels=channels,
            percentiles=(norm.low, norm.high),
            scale=self.scale,
            citations=self.citations,
            tags=self.tags,
            sample="filaments" if cfg.axes == "YX" else "blobs",
            limits=(
                "Outputs are in the normalized units of each input image (see outputs).",
                "Trained for the conditions listed under training data; images far from them "
                "(other structures, noise levels, pixel sizes) may be restored with invented "
                "detail. abbe restore warns about such images; bioimage.io tools do not.",
            ),
        )

    # ------------------------------------------------------------------ predict
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
        intensity_range: tuple[float, float] | None = None,
        engine: str = "torch",
    ) -> Any:
        """Restore an image.

        Parameters
        ----------
        image : numpy, dask or zarr array.
        axes : its axes, e.g. ``YX``, ``TYX`` (frame by frame), ``ZYX`` (a 3D model, or plane by
            plane with a 2D model), ``CYX``.
        tile : ``"auto"`` (from ``memory_mb``), a core edge in pixels, or None (one window).
        memory_mb : memory budget for one window's activations.
        device : ``auto`` (CUDA when present), ``cpu``, ``cuda``, …
        threads : CPU threads (default: as set for the process).
        out : array to write into (e.g. a zarr array for images larger than memory).
        progress : wraps the tile iterator, e.g. with a progress bar.
        uncertainty : also return a per-pixel standard deviation (calibrated; probabilistic
            models only). ``"scale"`` returns the raw Laplace scale b instead.
        out_uncertainty : array to write the uncertainty into.
        warn : warn (:class:`abbe.trust.ood.OutOfDistributionWarning`) when the image differs
            from the training data.
        intensity_range : the image's normalization percentiles (low, high) when already known
            (a distributed task predicting part of an image: the whole image's range, so every
            part is normalized alike); None measures them.
        engine : ``torch``, ``onnx`` (ONNX Runtime, CPU) or ``onnx-int8`` (int8-quantized), see
            :mod:`abbe.predict.engines`; normalization and tiling are the same for all three.

        Returns
        -------
        float32 array shaped like ``image`` (``out`` when given), in the input's units; with
        ``uncertainty``, the pair (restored, uncertainty).
        """
        import torch

        from abbe.nn.unet import fuse_batch_norm
        from abbe.predict.engines import check_device, check_engine

        check_engine(engine)
        check_device(engine, device)
        axes = check_axes(axes, image.ndim)
        spatial = self.config.axes
        want = {False: None, True: "sd", "sd": "sd", "scale": "scale"}[uncertainty]
        if want and not self.config.network.probabilistic:
            raise ModelError(
                "this model predicts no uncertainty; train one with network.probabilistic: true "
                "and training.loss: laplace, or use an ensemble"
            )
        if not set(spatial) <= set(axes):
            raise InputError(f"a {spatial} model needs an image with axes {spatial}; got {axes}")
        net_cfg = self.config.network
        dev = resolve_device(device if engine == "torch" else "cpu")
        if engine == "torch":
            net = fuse_batch_norm(_copy_network(self.network)).to(dev).eval()
        memory_format = torch.channels_last if net_cfg.dims == 2 else torch.contiguous_format
        if engine == "torch":
            net = net.to(memory_format=memory_format)
        norm = self.config.normalization
        if intensity_range is None:
            lo, hi = percentile_range(image, norm.low, norm.high)
        else:
            lo, hi = (float(v) for v in intensity_range)
        loop_axes = [a for a in axes if a not in spatial]
        order = [axes.index(a) for a in loop_axes + list(spatial)]
        view = _transpose(image, order)
        n_loop = int(np.prod(view.shape[: len(loop_axes)])) if loop_axes else 1
        spatial_shape = view.shape[len(loop_axes) :]
        if warn:
            self._warn_if_unusual(view, len(loop_axes))
        out_shape = self.output_shape(image.shape, axes)
        if out is None:
            out = np.empty(out_shape, dtype=np.float32)
        if want and out_uncertainty is None:
            out_uncertainty = np.empty(out_shape, dtype=np.float32)
        tile_shape = self.tile_shape(spatial_shape, tile, memory_mb)
        n_out = net_cfg.out_channels
        calibration = self._calibration()
        # The per-image part of the calibration: this image's noise in normalized units.
        noise = self._normalized_noise(view, len(loop_axes), lo, hi) if want == "sd" else 0.0

        def network(x: np.ndarray) -> np.ndarray:
            if onnx is not None:
                return onnx(x[None])[0]
            t = torch.from_numpy(x)[None].to(dev).to(memory_format=memory_format)
            with torch.inference_mode():
                return net(t)[0].float().cpu().numpy()

        def run(window: np.ndarray) -> np.ndarray:
            y = network(normalize(window, lo, hi))
            mean = denormalize(y[:n_out], lo, hi)
            if want is None:
                return mean
            scale = np.exp(np.clip(y[n_out : 2 * n_out], -10, 10))  # normalized units
            if want == "sd":  # Laplace SD, calibrated: factor and error floors
                scale = np.sqrt(2.0) * calibration.scale(scale, noise)
            scale = scale * np.float32(hi - lo)
            return np.concatenate([mean, scale.astype(np.float32)])

        with torch_threads(threads):
            onnx = None
            if engine != "torch":
                from abbe.predict.engines import onnx_runner

                onnx = onnx_runner(self, engine, threads=threads)  # type: ignore[arg-type]
            for k in range(n_loop):
                index = np.unravel_index(k, view.shape[: len(loop_axes)]) if loop_axes else ()
                frame = view[index] if loop_axes else view
                writer: Any = _FrameWriter(out, axes, loop_axes, spatial, index)
                if want:
                    writer = _SplitWriter(
                        [writer, _FrameWriter(out_uncertainty, axes, loop_axes, spatial, index)]
                    )
                self.windowed(
                    run,
                    _AddChannel(frame),
                    tile=tile_shape,
                    out=writer,
                    progress=progress,
                    scale=self.scale,
                )
        return (out, out_uncertainty) if want else out

    def output_shape(self, shape: tuple[int, ...], axes: str) -> tuple[int, ...]:
        """Shape of the prediction for an input of ``shape`` with ``axes`` (Y, X times the
        model's scale)."""
        s = self.scale
        return tuple(n * s if a in "YX" else n for a, n in zip(axes, shape, strict=True))

    def _calibration(self) -> Any:
        from abbe.trust.uncertainty import Calibration

        c = self.config
        return Calibration(
            factor=c.uncertainty_scale,
            floor=c.uncertainty_floor,
            noisier=getattr(c, "uncertainty_noisier", 0.0),
            cleaner=getattr(c, "uncertainty_cleaner", 0.0),
            noise_reference=getattr(c, "uncertainty_noise_reference", 1.0),
        )

    def _normalized_noise(self, view: Any, n_loop: int, lo: float, hi: float) -> float:
        """Noise SD of one representative plane (as for the OOD check) over ``hi − lo``; 0
        when the calibration does not use it (older models predict as they always did)."""
        from abbe.trust.uncertainty import normalized_noise

        c = self.config
        if not (getattr(c, "uncertainty_noisier", 0.0) or getattr(c, "uncertainty_cleaner", 0.0)):
            return 0.0
        plane = view[(0,) * n_loop] if n_loop else view
        if plane.ndim == 3:  # a 3D model's stack: its middle plane
            plane = plane[plane.shape[0] // 2]
        return normalized_noise(plane, lo, hi)

    def _warn_if_unusual(self, view: Any, n_loop: int) -> list[str]:
        """Compare one representative 2D plane of the input with the training data's ranges."""
        from abbe.trust.ood import warn_if_unusual

        stats = self.config.training_data.get("stats")
        if not stats:
            return []
        plane = view[(0,) * n_loop] if n_loop else view
        if plane.ndim == 3:  # a 3D model's stack: its middle plane
            plane = plane[plane.shape[0] // 2]
        return warn_if_unusual(plane, stats)

    # ------------------------------------------------------------------ load
    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RestorationModel:
        """Load a restoration model folder as whichever restoration method it holds (CARE,
        N2V or super-resolution), whatever restoration class this is called on."""
        from abbe.models.registry import METHODS, model_class, read_settings, resolve

        folder = resolve(path)
        method = read_settings(folder)[0].get("method")
        target = model_class(method) if method in METHODS else None
        if target is None or not issubclass(target, RestorationModel):
            raise ModelError(f"holds a {method!r} model, not a restoration model", folder)
        return super(RestorationModel, target).load(folder)

    def __repr__(self) -> str:
        c = self.config
        return f"{type(self).__name__}(name={c.name!r}, method={c.method!r}, axes={c.axes!r})"


class _AddChannel:
    """View a ``(*spatial)`` array as ``(1, *spatial)`` without reading it."""

    def __init__(self, array: Any) -> None:
        self.array = array
        self.ndim = array.ndim + 1
        self.shape = (1, *array.shape)

    def __getitem__(self, index: tuple) -> Any:
        return self.array[index[1:]][None]


class _SplitWriter:
    """Send channel c of each core to the c-th writer (restoration, uncertainty)."""

    def __init__(self, writers: list[Any]) -> None:
        self.writers = writers

    def __setitem__(self, key: tuple, value: np.ndarray) -> None:
        for c, w in enumerate(self.writers):
            w[key] = value[c : c + 1]


def _transpose(array: Any, order: list[int]) -> Any:
    if list(order) == list(range(len(order))):
        return array
    if isinstance(array, np.ndarray):
        return array.transpose(order)
    if hasattr(array, "transpose"):
        return array.transpose(order)
    raise InputError("this array type cannot be reordered; give axes in loop-then-spatial order")


class _FrameWriter:
    """Write ``(1, *spatial)`` cores of one frame into an output laid out in the input's axes.

    Works for numpy, zarr and other arrays that accept ``out[key] = value``.
    """

    def __init__(
        self, out: Any, axes: str, loop_axes: list[str], spatial: str, index: tuple
    ) -> None:
        self.out, self.axes, self.loop_axes, self.spatial = out, axes, loop_axes, spatial
        self.index = tuple(int(i) for i in index)
        present = [a for a in axes if a in spatial]
        self.perm = [spatial.index(a) for a in present]

    def __setitem__(self, key: tuple, value: np.ndarray) -> None:
        full = []
        for a in self.axes:
            if a in self.loop_axes:
                full.append(self.index[self.loop_axes.index(a)])
            else:
                full.append(key[1 + self.spatial.index(a)])
        self.out[tuple(full)] = np.transpose(np.asarray(value)[0], self.perm)


def _copy_network(net: Any) -> Any:
    import copy

    return copy.deepcopy(net)


def prepare_output_folder(folder: Path, *, resume: bool, overwrite: bool) -> None:
    """Check a training output folder: refuse to clobber a model unless asked."""
    has_model = (folder / mf.WEIGHTS).exists() or (folder / "checkpoints").exists()
    if resume:
        return
    if has_model and not overwrite:
        raise OutputExistsError(
            "already holds a model or checkpoints; pass --resume to continue training or "
            "--overwrite to start over",
            folder,
        )
    if has_model and overwrite:
        shutil.rmtree(folder / "checkpoints", ignore_errors=True)
        for name in (mf.WEIGHTS, mf.CONFIG, mf.METRICS, mf.HISTORY):
            (folder / name).unlink(missing_ok=True)
