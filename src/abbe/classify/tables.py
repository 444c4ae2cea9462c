"""Training tables for the classifier: which image (or which object of a label image) is which
class."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from abbe.classify.model import object_crops
from abbe.errors import InputError
from abbe.io.discover import read_plane


def read_table(path: Path) -> tuple[list[np.ndarray], list[str], list[np.ndarray | None]]:
    """Training crops and their classes from a CSV table.

    Parameters
    ----------
    path : CSV with columns ``file,class`` (one whole image per row) or
        ``file,labels,object,class`` (one object of a label image per row). Paths are relative
        to the table's folder; RGB(A) images are read by their first channel.

    Returns
    -------
    crops : one image per row (whole images as float32; objects as cut by
        :func:`~abbe.classify.object_crops`).
    names : the class of each row.
    masks : each object's mask, or None for whole images.

    Raises
    ------
    InputError
        If the table, an image or an object is missing, or a column is.
    """
    if not path.exists():
        raise InputError("file not found", path)
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise InputError("the table has no rows", path)
    cols = set(rows[0])
    if not {"file", "class"} <= cols:
        raise InputError("the table needs columns file and class (and labels, object)", path)
    by_object = {"labels", "object"} <= cols
    crops, names, masks = [], [], []
    cache: dict[tuple[str, str], dict[int, Any]] = {}
    for i, r in enumerate(rows, start=2):
        img_path = path.parent / r["file"]
        if not img_path.exists():
            raise InputError(f"row {i}: image not found: {r['file']}", path)
        if by_object and r.get("labels"):
            key = (r["file"], r["labels"])
            if key not in cache:
                lab_path = path.parent / r["labels"]
                if not lab_path.exists():
                    raise InputError(f"row {i}: label image not found: {r['labels']}", path)
                image = read_plane(img_path, what="an image")
                lab = read_plane(lab_path, what="a label image")
                cache[key] = {c.label: c for c in object_crops(image, lab)}
            try:
                c = cache[key][int(r["object"])]
            except (KeyError, ValueError):
                raise InputError(
                    f"row {i}: no object {r['object']!r} in {r['labels']}", path
                ) from None
            crops.append(c.crop)
            masks.append(c.mask)
        else:
            crops.append(read_plane(img_path, what="an image").astype(np.float32))
            masks.append(None)
        names.append(r["class"].strip())
    return crops, names, masks
