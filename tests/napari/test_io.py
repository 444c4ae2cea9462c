"""The napari reader and writers: files in, layer data tuples out, and back (no viewer)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from abbe import io
from abbe.io.tables import read_localizations, write_localizations
from abbe.napari import _reader, _writer
from abbe.napari._layers import points_table


def _layer(path) -> tuple:
    reader = _reader.get_reader(str(path))
    assert reader is not None, f"abbe declined {path}"
    (layer,) = reader(str(path))
    return layer


def test_tiff_opens_with_the_pixel_size_as_scale_and_the_first_pixel_corner_at_zero(tmp_path):
    image = np.random.default_rng(0).random((20, 30)).astype(np.float32)
    io.write(tmp_path / "a.tif", image, io.Meta("YX", pixel_size_nm=65.0))
    data, settings, kind = _layer(tmp_path / "a.tif")
    assert kind == "image"
    np.testing.assert_array_equal(data, image)
    assert settings["scale"] == [65.0, 65.0]
    # Pixel centres at (i + ½)·65 nm, where abbe's localizations put them.
    assert settings["translate"] == [32.5, 32.5]
    assert settings["units"] == ["nm", "nm"]


def test_ome_zarr_opens_lazily_with_its_scale(tmp_path):
    import dask.array as da

    stack = np.random.default_rng(1).random((3, 16, 16)).astype(np.float32)
    io.write(tmp_path / "s.zarr", stack, io.Meta("TYX", pixel_size_nm=80.0))
    data, settings, _ = _layer(tmp_path / "s.zarr")
    # A dask array: napari reads only the planes it shows (images larger than memory open).
    assert isinstance(data, da.Array)
    np.testing.assert_allclose(np.asarray(data), stack)
    assert settings["scale"] == [1.0, 80.0, 80.0]


def test_large_tiff_opens_lazily(tmp_path, monkeypatch):
    import dask.array as da

    monkeypatch.setattr(_reader, "LAZY_BYTES", 0)  # every file counts as large
    io.write(tmp_path / "big.tif", np.ones((4, 8, 8), np.float32), io.Meta("TYX"))
    data, _, _ = _layer(tmp_path / "big.tif")
    assert isinstance(data, da.Array)


def test_image_round_trip_keeps_values_axes_and_pixel_size(tmp_path):
    stack = np.random.default_rng(2).random((2, 12, 10)).astype(np.float32)
    io.write(tmp_path / "in.tif", stack, io.Meta("ZYX", pixel_size_nm=90.0, z_step_nm=250.0))
    data, settings, _ = _layer(tmp_path / "in.tif")
    _writer.write_image(str(tmp_path / "out.tif"), data, settings)
    back, meta = io.read(tmp_path / "out.tif")
    np.testing.assert_array_equal(back, stack)
    assert (meta.axes, meta.pixel_size_nm, meta.z_step_nm) == ("ZYX", 90.0, 250.0)


def test_an_image_made_in_napari_is_written_with_its_scale_as_pixel_size(tmp_path):
    image = np.arange(24, dtype=np.float32).reshape(4, 6)
    _writer.write_image(str(tmp_path / "n.tif"), image, {"scale": [40.0, 40.0], "metadata": {}})
    assert io.read(tmp_path / "n.tif")[1].pixel_size_nm == 40.0
    # napari's default scale 1 means unknown, not 1 nm.
    _writer.write_image(str(tmp_path / "u.tif"), image, {"scale": [1.0, 1.0], "metadata": {}})
    assert io.read(tmp_path / "u.tif")[1].pixel_size_nm is None


def test_labels_round_trip_as_labels(tmp_path):
    labels = np.zeros((16, 16), np.int32)
    labels[2:6, 2:6], labels[9:14, 8:12] = 1, 2
    _writer.write_labels(str(tmp_path / "l.tif"), labels, {"scale": [50.0, 50.0], "metadata": {}})
    data, settings, kind = _layer(tmp_path / "l.tif")
    assert kind == "labels"
    np.testing.assert_array_equal(data, labels)
    assert settings["scale"] == [50.0, 50.0]


def _locs(n: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "frame": rng.integers(1, 20, n),
            "x_nm": rng.uniform(0, 3000, n),
            "y_nm": rng.uniform(0, 2000, n),
            "photons": rng.uniform(500, 3000, n),
            "uncertainty_nm": rng.uniform(5, 25, n),
            "z_nm": rng.uniform(-300, 300, n),
        }
    )


def test_localizations_open_as_points_in_nm_sized_by_their_precision(tmp_path):
    locs = _locs()
    write_localizations(tmp_path / "locs.csv", locs)
    data, settings, kind = _layer(tmp_path / "locs.csv")
    assert kind == "points"
    # CSV keeps 4 decimals: positions within 1e-4 nm.
    np.testing.assert_allclose(data, locs[["y_nm", "x_nm"]].to_numpy(), atol=1e-4)
    np.testing.assert_allclose(settings["size"], 2 * locs["uncertainty_nm"], atol=1e-3)
    for col in ("frame", "photons", "z_nm"):
        np.testing.assert_allclose(settings["features"][col], locs[col], atol=1e-3)


def test_points_round_trip_through_the_csv_writer(tmp_path):
    locs = _locs()
    write_localizations(tmp_path / "in.csv", locs)
    data, settings, _ = _layer(tmp_path / "in.csv")
    _writer.write_points(str(tmp_path / "out.csv"), data, settings)
    back = read_localizations(tmp_path / "out.csv")
    for col in locs.columns:
        np.testing.assert_allclose(back[col], locs[col], atol=2e-4, err_msg=col)


def test_picasso_hdf5_opens_in_nm(tmp_path):
    locs = _locs()[["frame", "x_nm", "y_nm", "photons"]]
    write_localizations(tmp_path / "p.hdf5", locs, pixel_size_nm=100.0, shape=(20, 30, 40))
    data, _, _ = _layer(tmp_path / "p.hdf5")
    np.testing.assert_allclose(data, locs[["y_nm", "x_nm"]].to_numpy(), atol=1e-2)


def test_points_drawn_on_a_stack_take_frames_from_the_time_axis():
    # Three points clicked on frames 0, 0 and 4 of a TYX stack shown at 100 nm pixels.
    data = np.array([[0, 1, 2], [0, 3, 4], [4, 5, 6]], float)
    settings = {"scale": [1.0, 100.0, 100.0], "translate": [0.0, 50.0, 50.0], "features": None}
    table = points_table(data, settings)
    assert table["frame"].tolist() == [1, 1, 5]
    np.testing.assert_allclose(table["y_nm"], [150.0, 350.0, 550.0])
    np.testing.assert_allclose(table["x_nm"], [250.0, 450.0, 650.0])


def test_other_files_are_left_to_other_readers(tmp_path):
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    (tmp_path / "x.png").write_bytes(b"")
    assert _reader.get_reader(str(tmp_path / "notes.csv")) is None
    assert _reader.get_reader(str(tmp_path / "x.png")) is None


def test_import_abbe_and_its_cli_import_nothing_from_napari():
    code = (
        "import sys, abbe, abbe.cli.main; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('napari', 'magicgui', 'qtpy')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_manifest_is_valid_and_names_callables_that_exist():
    npe2 = pytest.importorskip("npe2", reason="npe2 (abbe[napari]) is not installed")
    pytest.importorskip("magicgui", reason="magicgui (abbe[napari]) is not installed")
    import importlib
    from pathlib import Path

    import abbe.napari

    manifest = npe2.PluginManifest.from_file(Path(abbe.napari.__file__).parent / "napari.yaml")
    assert manifest.name == "abbe"
    contrib = manifest.contributions
    widgets = {w.display_name for w in contrib.widgets}
    assert widgets == {"Restore", "Segment nuclei", "Localize", "Verify"}
    assert {s.key for s in contrib.sample_data} == {"widefield-filaments", "nuclei", "smlm"}
    for command in contrib.commands:
        module, name = command.python_name.split(":")
        assert callable(getattr(importlib.import_module(module), name)), command.id
