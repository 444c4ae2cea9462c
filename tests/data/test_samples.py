"""The bundled sample: a noisy sCMOS image in ADU with its noise-free truth in the same units."""

from __future__ import annotations

import numpy as np
import pytest

from abbe.data.samples import names, sample
from abbe.errors import InputError


def test_bundled_sample_is_a_noisy_adu_image_with_its_truth():
    s = sample("widefield-filaments")
    assert s.noisy.dtype == np.uint16 and s.noisy.shape == s.clean.shape == (256, 256)
    assert s.meta.pixel_size_nm == pytest.approx(100.0)
    # The truth is the mean of the noisy image: they agree on average, not pixel by pixel.
    assert s.noisy.mean() == pytest.approx(s.clean.mean(), rel=0.01)
    assert np.abs(s.noisy - s.clean).mean() > 1.0
    assert s.params["camera"]["kind"] == "scmos"
    assert "widefield-filaments" in names()


def test_unknown_sample_names_are_refused():
    with pytest.raises(InputError, match="no bundled sample"):
        sample("galaxy")
