"""Image input and output (TIFF, OME-TIFF, ImageJ TIFF, PNG, OME-Zarr) with axes and pixel size."""

from abbe.io.atomic import OutputSet, atomic_path, check_writable
from abbe.io.discover import find_images, pair_files, read_images, read_label_pairs, read_plane
from abbe.io.images import read, validate, write
from abbe.io.meta import (
    AXES_LETTERS,
    Meta,
    as_tyx,
    check_axes,
    default_axes,
    pixel_size,
    plane_yx,
    transpose_to,
)

__all__ = [
    "AXES_LETTERS",
    "Meta",
    "OutputSet",
    "as_tyx",
    "atomic_path",
    "check_axes",
    "check_writable",
    "default_axes",
    "find_images",
    "pair_files",
    "pixel_size",
    "plane_yx",
    "read",
    "read_images",
    "read_label_pairs",
    "read_plane",
    "transpose_to",
    "validate",
    "write",
]
