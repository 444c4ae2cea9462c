"""napari widgets: restore, segment, localize and verify, one dock widget per task.

Each widget reads its choices on the main thread, runs abbe's library calls (the ones the CLI
verbs call) in a worker thread with napari's progress bar, and adds the result as layers on the
main thread. The Run button is disabled while the work runs; an :class:`~abbe.errors.AbbeError`
becomes a one-line napari error notification and each :class:`~abbe.errors.AbbeWarning` a napari
warning (and the new layers' ``metadata["abbe"]["warnings"]``), as the CLI prints them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    PushButton,
)

from abbe.errors import AbbeError, InputError
from abbe.io.meta import Meta
from abbe.napari._layers import KEY, LayerData, image_layer, layer_meta, points_layer

if TYPE_CHECKING:
    import napari


@dataclass
class Outcome:
    """What a job returns: layers to add, a one-line summary, and the warnings it raised."""

    layers: list[LayerData] = field(default_factory=list)
    summary: str = ""
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class TaskWidget(Container):
    """A form, a Run button, and the worker plumbing every task shares.

    Subclasses build their fields and implement :meth:`prepare`, which reads the fields on the
    main thread and returns the job to run in the worker (a function returning an
    :class:`Outcome`). Set ``threaded = False`` to run the job in the calling thread (tests).
    """

    run_text = "Run"

    def __init__(self, napari_viewer: napari.viewer.Viewer, fields: list[Any]) -> None:
        self.run_button = PushButton(text=self.run_text)
        self.status = Label(value="")
        self.status.native.setWordWrap(True)  # summaries are a sentence long
        super().__init__(widgets=[*fields, self.run_button, self.status])
        self.viewer = napari_viewer
        self.threaded = True
        self.worker: Any = None
        self.last: Outcome | None = None
        self.run_button.changed.connect(self.start)
        # Layer choices follow the viewer's layers.
        napari_viewer.layers.events.inserted.connect(self._refresh)
        napari_viewer.layers.events.removed.connect(self._refresh)
        napari_viewer.layers.events.reordered.connect(self._refresh)
        self.reset_choices()

    def _refresh(self, event: Any = None) -> None:
        try:
            self.reset_choices()
        except RuntimeError:  # the widget was closed and its Qt objects deleted: stop listening
            for name in ("inserted", "removed", "reordered"):
                getattr(self.viewer.layers.events, name).disconnect(self._refresh)

    def prepare(self) -> Callable[[], Outcome]:
        """Read the form; return the job (raise :class:`AbbeError` for a wrong choice)."""
        raise NotImplementedError

    def add_layers(self, outcome: Outcome) -> None:
        """Add the job's layers to the viewer (main thread)."""
        for data, settings, kind in outcome.layers:
            settings = dict(settings)
            meta = settings.setdefault("metadata", {}).setdefault(KEY, {})
            meta["warnings"] = list(outcome.warnings)
            getattr(self.viewer, f"add_{kind}")(data, **settings)

    def start(self, *_: Any) -> None:
        """Start the task: disable Run, run the job in a worker, show its result or error."""
        from napari.qt.threading import create_worker

        try:
            job = self.prepare()
        except AbbeError as exc:
            self._failed(exc)
            return
        self.run_button.enabled = False
        self.status.value = "running…"
        worker = create_worker(_collect, job, _start_thread=False)
        worker.returned.connect(self._done)
        worker.finished.connect(self._finished)
        self.worker = worker
        if self.threaded:
            worker.start()
        else:
            worker.run()  # same signals, emitted in this thread

    def _done(self, outcome: Outcome) -> None:
        from napari.utils.notifications import show_info, show_warning

        self.last = outcome
        if outcome.error is not None:
            self._failed(outcome.error)
            return
        self.add_layers(outcome)
        for message in outcome.warnings:
            show_warning(f"abbe: {message}")
        if outcome.summary:
            self.status.value = outcome.summary
            show_info(outcome.summary)

    def _failed(self, exc: BaseException | str) -> None:
        from napari.utils.notifications import show_error

        message = exc if isinstance(exc, str) else one_line(exc)
        self.status.value = f"error: {message}"
        show_error(message)

    def _finished(self) -> None:
        self.run_button.enabled = True


