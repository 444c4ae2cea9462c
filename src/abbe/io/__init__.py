"""Image input and output (TIFF, OME-TIFF, ImageJ TIFF, PNG, OME-Zarr) with axes and pixel size."""

from abbe.io.atomic import OutputSet, atomic_path, check_writable
from abbe.io.images import read, validate, write
from abbe.io.meta import AXES_LETTERS, Meta, check_axes, default_axes, transpose_to

__all__ = [
    "AXES_LETTERS",
    "Meta",
    "OutputSet",
    "atomic_path",
    "check_axes",
    "check_writable",
    "default_axes",
    "read",
    "transpose_to",
    "validate",
    "write",
]
