"""abbe segment / abbe restore -m model.zip: bioimage.io packages from the command line."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from abbe import io
from tests.models.test_bioimageio_import_helpers import (  # noqa: F401 (private_home: autouse)
    make_package,
    nuclei_folder,
    private_home,
    write_files,
)


@pytest.fixture(scope="module")
def nuclei(shared_data):
    return nuclei_folder(shared_data)


def test_segment_with_the_nuclei_package_gives_its_maps_and_labels(cli, nuclei, tmp_path):
    # The command: abbe segment IN -m <package> -o labels.tif (+ --maps).
    x = np.load(nuclei / "test_input.npy")[0, 0]
    expected = np.load(nuclei / "test_output.npy")[0, 0]
    io.write(tmp_path / "in.tif", x, io.Meta("YX"))
    r = cli(
        "segment", tmp_path / "in.tif", "-m", nuclei, "-o", tmp_path / "labels.tif",
        "--maps", tmp_path / "maps.tif", "--device", "cpu",
    )  # fmt: skip
    assert r.code == 0, r
    # Name, weight format and citation on the console.
    assert "UNet 2D Nuclei Broad" in r.out and "onnx weights" in r.out and "Ronneberger" in r.out
    maps, meta = io.read(tmp_path / "maps.tif")
    # Spec 0.5 tolerance (rtol = atol = 1e-3); measured max abs error 1.7e-6.
    np.testing.assert_allclose(np.asarray(maps), expected, rtol=1e-3, atol=1e-3)
    assert np.abs(np.asarray(maps) - expected).max() < 1e-4
    assert meta.extra["model"]["weights"] == "onnx" and meta.extra["channels"] == ["probability"]
    labels, lmeta = io.read(tmp_path / "labels.tif")
    # Independent count: components of the package's own test output above 0.5, ≥ 10 px.
    comp, _ = ndimage.label(expected > 0.5)
    sizes = np.bincount(comp.ravel())[1:]
    assert int(np.asarray(labels).max()) == int((sizes >= 10).sum()) > 20
    assert lmeta.extra["units"] == "labels" and lmeta.extra["warnings"] == []


def test_restore_with_a_torchscript_package_zip(cli, tmp_path):
    from tests.models.test_bioimageio_import_helpers import expected_output, tiny_network

    pkg = make_package(tmp_path / "tiny.zip")
    img = np.random.default_rng(3).gamma(2.0, 50.0, size=(48, 40)).astype(np.float32)
    io.write(tmp_path / "in.tif", img, io.Meta("YX", pixel_size_nm=100.0))
    r = cli("restore", tmp_path / "in.tif", "-m", pkg, "-o", tmp_path / "out.tif")
    assert r.code == 0, r
    assert "tiny conv" in r.out and "torchscript weights" in r.out and "10.0000/tiny" in r.out
    out, meta = io.read(tmp_path / "out.tif")
    want = expected_output(tiny_network(0), img[None, None].astype(np.float64))[0, 0]
    assert meta.axes == "YX" and np.abs(np.asarray(out) - want).max() < 1e-4


def test_restore_writes_every_output_channel_of_a_package(cli, tmp_path):
    # A YX image through a package with two output channels gives a CYX image.
    from tests.models.test_bioimageio_import_helpers import expected_output, tiny_network

    pkg = make_package(tmp_path / "two.zip", out_channels=2)
    img = np.random.default_rng(5).gamma(2.0, 50.0, size=(48, 40)).astype(np.float32)
    io.write(tmp_path / "in.tif", img, io.Meta("YX"))
    r = cli("restore", tmp_path / "in.tif", "-m", pkg, "-o", tmp_path / "out.tif", "-q")
    assert r.code == 0, r
    out, meta = io.read(tmp_path / "out.tif")
    want = expected_output(tiny_network(0, 2), img[None, None].astype(np.float64))[0]
    assert meta.axes == "CYX" and np.abs(np.asarray(out) - want).max() < 1e-4


def test_pixel_size_far_from_the_package_is_a_warning_line(cli, tmp_path):
    pkg = make_package(tmp_path / "px.zip", pixel_size_um=0.125)
    img = np.random.default_rng(4).gamma(2.0, 50.0, size=(32, 32)).astype(np.float32)
    io.write(tmp_path / "in.tif", img, io.Meta("YX", pixel_size_nm=300.0))
    r = cli("restore", tmp_path / "in.tif", "-m", pkg, "-o", tmp_path / "out.tif", "-q")
    assert r.code == 0, r
    assert "warning:" in r.err and "pixel size 300 nm" in r.err and "for 125 nm" in r.err


def test_segment_refuses_a_package_whose_maps_are_not_probabilities(cli, tmp_path):
    pkg = make_package(tmp_path / "tiny.zip")
    io.write(tmp_path / "in.tif", np.ones((32, 32), np.float32), io.Meta("YX"))
    r = cli("segment", tmp_path / "in.tif", "-m", pkg, "-o", tmp_path / "l.tif")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1
    assert "abbe restore" in r.err and not (tmp_path / "l.tif").exists()


def test_a_zip_that_is_not_a_package_is_one_error_line(cli, tmp_path):
    write_files(tmp_path / "bad.zip", {"readme.txt": b"hello"})
    io.write(tmp_path / "in.tif", np.ones((32, 32), np.float32), io.Meta("YX"))
    r = cli("restore", tmp_path / "in.tif", "-m", tmp_path / "bad.zip", "-o", tmp_path / "o.tif")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1
    assert "bad.zip: is not a bioimage.io package" in r.err
