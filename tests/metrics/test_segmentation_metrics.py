"""Segmentation scores on label images whose IoUs are known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from abbe.errors import InputError
from abbe.metrics.segmentation import iou_matrix, score_labels


def squares(*corners, size=10, shape=(64, 64)):
    lab = np.zeros(shape, np.int32)
    for i, (y, x) in enumerate(corners, start=1):
        lab[y : y + size, x : x + size] = i
    return lab


def test_identical_labels_score_one_whatever_the_label_values():
    t = squares((2, 2), (30, 30), (2, 40))
    p = np.where(t > 0, t * 7 + 3, 0)  # other label values, same objects
    s = score_labels(p, t)
    assert all(v == 1.0 for v in s.ap.values()) and s.f1 == 1.0 and s.pq == 1.0


def test_a_shifted_object_counts_only_below_its_iou():
    t = squares((10, 10))
    p = squares((10, 12))  # 2-pixel shift: IoU = 80 / 120
    assert iou_matrix(t, p)[0, 0] == pytest.approx(2 / 3)
    s = score_labels(p, t)
    assert s.ap50 == 1.0 and s.ap[0.65] == 1.0 and s.ap[0.7] == 0.0 and s.ap75 == 0.0
    assert s.pq == pytest.approx(2 / 3)


def test_misses_and_false_objects_lower_ap_as_tp_over_tp_fp_fn():
    t = squares((2, 2), (30, 30))
    p = squares((2, 2), (50, 2))  # one hit, one miss, one false object
    s = score_labels(p, t)
    assert s.ap50 == pytest.approx(1 / 3) and s.f1 == pytest.approx(0.5) and s.tp50 == 1


def test_matching_is_one_to_one_and_optimal():
    # One true object split in two predicted halves: only one half can match (IoU 0.5 each).
    t = squares((0, 0), size=20)
    p = np.zeros_like(t)
    p[0:20, 0:10], p[0:20, 10:20] = 1, 2
    s = score_labels(p, t)
    assert s.tp50 == 1 and s.ap50 == pytest.approx(1 / 2)


def test_bad_label_images_are_refused():
    with pytest.raises(InputError, match="shape"):
        score_labels(np.zeros((4, 4), int), np.zeros((4, 5), int))
    with pytest.raises(InputError, match="whole numbers"):
        score_labels(np.full((4, 4), 0.5), np.zeros((4, 4), int))