def one_line(exc: BaseException) -> str:
    """An error as the CLI prints it: abbe's own message, else the kind and message of a bug."""
    if isinstance(exc, AbbeError):
        return " ".join(str(exc).split())
    if isinstance(exc, MemoryError):
        return "out of memory; crop the image or close other layers"
    return f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())}"


def _collect(job: Callable[[], Outcome]) -> Outcome:
    """Run ``job`` and gather the AbbeWarnings it raised (printed on stderr, as the CLI does).

    A failure comes back as the outcome's one-line ``error``, not as an exception: napari
    relays a worker's exceptions as traceback notifications. ``ABBE_DEBUG=1`` lets an
    unexpected one through, traceback and all, as it does on the command line.
    """
    import os

    from abbe.cli.common import reported_warnings

    try:
        with reported_warnings() as caveats:
            outcome = job()
    except Exception as exc:
        if os.environ.get("ABBE_DEBUG") and not isinstance(exc, AbbeError):
            raise
        return Outcome(error=one_line(exc))
    outcome.warnings = [*outcome.warnings, *caveats]
    return outcome


# ------------------------------------------------------------------------------ layer choices
def _layer_box(task: TaskWidget, label: str, *, optional: bool = False) -> ComboBox:
    """A ComboBox of the viewer's image layers (refreshed as layers come and go)."""

    def choices(_: Any) -> list[tuple[str, Any]]:
        viewer = getattr(task, "viewer", None)  # None while the task is being built
        if viewer is None:
            return []
        return [(layer.name, layer) for layer in viewer.layers if type(layer).__name__ == "Image"]

    return ComboBox(label=label, choices=choices, nullable=optional)


def _meta_of(layer: Any) -> Meta:
    """A layer's axes and pixel size (abbe's entry, else its scale; see ``layer_meta``)."""
    return layer_meta(layer.data, {"scale": list(layer.scale), "metadata": layer.metadata})


def _derived(meta: Meta, data: Any, *, name: str, zoom: int = 1, **kw: Any) -> LayerData:
    """A result layer on the grid of an input with ``meta`` (``zoom`` times finer in Y, X)."""
    px = meta.pixel_size_nm / zoom if meta.pixel_size_nm else None
    out_meta = meta.replace(pixel_size_nm=px, source=None)
    data_out, settings, kind = image_layer(data, out_meta, name=name, **kw)
    if meta.pixel_size_nm is None and zoom > 1:
        # Pixel size unknown: the result still lies on the input's grid, in input pixels.
        fine = [a in "yx" for a in settings["axis_labels"]]
        scale = [s / zoom if f else s for s, f in zip(settings["scale"], fine, strict=True)]
        settings["scale"] = scale
        settings["translate"] = [s / 2 if f else 0.0 for s, f in zip(scale, fine, strict=True)]
    return data_out, settings, kind


def _tiles(desc: str) -> Callable[[Iterator[Any], int], Iterator[Any]]:
    """A model's tile-progress hook shown as napari's progress bar."""

    def wrap(tiles: Iterator[Any], total: int) -> Iterator[Any]:
        from napari.utils import progress

        yield from progress(tiles, total=total, desc=desc)

    return wrap


def _bundled(methods: tuple[str, ...]) -> list[str]:
    from abbe.models.registry import available

    return [m["name"] for m in available() if m["method"] in methods]


def _model_choice(box: ComboBox, folder: FileEdit) -> str:
    """The model folder when one is given, else the bundled name chosen."""
    path = folder.value
    if path is not None and str(path) not in ("", ".") and Path(path).is_dir():
        return str(path)
    if box.value is None:
        raise InputError("choose a model")
    return str(box.value)


def _need(layer: Any, what: str) -> Any:
    if layer is None:
        raise InputError(f"choose {what} (open an image or File ▸ Open Sample ▸ abbe)")
    return layer


