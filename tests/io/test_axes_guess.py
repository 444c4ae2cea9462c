"""A stack whose file does not say what its planes are is read as TYX, and abbe says so: a Z stack
taken for a time series gives wrong numbers without any error (issue 28, finding 8)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tifffile

from abbe import io
from abbe.errors import AbbeWarning


def _read(path, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, meta = io.read(path, **kwargs)
    return meta, [w.message for w in caught if issubclass(w.category, AbbeWarning)]


def test_planes_without_axes_are_read_as_time_with_a_warning_naming_the_file(tmp_path):
    path = tmp_path / "planes.tif"
    tifffile.imwrite(path, np.ones((6, 16, 16), np.float32), photometric="minisblack")
    meta, said = _read(path)
    assert meta.axes == "TYX" and meta.axes_guessed
    assert len(said) == 1 and said[0].path == str(path)
    assert str(said[0]) == (
        "no axes in the file; read as TYX (time); pass --axes ZYX if these are z planes"
    )
    told, said = _read(path, axes="ZYX")
    assert told.axes == "ZYX" and not told.axes_guessed and said == []


@pytest.mark.parametrize("kind", ["imagej", "abbe", "rgb", "plane"])
def test_files_that_say_their_axes_read_without_a_warning(tmp_path, kind):
    path = tmp_path / f"{kind}.tif"
    if kind == "imagej":
        tifffile.imwrite(
            path, np.ones((6, 16, 16), np.float32), imagej=True, metadata={"axes": "ZYX"}
        )
        expected = "ZYX"
    elif kind == "abbe":
        io.write(path, np.ones((6, 16, 16), np.float32), io.Meta("TYX"))
        expected = "TYX"
    elif kind == "rgb":
        tifffile.imwrite(path, np.ones((16, 16, 3), np.uint8), photometric="rgb")
        expected = "YXC"
    else:
        tifffile.imwrite(path, np.ones((16, 16), np.float32))
        expected = "YX"
    meta, said = _read(path)
    assert meta.axes == expected and not meta.axes_guessed and said == []
