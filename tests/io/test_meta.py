"""Helpers on axes and pixel sizes that every verb shares."""

from __future__ import annotations

import numpy as np
import pytest

from abbe import io
from abbe.errors import InputError


def test_pixel_size_prefers_the_given_value_and_names_the_file_when_unknown():
    assert io.pixel_size(io.Meta("YX", pixel_size_nm=65.0)) == 65.0
    assert io.pixel_size(io.Meta("YX", pixel_size_nm=65.0), 80.0) == 80.0
    with pytest.raises(InputError, match="pixel size unknown: give --pixel-size NM") as exc:
        io.pixel_size(io.Meta("YX"), path="a.tif")
    assert exc.value.path == "a.tif"


def test_plane_yx_drops_length_one_axes_and_refuses_real_stacks():
    a = np.arange(12, dtype=np.uint16).reshape(3, 4)
    plane = io.plane_yx(a[None, :, :, None], "TYXC")
    assert plane.dtype == np.float64
    np.testing.assert_array_equal(plane, a)
    # X before Y in the file: the plane comes back as (Y, X).
    np.testing.assert_array_equal(io.plane_yx(a.T, "XY"), a)
    with pytest.raises(InputError, match="takes one plane; got axes ZYX"):
        io.plane_yx(np.zeros((2, 3, 4)), "ZYX", needs="takes one plane")


def test_as_tyx_turns_images_and_single_channel_series_into_frames():
    img = np.ones((5, 6))
    assert io.as_tyx(img, "YX").shape == (1, 5, 6)
    series = np.arange(2 * 5 * 6).reshape(5, 6, 2)
    np.testing.assert_array_equal(io.as_tyx(series, "YXT"), np.moveaxis(series, -1, 0))
    assert io.as_tyx(np.ones((3, 1, 5, 6)), "TCYX").shape == (3, 5, 6)
    with pytest.raises(InputError, match="localization takes a TYX stack; got axes CYX"):
        io.as_tyx(np.ones((2, 5, 6)), "CYX", what="localization")