# ------------------------------------------------------------------------------------ restore
class RestoreWidget(TaskWidget):
    """Denoise or super-resolve the chosen image with a bundled or trained model
    (``abbe restore``); adds the restored image, and its uncertainty when asked and the model
    gives one."""

    run_text = "Restore"
    METHODS = ("care", "n2v", "superres")

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        self.image = _layer_box(self, "image")
        self.model = ComboBox(label="model", choices=_bundled(self.METHODS))
        self.folder = FileEdit(label="or model folder", mode="d", value="")
        self.uncertainty = CheckBox(
            label="uncertainty", value=False, tooltip="probabilistic models only"
        )
        super().__init__(napari_viewer, [self.image, self.model, self.folder, self.uncertainty])

    def prepare(self) -> Callable[[], Outcome]:
        layer = _need(self.image.value, "an image")
        name = _model_choice(self.model, self.folder)
        meta, data, want = _meta_of(layer), layer.data, bool(self.uncertainty.value)

        def job() -> Outcome:
            from abbe import models
            from abbe.restore.model import RestorationModel

            m = models.load(name)
            if not isinstance(m, RestorationModel):
                raise InputError("is not a restoration model", name)
            result = m.predict(
                data, meta.axes, tile="auto", progress=_tiles("restoring"), uncertainty=want
            )
            restored, sd = result if want else (result, None)
            zoom = int(getattr(m, "scale", 1))
            layers = [_derived(meta, restored, name=f"{layer.name} restored ({name})", zoom=zoom)]
            if sd is not None:
                layers.append(
                    _derived(
                        meta,
                        sd,
                        name=f"{layer.name} uncertainty ({name})",
                        zoom=zoom,
                        colormap="magma",
                        visible=False,
                    )
                )
            return Outcome(layers, f"restored {layer.name} with {name}")

        return job


# ------------------------------------------------------------------------------------ segment
class SegmentWidget(TaskWidget):
    """Nuclei instance labels of the chosen 2D image (``abbe segment``)."""

    run_text = "Segment"

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        self.image = _layer_box(self, "image")
        self.model = ComboBox(label="model", choices=_bundled(("segment",)))
        self.folder = FileEdit(label="or model folder", mode="d", value="")
        self.diameter = FloatSpinBox(
            label="diameter (px)", value=0.0, min=0.0, max=1000.0, tooltip="0: measured"
        )
        super().__init__(napari_viewer, [self.image, self.model, self.folder, self.diameter])

    def prepare(self) -> Callable[[], Outcome]:
        layer = _need(self.image.value, "an image of nuclei")
        name = _model_choice(self.model, self.folder)
        meta = _meta_of(layer)
        if meta.axes != "YX":
            raise InputError(f"segmentation here takes a 2D image; {layer.name} has {meta.axes}")
        image = np.asarray(layer.data, dtype=np.float32)
        diameter = float(self.diameter.value) or None

        def job() -> Outcome:
            from napari.utils import progress

            from abbe.segment import Segmenter

            with progress(total=0, desc="segmenting"):
                seg = Segmenter.load(name)
                size = seg.nucleus_size(image, diameter)
                labels = seg.predict(image, scale=size.zoom)
            dtype = np.uint16 if labels.max() < 65536 else np.uint32
            out = _derived(
                meta.replace(extra={"units": "labels"}),
                labels.astype(dtype),
                name=f"{layer.name} labels",
                layer_type="labels",
            )
            text = f"{int(labels.max())} nuclei; {size.describe(meta.pixel_size_nm)}"
            return Outcome([out], text)

        return job


