"""Challenge metrics count matches correctly and the precision limit has Mortensen's values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from abbe.metrics.smlm import crlb_nm, efficiency, match, mortensen_variance, score


@pytest.mark.parametrize(
    ("photons", "background", "expected"), [(1000, 20, 6.43), (3000, 60, 3.71), (5000, 100, 2.87)]
)
def test_mortensen_mle_bound_matches_the_published_examples(photons, background, expected):
    var = mortensen_variance(photons, background, sigma_nm=130, pixel_size_nm=100)
    assert math.sqrt(var) == pytest.approx(expected, abs=0.01)
    emccd = mortensen_variance(photons, background, sigma_nm=130, pixel_size_nm=100, excess=2)
    assert math.sqrt(emccd) == pytest.approx(expected * math.sqrt(2), abs=0.02)


def test_lsq_bound_is_worse_than_mle():
    mle = mortensen_variance(2000, 50, sigma_nm=130, pixel_size_nm=100)
    lsq = mortensen_variance(2000, 50, sigma_nm=130, pixel_size_nm=100, method="lsq")
    assert lsq > mle
    assert crlb_nm([2000], [50], sigma_nm=130, pixel_size_nm=100)[0] == pytest.approx(
        math.sqrt(2 * mle)
    )


def _table(rows):
    return pd.DataFrame(rows, columns=["frame", "x_nm", "y_nm"])


def test_matching_is_per_frame_one_to_one_and_within_the_radius():
    truth = _table([(1, 0, 0), (1, 1000, 0), (2, 0, 0)])
    test = _table([(1, 10, 0), (1, 20, 0), (1, 1300, 0), (2, 0, 100), (3, 0, 0)])
    i, j = match(test, truth)
    pairs = sorted(zip(i.tolist(), j.tolist(), strict=True))
    # One of the two near (0, 0) matches; the 300 nm one is outside 250 nm; frame 3 has no truth.
    assert pairs == [(0, 0), (3, 2)]
    s = score(test, truth)
    assert (s.tp, s.fp, s.fn) == (2, 3, 1)
    assert s.jaccard == pytest.approx(100 * 2 / 6)
    assert s.rmse_nm == pytest.approx(math.sqrt((10**2 + 100**2) / 2))
    assert s.efficiency == pytest.approx(efficiency(s.jaccard, s.rmse_nm))


def test_hungarian_can_beat_greedy_on_crossed_pairs():
    # Greedy takes the closest pair first (160 ↔ 300, 140 nm) and strands 530, whose only
    # candidate is 300; the optimal assignment pairs 160 ↔ 0 and 530 ↔ 300.
    truth = _table([(1, 0, 0), (1, 300, 0)])
    test = _table([(1, 160, 0), (1, 530, 0)])
    assert score(test, truth, method="greedy").tp == 1
    assert score(test, truth, method="hungarian").tp == 2


def test_border_exclusion_drops_both_sides_near_the_edge():
    truth = _table([(1, 100, 3000), (1, 3000, 3000)])
    test = _table([(1, 100, 3000), (1, 3000, 3010)])
    s = score(test, truth, field_nm=(6400, 6400), border_nm=300)
    assert (s.tp, s.fp, s.fn) == (1, 0, 0)


def test_missing_columns_are_a_clear_error():
    from abbe.errors import InputError

    with pytest.raises(InputError, match="x_nm"):
        score(pd.DataFrame({"frame": [1]}), _table([(1, 0, 0)]))
    assert np.isnan(score(_table([]), _table([(1, 0, 0)])).rmse_nm)
