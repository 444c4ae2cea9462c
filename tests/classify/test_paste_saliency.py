"""Crop saliency maps go back where their crops came from."""

from __future__ import annotations

import numpy as np

from abbe.classify import ObjectCrop, paste_saliency


def _crop(box):
    return ObjectCrop(label=1, crop=np.zeros((4, 4)), mask=np.ones((4, 4), bool), box=box)


def test_maps_are_resized_to_their_boxes_clipped_at_the_border_and_overlaps_keep_the_max():
    maps = np.stack([np.full((4, 4), 0.5), np.full((4, 4), 1.0)]).astype(np.float32)
    # The first box is 8×8 inside the image; the second 4×4 reaches 2 px past its corner.
    out = paste_saliency(maps, [_crop((0, 8, 0, 8)), _crop((-2, 2, -2, 2))], (10, 10))
    assert out.shape == (10, 10) and out.dtype == np.float32
    assert np.all(out[:2, :2] == 1.0)  # the overlap keeps the larger value
    assert np.all(out[2:8, 2:8] == 0.5) and out[:8, :8].min() == 0.5
    assert np.all(out[8:, :] == 0) and np.all(out[:, 8:] == 0)
