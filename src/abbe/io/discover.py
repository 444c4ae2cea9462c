"""Finding image files and pairing them: folders expanded, inputs matched to targets or labels."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from abbe.errors import InputError
from abbe.io.images import read
from abbe.io.meta import Meta

#: File endings taken as images when a folder is expanded.
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".zarr")


def find_images(paths: Sequence[Path], role: str) -> list[Path]:
    """Expand folders into their image files (sorted by name); check that every file exists.

    Parameters
    ----------
    paths : files and folders; an OME-Zarr folder (``*.zarr``) counts as one image.
    role : what the images are for (``"input"``, ``"target"``, …), named in errors.

    Returns
    -------
    The image files, folders expanded in place.

    Raises
    ------
    InputError
        If a file does not exist or a folder holds no images.
    """
    files: list[Path] = []
    for p in paths:
        if p.is_dir() and p.suffix.lower() != ".zarr":
            found = sorted(f for f in p.iterdir() if f.name.lower().endswith(IMAGE_SUFFIXES))
            if not found:
                raise InputError(f"no images (.tif, .png, .zarr) in this {role} folder", p)
            files += found
        elif not p.exists():
            raise InputError("file not found", p)
        else:
            files.append(p)
    return files


def pair_files(
    inputs: Sequence[Path],
    targets: Sequence[Path],
    *,
    input_args: Sequence[Path],
    target_args: Sequence[Path],
) -> list[tuple[Path, Path]]:
    """Pair inputs with targets: by file name when both were given as folders, else by order.

    Parameters
    ----------
    inputs, targets : the files, as :func:`find_images` returns them.
    input_args, target_args : the paths the user gave (folders or files), which decide the rule.

    Returns
    -------
    ``(input, target)`` pairs in the order of ``inputs``.

    Raises
    ------
    InputError
        If an input has no target of the same name (folders), or the counts differ (lists).
    """
    if all(p.is_dir() for p in [*input_args, *target_args]):
        by_name = {t.name: t for t in targets}
        missing = [i for i in inputs if i.name not in by_name]
        if missing:
            raise InputError(f"no target with the same name in {target_args[0]}", missing[0])
        return [(i, by_name[i.name]) for i in inputs]
    if len(inputs) != len(targets):
        raise InputError(f"{len(inputs)} inputs but {len(targets)} targets; give one per input")
    return list(zip(inputs, targets, strict=True))


def read_images(files: Sequence[Path], axes: str | None = None) -> tuple[list[np.ndarray], Meta]:
    """Read images that must share one layout, as float32 arrays.

    Parameters
    ----------
    files : image files (at least one).
    axes : axes of every file, or None to take each file's own.

    Returns
    -------
    The arrays, and the metadata of the first file.

    Raises
    ------
    InputError
        If a file cannot be read, or the files' axes differ.
    """
    arrays, metas = [], []
    for f in files:
        data, meta = read(f, axes=axes)
        arrays.append(np.asarray(data, dtype=np.float32))
        metas.append(meta)
    first = metas[0].axes
    for f, m in zip(files, metas, strict=True):
        if m.axes != first:
            raise InputError(f"has axes {m.axes} but {files[0].name} has {first}; give --axes", f)
    return arrays, metas[0]


def read_plane(path: Path, *, what: str = "an image") -> np.ndarray:
    """Read a 2D image; of an RGB(A) file (e.g. a PNG) the first channel.

    Parameters
    ----------
    path : the image file.
    what : what the image is (``"an input"``, ``"a label image"``), named in errors.

    Raises
    ------
    InputError
        If the image is not 2D.
    """
    data, meta = read(path)
    a = _first_colour(np.asarray(data))
    if a.ndim != 2:
        raise InputError(f"{what} must be a 2D image; this one has axes {meta.axes}", path)
    return a


def read_label_pairs(images_dir: Path, labels_dir: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Read image/label pairs from two folders, matched by file name.

    Parameters
    ----------
    images_dir : folder of images (TIFF, PNG); of RGB(A) files the first channel is used.
    labels_dir : folder of label images with the same file names: 0 background, 1…n objects.

    Returns
    -------
    ``(image, labels)`` pairs: float32 images and int32 labels of the same shape.

    Raises
    ------
    InputError
        If a file has no partner, shapes differ, or a label image holds fractions.
    """
    files = find_images([images_dir], "images")
    label_files = find_images([labels_dir], "labels")
    pairs = []
    for img_path, lab_path in pair_files(
        files, label_files, input_args=[images_dir], target_args=[labels_dir]
    ):
        img = _first_colour(np.asarray(read(img_path)[0], dtype=np.float32))
        lab = _first_colour(np.asarray(read(lab_path)[0]))
        if img.shape != lab.shape:
            raise InputError(
                f"labels of shape {lab.shape} do not match the image {img.shape}", lab_path
            )
        if not np.issubdtype(lab.dtype, np.integer):
            raise InputError("a label image must hold whole numbers (one per nucleus)", lab_path)
        pairs.append((img, lab.astype(np.int32)))
    return pairs


def _first_colour(a: np.ndarray) -> np.ndarray:
    """The first channel of an RGB(A) array (Y, X, 3 or 4); any other array as it is."""
    return a[..., 0] if a.ndim == 3 and a.shape[-1] in (3, 4) else a
