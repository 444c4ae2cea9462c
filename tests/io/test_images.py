"""Reading and writing images keeps pixels, axes and pixel size; bad files give clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from abbe import io
from abbe.errors import InputError, OutputExistsError


@pytest.mark.parametrize(
    ("name", "dtype", "axes"),
    [
        ("imagej.tif", np.float32, "TZYX"),
        ("imagej16.tif", np.uint16, "CYX"),
        ("plain_int32.tif", np.int32, "SYX"),  # ImageJ cannot hold int32: plain TIFF
        ("reordered.tif", np.float32, "YXC"),  # not in ImageJ order: plain TIFF
        ("ome.ome.tif", np.uint16, "TZYX"),
        ("store.zarr", np.float32, "TZYX"),
    ],
)
def test_round_trip_keeps_pixels_axes_and_pixel_size(tmp_path, rng, name, dtype, axes):
    shape = {"T": 3, "Z": 2, "C": 2, "S": 4, "Y": 17, "X": 23}
    data = (rng.random([shape[a] for a in axes]) * 1000).astype(dtype)
    meta = io.Meta(
        axes=axes,
        pixel_size_nm=65.5,
        z_step_nm=300.0 if "Z" in axes else None,
        frame_interval_s=0.25 if "T" in axes else None,
    )
    path = io.write(tmp_path / name, data, meta)
    back, got = io.read(path)
    np.testing.assert_array_equal(np.asarray(back), data)
    assert back.dtype == data.dtype
    assert got.axes == axes
    assert got.pixel_size_nm == pytest.approx(65.5, rel=1e-6)
    if "Z" in axes:
        assert got.z_step_nm == pytest.approx(300.0, rel=1e-6)
    if "T" in axes:
        assert got.frame_interval_s == pytest.approx(0.25)


def test_imagej_file_is_read_by_tifffile_as_a_hyperstack_with_calibration(tmp_path, rng):
    # What Fiji sees: an ImageJ hyperstack in microns.
    data = rng.random((4, 16, 16)).astype(np.float32)
    path = io.write(tmp_path / "a.tif", data, io.Meta(axes="ZYX", pixel_size_nm=80, z_step_nm=250))
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej
        assert tif.series[0].axes == "ZYX"
        assert tif.imagej_metadata["unit"] == "um"
        assert tif.imagej_metadata["spacing"] == pytest.approx(0.25)
        num, den = tif.pages[0].tags["XResolution"].value
        assert den / num == pytest.approx(0.080, rel=1e-6)


def test_foreign_ome_tiff_pixel_size_in_nm_units_is_read(tmp_path, rng):
    data = rng.integers(0, 100, (2, 8, 9), dtype=np.uint16)
    path = tmp_path / "foreign.ome.tif"
    tifffile.imwrite(
        path,
        data,
        ome=True,
        metadata={
            "axes": "ZYX",
            "PhysicalSizeX": 107.0,
            "PhysicalSizeXUnit": "nm",
            "PhysicalSizeY": 107.0,
            "PhysicalSizeYUnit": "nm",
        },
    )
    _, meta = io.read(path)
    assert meta.axes == "ZYX"
    assert meta.pixel_size_nm == pytest.approx(107.0)


def test_ome_zarr_has_a_pyramid_that_ome_zarr_reads_with_correct_scales(tmp_path, rng):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    data = rng.random((1100, 1030)).astype(np.float32)
    io.write(tmp_path / "big.zarr", data, io.Meta(axes="YX", pixel_size_nm=50.0))
    node = next(iter(Reader(parse_url(str(tmp_path / "big.zarr")))()))
    shapes = [level.shape for level in node.data]
    scales = [t[0]["scale"] for t in node.metadata["coordinateTransformations"]]
    assert shapes[:3] == [(1100, 1030), (550, 515), (275, 257)]
    assert scales[:3] == [[50.0, 50.0], [100.0, 100.0], [200.0, 200.0]]
    # Level 1 is the 2×2 mean of level 0.
    np.testing.assert_allclose(
        np.asarray(node.data[1])[:10, :10],
        data[:20, :20].reshape(10, 2, 10, 2).mean(axis=(1, 3)),
        rtol=1e-6,
    )


def test_lazy_read_returns_a_chunked_dask_array(tmp_path, rng):
    import dask.array as da

    data = rng.random((600, 700)).astype(np.float32)
    io.write(tmp_path / "a.zarr", data, io.Meta(axes="YX", pixel_size_nm=100))
    tifffile.imwrite(tmp_path / "tiled.tif", data, tile=(256, 256))
    for name in ("a.zarr", "tiled.tif"):
        lazy, _ = io.read(tmp_path / name, lazy=True)
        assert isinstance(lazy, da.Array)
        assert lazy.numblocks != (1, 1)
        np.testing.assert_array_equal(lazy[100:110, 200:210].compute(), data[100:110, 200:210])


def test_png_is_read_as_grey_or_channels(tmp_path, rng):
    import imageio.v3 as iio

    grey = rng.integers(0, 255, (20, 30), dtype=np.uint8)
    iio.imwrite(tmp_path / "g.png", grey)
    iio.imwrite(tmp_path / "rgb.png", np.stack([grey, grey // 2, grey // 3], axis=-1))
    g, mg = io.read(tmp_path / "g.png")
    c, mc = io.read(tmp_path / "rgb.png")
    np.testing.assert_array_equal(g, grey)
    assert mg.axes == "YX"
    assert mc.axes == "CYX"
    np.testing.assert_array_equal(c[1], grey // 2)


def test_existing_output_is_kept_unless_overwrite(tmp_path):
    path = io.write(tmp_path / "a.tif", np.ones((8, 8), np.float32))
    with pytest.raises(OutputExistsError, match="already exists"):
        io.write(path, np.zeros((8, 8), np.float32))
    assert io.read(path)[0].max() == 1
    io.write(path, np.zeros((8, 8), np.float32), overwrite=True)
    assert io.read(path)[0].max() == 0


def test_failed_write_leaves_no_file_and_no_temporary(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        with open(args[0], "wb") as fh:
            fh.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", broken)
    with pytest.raises(OSError, match="disk full"):
        io.write(tmp_path / "a.tif", np.ones((8, 8), np.float32))
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- bad inputs
def _truncated(tmp_path, rng):
    path = tmp_path / "trunc.tif"
    tifffile.imwrite(path, rng.random((4, 64, 64)).astype(np.float32), photometric="minisblack")
    path.write_bytes(path.read_bytes()[:3000])
    return path


BAD_FILES = {
    "missing": (lambda tmp, rng: tmp / "nothing.tif", "file not found"),
    "empty file": (lambda tmp, rng: _write_bytes(tmp / "e.tif", b""), "empty"),
    "text named .tif": (
        lambda tmp, rng: _write_bytes(tmp / "t.tif", b"hello, I am text\n" * 9),
        "not a readable TIFF",
    ),
    "truncated": (_truncated, "not a readable TIFF"),
    "complex": (
        lambda tmp, rng: _tiff(tmp / "c.tif", np.ones((8, 8), np.complex64)),
        "unsupported pixel type",
    ),
    "empty array": (
        lambda tmp, rng: _tiff(tmp / "z.tif", np.ones((0, 8), np.float32)),
        "empty|not a readable",
    ),
    "nan": (
        lambda tmp, rng: _tiff(tmp / "n.tif", np.array([[1, np.nan], [np.inf, 2]] * 4, np.float32)),
        "4 NaN and 4 infinite",
    ),
    "unknown suffix": (lambda tmp, rng: _write_bytes(tmp / "a.xyz", b"x"), "unsupported file type"),
    "broken zarr": (lambda tmp, rng: _mkdir(tmp / "b.zarr"), "OME-Zarr"),
}


def _write_bytes(path, data):
    path.write_bytes(data)
    return path


def _tiff(path, data):
    tifffile.imwrite(path, data)
    return path


def _mkdir(path):
    path.mkdir()
    (path / "zarr.json").write_text("{not json")
    return path


@pytest.mark.filterwarnings("ignore:.*zero-size array")
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_raise_one_clear_error_naming_the_file(tmp_path, rng, case):
    make, message = BAD_FILES[case]
    path = make(tmp_path, rng)
    with pytest.raises(InputError, match=message) as info:
        io.read(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_axes_that_do_not_match_the_shape_are_refused(tmp_path):
    path = io.write(tmp_path / "a.tif", np.ones((8, 8), np.float32))
    with pytest.raises(InputError, match="3 letters but the image has 2 dimensions"):
        io.read(path, axes="TYX")
    with pytest.raises(InputError, match="repeat"):
        io.read(path, axes="YY")
    with pytest.raises(InputError, match="unknown letter"):
        io.read(path, axes="QX")


def test_transpose_to_reorders_and_adds_axes():
    a = np.arange(2 * 3 * 4).reshape(2, 3, 4)  # Y X C
    b = io.transpose_to(a, "YXC", "CZYX")
    assert b.shape == (4, 1, 2, 3)
    assert b[3, 0, 1, 2] == a[1, 2, 3]


@pytest.mark.parametrize("name", ["a.tif", "a.ome.tif"])
def test_an_image_written_without_pixel_size_reads_back_without_one(tmp_path, name):
    # A default resolution tag must not turn into a made-up calibration (e.g. 1 µm pixels).
    io.write(tmp_path / name, np.ones((16, 16), np.float32))
    assert io.read(tmp_path / name)[1].pixel_size_nm is None


@pytest.mark.parametrize("name", ["a.ome.tif", "a.tif", "a.zarr"])
def test_intensity_units_and_provenance_survive_the_round_trip(tmp_path, rng, name):
    # Issue 28: an OME-TIFF written by abbe and read back had lost `units` (ADU or photons),
    # which evaluate and verify need to tell whether two images can be compared as they are.
    extra = {"units": "ADU", "simulation": {"seed": 3, "photons": 50.0}}
    data = rng.random((16, 16)).astype(np.float32)
    io.write(tmp_path / name, data, io.Meta("YX", pixel_size_nm=100.0, extra=extra))
    _, meta = io.read(tmp_path / name)
    assert meta.extra == extra


def test_the_units_in_an_ome_tiff_are_a_key_value_pair_other_tools_show(tmp_path):
    path = io.write(
        tmp_path / "a.ome.tif",
        np.ones((8, 8), np.float32),
        io.Meta("YX", extra={"units": "photons"}),
    )
    with tifffile.TiffFile(path) as tif:
        xml = tif.ome_metadata
    assert '<M K="units">photons</M>' in xml and 'Namespace="abbe"' in xml