# ----------------------------------------------------------------------------------- localize
class LocalizeWidget(TaskWidget):
    """Single-molecule localizations of the chosen stack (``abbe localize``): MLE fitting or a
    learned model folder; adds the localizations as points (nm) and a rendered image."""

    run_text = "Localize"
    #: Frames per batch, as the CLI's ``--chunk``: the progress bar moves once per batch.
    CHUNK = 50

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        self.image = _layer_box(self, "stack (TYX)")
        self.method = ComboBox(label="method", choices=["fit", "learned"], value="fit")
        self.folder = FileEdit(label="learned model folder", mode="d", value="")
        self.offset = FloatSpinBox(label="offset (ADU)", value=0.0, min=0.0, max=1e6)
        self.gain = FloatSpinBox(
            label="gain (ADU/e⁻)", value=0.0, min=0.0, max=1e4, tooltip="0: data in photons"
        )
        self.min_photons = FloatSpinBox(
            label="min photons", value=0.0, min=0.0, max=1e6, tooltip="0: 6× the noise"
        )
        self.render_pixel = FloatSpinBox(label="render pixel (nm)", value=10.0, min=0.5, max=1e3)
        fields = [self.image, self.method, self.folder, self.offset, self.gain, self.min_photons]
        super().__init__(napari_viewer, [*fields, self.render_pixel])

    def prepare(self) -> Callable[[], Outcome]:
        from abbe import io
        from abbe.localize.calibration import camera_from_flags

        layer = _need(self.image.value, "an SMLM stack")
        meta = _meta_of(layer)
        stack = io.as_tyx(layer.data, meta.axes, path=layer.name, what="localization")
        px = io.pixel_size(meta, None, path=layer.name)
        camera = camera_from_flags(
            offset=self.offset.value if self.gain.value else None,
            gain=self.gain.value or None,
            em_gain=None,
            qe=None,
            read_noise=None,
        )
        folder = self.folder.value
        learned = self.method.value == "learned"
        if learned and (folder is None or not Path(folder).is_dir()):
            raise InputError("choose the learned model's folder (abbe train localizer|deepstorm)")
        min_photons = float(self.min_photons.value) or None
        render_px = float(self.render_pixel.value)

        def job() -> Outcome:
            return _localize(
                layer.name,
                stack,
                meta,
                px,
                camera,
                folder if learned else None,
                min_photons,
                render_px,
                self.CHUNK,
            )

        return job


def _localize(
    name: str,
    stack: Any,
    meta: Meta,
    px: float,
    camera: Any,
    model_folder: Path | None,
    min_photons: float | None,
    render_px: float,
    chunk: int,
) -> Outcome:
    """Fit (or predict with a learned model) batch by batch, check, render: the library calls
    of ``abbe localize`` without its file output."""
    import pandas as pd
    from napari.utils import progress

    from abbe.localize import fit
    from abbe.localize.checks import check_localizations, check_photon_units
    from abbe.localize.render import render_gaussian

    learned = None
    if model_folder is not None:
        from abbe.localize.learned import load_model

        learned = load_model(model_folder)
    check_photon_units(
        stack,
        camera=camera,
        units=meta.extra.get("units"),
        remedy="give the camera's offset and gain",
    )
    parts = []
    for start in progress(range(0, stack.shape[0], chunk), desc="localizing"):
        frames = np.asarray(stack[start : start + chunk], dtype=np.float32)
        if learned is not None:
            locs = learned.predict(frames, camera=camera)
        else:
            locs = fit(frames, pixel_size_nm=px, camera=camera, min_photons=min_photons)
        locs["frame"] += start
        parts.append(locs)
    locs = pd.concat(parts, ignore_index=True)
    check_localizations(locs, shape=stack.shape, pixel_size_nm=px, sigma_fitted=learned is None)
    field_nm = (stack.shape[1] * px, stack.shape[2] * px)
    image = render_gaussian(locs, field_nm=field_nm, pixel_size_nm=render_px)
    render_meta = Meta("YX", pixel_size_nm=render_px, extra={"units": "localizations"})
    layers = [
        image_layer(image, render_meta, name=f"{name} render", colormap="inferno"),
        points_layer(locs, name=f"{name} localizations"),
    ]
    precision = (
        f", median precision {np.median(locs['uncertainty_nm']):.1f} nm" if len(locs) else ""
    )
    return Outcome(layers, f"{len(locs)} localizations in {stack.shape[0]} frames{precision}")


