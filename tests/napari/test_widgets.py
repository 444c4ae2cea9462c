"""The napari widgets on the sample data, headless: each adds the expected layers on the right
grid, with the values abbe's library gives (run with ``xvfb-run -a``, as ``make test`` does)."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

napari = pytest.importorskip("napari", reason="napari (abbe[napari]) is not installed")
pytest.importorskip("pytestqt", reason="pytest-qt is not installed")
if not os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
    pytest.skip("no display: run under xvfb-run -a (as make test does)", allow_module_level=True)

from abbe.napari import _sample_data as samples  # noqa: E402
from abbe.napari import _widgets as W  # noqa: E402


@pytest.fixture(scope="module")
def plugin():
    """The abbe manifest known to napari (registered from the source tree when the installed
    package predates it)."""
    from pathlib import Path

    from npe2 import PluginManager

    import abbe.napari

    pm = PluginManager.instance()
    try:
        pm.get_manifest("abbe")
    except KeyError:
        pm.register(str(Path(abbe.napari.__file__).parent / "napari.yaml"))
    return pm


@pytest.fixture
def viewer(make_napari_viewer, plugin):
    return make_napari_viewer()


@pytest.fixture
def said(monkeypatch):
    """The napari notifications the widgets raise: level → messages."""
    import napari.utils.notifications as notes

    seen: dict[str, list[str]] = {"error": [], "warning": [], "info": []}
    for level in seen:
        monkeypatch.setattr(notes, f"show_{level}", lambda m, _level=level: seen[_level].append(m))
    return seen


def _add(viewer, layer, crop=None):
    data, settings, kind = layer
    if crop is not None:
        data = data[crop]
    return getattr(viewer, f"add_{kind}")(data, **settings)


def _run(widget) -> None:
    widget.threaded = False  # the worker runs in this thread: same signals, no waiting
    widget.start()


def test_sample_data_opens_offline_with_pixel_sizes(viewer):
    for key in ("widefield-filaments", "smlm"):
        viewer.open_sample("abbe", key)
    assert viewer.layers["widefield-filaments"].scale.tolist() == [100.0, 100.0]
    assert viewer.layers["widefield-filaments (clean)"].data.shape == (256, 256)
    assert viewer.layers["smlm"].scale.tolist() == [1.0, 100.0, 100.0]
    assert type(viewer.layers["smlm (true positions)"]).__name__ == "Points"


def test_restore_runs_in_a_worker_with_run_disabled_and_adds_the_models_result(viewer, qtbot):
    from abbe import models

    noisy = _add(viewer, samples.widefield_filaments()[0], np.s_[:64, :64])
    widget = W.RestoreWidget(viewer)
    widget.image.value, widget.model.value = noisy, "denoise-widefield"
    widget.start()
    assert not widget.run_button.enabled  # while the worker runs
    with qtbot.waitSignal(widget.worker.finished, timeout=60_000):
        pass
    assert widget.run_button.enabled
    out = viewer.layers[-1]
    assert out.name == "widefield-filaments restored (denoise-widefield)"
    assert out.scale.tolist() == [100.0, 100.0] and out.translate.tolist() == [50.0, 50.0]
    # The widget adds what the library computes, nothing else.
    expected = models.load("denoise-widefield").predict(np.asarray(noisy.data), "YX")
    np.testing.assert_allclose(out.data, expected, rtol=1e-5, atol=1e-5)


def test_super_resolution_halves_the_pixel_size_and_shows_napari_progress(viewer, monkeypatch):
    import napari.utils

    bars: list[str] = []

    class Recorded(napari.utils.progress):
        def __init__(self, *args, **kwargs):
            bars.append(kwargs.get("desc"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(napari.utils, "progress", Recorded)
    noisy = _add(viewer, samples.widefield_filaments()[0], np.s_[:32, :32])
    widget = W.RestoreWidget(viewer)
    widget.image.value, widget.model.value = noisy, "sr-widefield-2x"
    _run(widget)
    assert bars == ["restoring"]  # the model's tiles, counted in napari's progress bar
    out = viewer.layers[-1]
    assert out.data.shape == (64, 64)
    # 100 nm → 50 nm pixels, the first pixel's corner still at 0 nm.
    assert out.scale.tolist() == [50.0, 50.0] and out.translate.tolist() == [25.0, 25.0]


def test_an_abbe_error_is_one_notification_line_and_adds_nothing(viewer, said):
    noisy = _add(viewer, samples.widefield_filaments()[0], np.s_[:32, :32])
    widget = W.RestoreWidget(viewer)
    widget.image.value, widget.model.value = noisy, "denoise-widefield"
    widget.uncertainty.value = True  # the bundled model is not probabilistic
    _run(widget)
    assert len(viewer.layers) == 1
    (message,) = said["error"]
    assert "predicts no uncertainty" in message and "\n" not in message
    assert "Traceback" not in message
    assert widget.run_button.enabled


@pytest.fixture(scope="module")
def probabilistic_model(tmp_path_factory):
    """An untrained CARE with a Laplace head (its maps are the library's, whatever they are)."""
    import torch

    from abbe.nn import UNetConfig
    from abbe.restore import CARE, RestorationConfig
    from abbe.train import TrainingConfig

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models") / "probabilistic"
    config = RestorationConfig(
        network=UNetConfig(width=4, depth=2, probabilistic=True),
        training=TrainingConfig(loss="laplace"),
    )
    CARE(config).save(folder)
    return folder


def test_a_probabilistic_model_adds_its_uncertainty_and_verify_scores_it(
    viewer, probabilistic_model
):
    from abbe import models
    from abbe.trust.verify import verify

    noisy_t, clean_t = samples.widefield_filaments()
    crop = np.s_[:48, :48]
    noisy, clean = _add(viewer, noisy_t, crop), _add(viewer, clean_t, crop)
    widget = W.RestoreWidget(viewer)
    widget.image.value, widget.folder.value = noisy, probabilistic_model
    widget.uncertainty.value = True
    _run(widget)
    restored, sd = viewer.layers[-2], viewer.layers[-1]
    assert sd.name.startswith("widefield-filaments uncertainty")
    assert sd.scale.tolist() == [100.0, 100.0]
    mean, expected_sd = models.load(probabilistic_model).predict(
        np.asarray(noisy.data), "YX", uncertainty=True
    )
    np.testing.assert_allclose(restored.data, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sd.data, expected_sd, rtol=1e-5, atol=1e-6)
    check = W.VerifyWidget(viewer)
    check.result.value, check.reference.value = restored, noisy
    check.truth.value, check.uncertainty.value = clean, sd
    _run(check)
    report = viewer.layers[-1].metadata["abbe"]["report"]
    # The 90 % interval's coverage of the truth, the value the library computes.
    expected = verify(
        mean,
        reference=np.asarray(noisy.data),
        truth=np.asarray(clean.data),
        uncertainty=expected_sd,
        pixel_size_nm=100.0,
    )
    assert report["uncertainty"]["coverage_90"] == pytest.approx(expected.coverage_90, abs=1e-6)


def test_segment_adds_labels_on_the_images_grid(viewer):
    from abbe.segment import Segmenter

    image_layer, truth_layer = samples.nuclei()
    crop = np.s_[:128, :128]
    image = _add(viewer, image_layer, crop)
    image.scale = (65.0, 65.0)  # any grid: the labels must lie on it
    widget = W.SegmentWidget(viewer)
    widget.image.value = image
    _run(widget)
    labels = viewer.layers[-1]
    assert type(labels).__name__ == "Labels"
    assert labels.scale.tolist() == [65.0, 65.0]
    seg = Segmenter.load("nuclei-fluo")
    data = np.asarray(image.data, np.float32)
    expected = seg.predict(data, scale=seg.nucleus_size(data).zoom)
    np.testing.assert_array_equal(labels.data, expected)
    # And the nuclei the simulation drew are found: the count within 25 %.
    n_true = len(np.unique(truth_layer[0][crop])) - 1
    assert int(labels.data.max()) == pytest.approx(n_true, rel=0.25)


def _nearest(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    d = np.linalg.norm(truth[:, None, :] - found[None, :, :], axis=2)
    return d.min(axis=1)


def test_localize_finds_the_simulated_emitters_as_points_in_nm_and_renders(viewer):
    stack_layer, truth_layer = samples.smlm_stack()
    stack = _add(viewer, stack_layer, np.s_[:10])
    widget = W.LocalizeWidget(viewer)
    widget.image.value = stack
    _run(widget)
    render, points = viewer.layers[-2], viewer.layers[-1]
    assert render.scale.tolist() == [10.0, 10.0] and render.data.shape == (480, 480)
    assert type(points).__name__ == "Points" and points.scale.tolist() == [1.0, 1.0]
    # Truth: the simulated positions (nm, frames from 1) in the 10 frames used. An isolated
    # emitter (no other within 400 nm, ~3 PSF σ, in its frame) of 1000–5000 photons is fitted
    # to a few nm (median precision ~4 nm): 90 % of them found within 30 nm. Emitters that
    # overlap on a filament are a harder case this test leaves to abbe.localize's own tests.
    truth = truth_layer[1]["features"].assign(y=truth_layer[0][:, 0], x=truth_layer[0][:, 1])
    found = points.features.assign(y=points.data[:, 0], x=points.data[:, 1])
    errors = []
    for f in range(1, 11):
        t = truth.loc[truth["frame"] == f, ["y", "x"]].to_numpy()
        b = found.loc[found["frame"] == f, ["y", "x"]].to_numpy()
        if len(t) == 0:
            continue
        gaps = np.linalg.norm(t[:, None] - t[None], axis=2) + np.eye(len(t)) * 1e9
        alone = t[gaps.min(axis=1) > 400]
        errors += list(_nearest(b, alone)) if len(b) else [np.inf] * len(alone)
    assert len(errors) >= 20
    assert np.mean(np.array(errors) < 30) >= 0.9, np.percentile(errors, [50, 90])
    np.testing.assert_allclose(points.size, 2 * points.features["uncertainty_nm"], rtol=1e-6)


def test_localize_on_camera_counts_says_so_as_a_napari_warning(viewer, said):
    data, settings, _ = samples.smlm_stack()[0]
    settings = {**settings, "metadata": {}}  # no "units: photons" any more
    adu = viewer.add_image(data[:5] * 2.0 + 100.0, **settings)
    widget = W.LocalizeWidget(viewer)
    widget.image.value = adu
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _run(widget)
    assert any("camera output with a baseline" in m for m in said["warning"]), said
    assert any("camera output" in w for w in viewer.layers[-1].metadata["abbe"]["warnings"]), (
        "the warning travels with the result"
    )


def test_verify_adds_the_error_map_and_the_resolution_plot(viewer):
    from abbe import models
    from abbe.trust.verify import verify

    noisy_t, clean_t = samples.widefield_filaments()
    crop = np.s_[:96, :96]
    noisy, clean = _add(viewer, noisy_t, crop), _add(viewer, clean_t, crop)
    restored = models.load("denoise-widefield").predict(np.asarray(noisy.data), "YX")
    result = viewer.add_image(restored, name="restored", scale=(100.0, 100.0))
    widget = W.VerifyWidget(viewer)
    widget.result.value, widget.reference.value, widget.truth.value = result, noisy, clean
    _run(widget)
    emap = viewer.layers[-1]
    assert emap.name == "restored error map" and emap.scale.tolist() == [100.0, 100.0]
    expected = verify(
        restored,
        reference=np.asarray(noisy.data),
        truth=np.asarray(clean.data),
        pixel_size_nm=100.0,
        reference_pixel_size_nm=100.0,
    )
    np.testing.assert_allclose(emap.data, expected.error_map.map, rtol=1e-5)
    report = emap.metadata["abbe"]["report"]
    assert report["resolution"]["frc_against_truth_nm"] == pytest.approx(expected.frc.resolution_nm)
    # The FRC curve is drawn in a dock widget.
    ax = widget.plot.figure.axes[0]
    assert "FRC" in ax.get_title() and len(ax.lines) >= 2
    assert "abbe: resolution" in viewer.window.dock_widgets
