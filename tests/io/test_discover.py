"""Finding and pairing image files: folders expand, pairs match by name or order, and every
refusal names the file concerned."""

from __future__ import annotations

import numpy as np
import pytest

from abbe import io
from abbe.errors import InputError


def _write(path, array, axes="YX"):
    io.write(path, np.asarray(array), io.Meta(axes, pixel_size_nm=100.0), overwrite=True)
    return path


@pytest.fixture
def folders(tmp_path):
    for d in ("in", "gt"):
        (tmp_path / d).mkdir()
        for name in ("b.tif", "a.tif"):
            _write(tmp_path / d / name, np.full((8, 8), 1.0 if d == "in" else 2.0, np.float32))
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    return tmp_path


def test_find_images_expands_folders_sorted_and_keeps_files(folders):
    extra = folders / "gt" / "a.tif"
    found = io.find_images([folders / "in", extra], "input")
    assert [p.name for p in found] == ["a.tif", "b.tif", "a.tif"]
    assert found[-1] == extra


def test_find_images_refuses_an_empty_folder_and_a_missing_file(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images") as exc:
        io.find_images([tmp_path / "empty"], "target")
    assert exc.value.path == str(tmp_path / "empty") and "target folder" in exc.value.message
    with pytest.raises(InputError, match="file not found") as exc:
        io.find_images([tmp_path / "gone.tif"], "input")
    assert exc.value.path == str(tmp_path / "gone.tif")


def test_folders_pair_by_name_and_lists_by_order(folders):
    ins = io.find_images([folders / "in"], "input")
    gts = io.find_images([folders / "gt"], "target")
    by_name = io.pair_files(
        ins, gts[::-1], input_args=[folders / "in"], target_args=[folders / "gt"]
    )
    assert [(a.name, b.name) for a, b in by_name] == [("a.tif", "a.tif"), ("b.tif", "b.tif")]
    by_order = io.pair_files(ins, gts[::-1], input_args=ins, target_args=gts)
    assert [(a.name, b.name) for a, b in by_order] == [("a.tif", "b.tif"), ("b.tif", "a.tif")]


def test_pairing_refusals_name_the_unpaired_file(folders):
    (folders / "gt" / "b.tif").unlink()
    ins = io.find_images([folders / "in"], "input")
    gts = io.find_images([folders / "gt"], "target")
    with pytest.raises(InputError, match="no target with the same name") as exc:
        io.pair_files(ins, gts, input_args=[folders / "in"], target_args=[folders / "gt"])
    assert exc.value.path == str(folders / "in" / "b.tif")
    with pytest.raises(InputError, match="2 inputs but 1 targets"):
        io.pair_files(ins, gts, input_args=ins, target_args=gts)


def test_read_images_gives_float32_and_refuses_mixed_axes(tmp_path):
    a = _write(tmp_path / "a.tif", np.arange(64, dtype=np.uint16).reshape(8, 8))
    b = _write(tmp_path / "b.tif", np.ones((2, 8, 8), np.float32), axes="ZYX")
    arrays, meta = io.read_images([a, a])
    assert [x.dtype for x in arrays] == [np.float32, np.float32]
    assert arrays[0][7, 7] == 63 and meta.axes == "YX" and meta.pixel_size_nm == 100.0
    with pytest.raises(InputError, match=r"has axes ZYX but a\.tif has YX") as exc:
        io.read_images([a, b])
    assert exc.value.path == str(b)


def test_read_plane_takes_the_first_colour_of_rgb_and_refuses_stacks(tmp_path):
    rgb = np.zeros((6, 5, 3), np.uint8)
    rgb[..., 0] = 7
    _write(tmp_path / "rgb.tif", rgb, axes="YXC")
    _write(tmp_path / "z.tif", np.ones((2, 6, 5), np.float32), axes="ZYX")
    plane = io.read_plane(tmp_path / "rgb.tif")
    assert plane.shape == (6, 5) and np.all(plane == 7)
    with pytest.raises(InputError, match="a label image must be a 2D image; this one has axes ZYX"):
        io.read_plane(tmp_path / "z.tif", what="a label image")


def test_label_pairs_match_by_name_and_must_be_whole_numbers(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "lab").mkdir()
    lab = np.zeros((8, 8), np.uint16)
    lab[2:5, 2:5] = 3
    for name in ("x.tif", "y.tif"):
        _write(tmp_path / "img" / name, np.full((8, 8), 5.0, np.float32))
        _write(tmp_path / "lab" / name, lab)
    pairs = io.read_label_pairs(tmp_path / "img", tmp_path / "lab")
    assert len(pairs) == 2
    img, labels = pairs[0]
    assert img.dtype == np.float32 and labels.dtype == np.int32
    np.testing.assert_array_equal(labels, lab)
    _write(tmp_path / "lab" / "y.tif", lab.astype(np.float32))
    with pytest.raises(InputError, match="whole numbers") as exc:
        io.read_label_pairs(tmp_path / "img", tmp_path / "lab")
    assert exc.value.path == str(tmp_path / "lab" / "y.tif")
    _write(tmp_path / "lab" / "y.tif", np.zeros((4, 8), np.uint16))
    with pytest.raises(InputError, match=r"labels of shape \(4, 8\) do not match"):
        io.read_label_pairs(tmp_path / "img", tmp_path / "lab")