# ------------------------------------------------------------------------------------- verify
class VerifyWidget(TaskWidget):
    """How far to trust a result (``abbe verify``): the error map against the data it came
    from, its uncertainty when given, scores against a truth, and the resolution curves
    (FRC against the truth, decorrelation) as a plot in a dock widget."""

    run_text = "Verify"

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        self.result = _layer_box(self, "result")
        self.reference = _layer_box(self, "input (reference)")
        self.truth = _layer_box(self, "truth", optional=True)
        self.uncertainty = _layer_box(self, "uncertainty", optional=True)
        self.plot: Any = None
        fields = [self.result, self.reference, self.truth, self.uncertainty]
        super().__init__(napari_viewer, fields)

    def prepare(self) -> Callable[[], Outcome]:
        result = _need(self.result.value, "the result")
        reference = _need(self.reference.value, "the input it was computed from")
        out_meta, ref_meta = _meta_of(result), _meta_of(reference)
        arrays = {
            "result": np.asarray(result.data),
            "reference": np.asarray(reference.data),
            "truth": _optional(self.truth.value),
            "uncertainty": _optional(self.uncertainty.value),
        }
        given_uncertainty = self.uncertainty.value is not None
        truth_units = (
            _meta_of(self.truth.value).extra.get("units") if self.truth.value is not None else None
        )

        def job() -> Outcome:
            from napari.utils import progress

            from abbe.trust.verify import verify

            with progress(total=0, desc="verifying"):
                report = verify(
                    arrays["result"],
                    reference=arrays["reference"],
                    truth=arrays["truth"],
                    uncertainty=arrays["uncertainty"],
                    pixel_size_nm=out_meta.pixel_size_nm,
                    reference_pixel_size_nm=ref_meta.pixel_size_nm,
                    units=out_meta.extra.get("units"),
                    reference_units=ref_meta.extra.get("units"),
                    truth_units=truth_units,
                )
            px = report.pixel_size_nm if report.pixel_size_known else None
            grid = Meta("YX", pixel_size_nm=px, extra={"units": report.reference_units})
            emap = report.error_map
            # Zero at the bottom, as in abbe verify's figure: 0 means no error.
            top = max(float(np.percentile(emap.map, 99.8)), 1e-12)
            error_layer = image_layer(
                emap.map,
                grid,
                name=f"{result.name} error map",
                colormap="magma",
                blending="additive",
                contrast_limits=(0.0, top),
            )
            error_layer[1]["metadata"][KEY]["report"] = report.to_dict()
            layers = [error_layer]
            if report.uncertainty is not None and not given_uncertainty:
                layers.append(
                    image_layer(
                        report.uncertainty,
                        grid,
                        name=f"{result.name} uncertainty",
                        colormap="magma",
                    )
                )
            text = f"{result.name}: RSP {emap.rsp:.3f}, RSE {emap.rse:.3g}" + _resolution(report)
            return Outcome(layers, text, extra={"report": report})

        return job

    def add_layers(self, outcome: Outcome) -> None:
        """Add the error map and show the resolution curves in a dock widget."""
        super().add_layers(outcome)
        self.plot = resolution_canvas(outcome.extra["report"], self.plot)
        window = getattr(self.viewer, "window", None)
        if window is not None and not getattr(self.plot, "_docked", False):
            window.add_dock_widget(self.plot, name="abbe: resolution", area="right")
            self.plot._docked = True


def _optional(layer: Any) -> np.ndarray | None:
    return None if layer is None else np.asarray(layer.data)


def _resolution(report: Any) -> str:
    res = report.to_dict()["resolution"]
    unit = report.to_dict()["length_unit"]
    parts = [
        f"{k.replace('_nm', '').replace('_', ' ')} {v:.0f} {unit}" for k, v in res.items() if v
    ]
    return "; " + ", ".join(parts) if parts else ""


def resolution_canvas(report: Any, canvas: Any = None) -> Any:
    """A Qt matplotlib canvas with the report's FRC and decorrelation curves (reused if given).

    The figure is made without pyplot, so napari's Qt event loop and matplotlib's default
    backend are left alone.
    """
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
    from matplotlib.figure import Figure

    from abbe.report.figures import resolution_plot

    if canvas is None:
        canvas = FigureCanvasQTAgg(Figure(figsize=(4.8, 4.0), layout="constrained"))
        canvas.setMinimumSize(360, 340)  # room for the legend under the axes
    fig = canvas.figure
    fig.clear()
    ax = fig.add_subplot()
    resolution_plot(
        None,
        frc=report.frc,
        decorrelation=report.decorrelation,
        pixel_size_nm=report.pixel_size_nm,
        title="FRC against the truth, decorrelation" if report.frc else "decorrelation",
        ax=ax,
        unit="nm" if report.pixel_size_known else "px",
    )
    canvas.draw_idle()
    return canvas
