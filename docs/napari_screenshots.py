"""Screenshots of the napari widgets for the README: each widget run on the sample data.

Run from the repository root under a virtual display (needs ``abbe[napari]``)::

    xvfb-run -a python docs/napari_screenshots.py

Writes ``docs/images/napari-<widget>.png`` (the whole window: layer list, canvas, widget).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from npe2 import PluginManager

import abbe.napari
import napari
from abbe.napari import _widgets as W

OUT = Path(__file__).parent / "images"
SIZE = (1280, 760)  # window size: small PNGs, readable text
WIDGET_WIDTH = 380


def _viewer() -> napari.Viewer:
    pm = PluginManager.instance()
    try:
        pm.get_manifest("abbe")
    except KeyError:  # the installed package predates the plugin: use the source tree's
        pm.register(str(Path(abbe.napari.__file__).parent / "napari.yaml"))
    viewer = napari.Viewer(show=True)
    viewer.window.resize(*SIZE)
    return viewer


def _dock(viewer: napari.Viewer, widget: W.TaskWidget, name: str) -> W.TaskWidget:
    widget.threaded = False  # finish before the screenshot
    widget.native.setMaximumWidth(WIDGET_WIDTH)
    viewer.window.add_dock_widget(widget, name=f"abbe: {name}", area="right")
    return widget


def _save(viewer: napari.Viewer, name: str) -> None:
    from PIL import Image
    from qtpy.QtWidgets import QApplication

    QApplication.processEvents()  # lay the window out before fitting the view to it
    _close_notifications()
    viewer.reset_view()
    QApplication.processEvents()
    shot = viewer.screenshot(canvas_only=False, flash=False)
    path = OUT / f"napari-{name}.png"
    # 256 colours keep each PNG well under 300 KB; the UI has few colours anyway.
    Image.fromarray(shot[..., :3]).quantize(256).save(path, optimize=True)
    print(f"{path}: {shot.shape[1]}×{shot.shape[0]}, {path.stat().st_size / 1024:.0f} KB")
    viewer.close()


def _close_notifications() -> None:
    """Close the pop-ups over the canvas: each widget's status line says the same."""
    from napari._qt.dialogs.qt_notification import NapariQtNotification
    from qtpy.QtWidgets import QApplication

    for window in QApplication.topLevelWidgets():
        for popup in window.findChildren(NapariQtNotification):
            popup.close()
            popup.deleteLater()
    QApplication.processEvents()


def restore() -> None:
    viewer = _viewer()
    viewer.open_sample("abbe", "widefield-filaments")
    widget = _dock(viewer, W.RestoreWidget(viewer), "restore")
    widget.image.value = viewer.layers["widefield-filaments"]
    widget.start()
    viewer.layers.remove("widefield-filaments (clean)")
    viewer.canvas.grid.enabled = True  # noisy and restored side by side
    _save(viewer, "restore")


def segment() -> None:
    viewer = _viewer()
    viewer.open_sample("abbe", "nuclei")
    viewer.layers.remove("nuclei (true labels)")
    widget = _dock(viewer, W.SegmentWidget(viewer), "segment")
    widget.image.value = viewer.layers["nuclei"]
    widget.start()
    viewer.layers[-1].contour = 2
    _save(viewer, "segment")


def localize() -> None:
    viewer = _viewer()
    viewer.open_sample("abbe", "smlm")
    viewer.layers.remove("smlm (true positions)")
    widget = _dock(viewer, W.LocalizeWidget(viewer), "localize")
    widget.image.value = viewer.layers["smlm"]
    widget.render_pixel.value = 20.0
    widget.start()
    viewer.layers["smlm"].visible = False
    render = viewer.layers["smlm render"]
    lit = render.data[render.data > 0]
    render.contrast_limits = (0.0, float(np.percentile(lit, 90)))
    points = viewer.layers["smlm localizations"]
    points.opacity = 0.35  # the render shows through; each disc is ±1σ of its localization
    _save(viewer, "localize")


def verify() -> None:
    viewer = _viewer()
    viewer.open_sample("abbe", "widefield-filaments")
    restorer = W.RestoreWidget(viewer)
    restorer.threaded = False
    restorer.image.value = viewer.layers["widefield-filaments"]
    restorer.start()
    widget = _dock(viewer, W.VerifyWidget(viewer), "verify")
    widget.result.value = viewer.layers[-1]
    widget.reference.value = viewer.layers["widefield-filaments"]
    widget.truth.value = viewer.layers["widefield-filaments (clean)"]
    widget.start()
    for layer in viewer.layers[:-1]:
        layer.visible = False
    _save(viewer, "verify")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for make in (restore, segment, localize, verify):
        make()
