"""``abbe.verify``: the verify pipeline as one library call on arrays."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

import abbe
from abbe.errors import InputError
from abbe.trust.verify import VerifyReport, grid_pixel_sizes


@pytest.fixture(scope="module")
def field() -> np.ndarray:
    """A smooth 64² field, 100 photons above a background of 10."""
    rng = np.random.default_rng(7)
    return 10 + 100 * ndimage.gaussian_filter(rng.random((64, 64)), 2.0) ** 2


def test_import_abbe_stays_light_and_offers_verify():
    code = (
        "import sys, abbe; assert 'abbe.trust' not in sys.modules and 'torch' not in sys.modules;"
        "from abbe.trust.verify import verify; assert abbe.verify is verify"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_result_equal_to_its_reference_scores_perfectly(field):
    # Arrange / Act: the DESIGN call, no pixel sizes: the same grid gives resolutions in pixels.
    report = abbe.verify(field, reference=field)
    # Assert: an unchanged image correlates perfectly with its data (RSP 1, within rounding).
    assert isinstance(report, VerifyReport)
    assert report.error_map.rsp == pytest.approx(1.0, abs=1e-6)
    assert report.pixel_size_nm == report.reference_pixel_size_nm == 1.0
    d = report.to_dict()
    assert list(d) == [
        "output_pixel_size_nm",
        "input_pixel_size_nm",
        "length_unit",
        "error_map",
        "resolution",
    ]
    # No pixel size given: the report says so rather than claiming 1 nm pixels.
    assert d["output_pixel_size_nm"] is None and d["input_pixel_size_nm"] is None
    assert d["length_unit"] == "px"
    assert set(d["resolution"]) == {"output_decorr_nm", "input_decorr_nm"}
    json.dumps(d)  # plain JSON values only


def test_the_90_percent_interval_of_a_right_uncertainty_covers_90_percent(field):
    # Arrange: errors drawn from the Laplace distribution the map describes (sd √2·b).
    b = 2.0
    result = field + np.random.default_rng(3).laplace(0.0, b, field.shape)
    sd = np.full(field.shape, np.sqrt(2.0) * b)
    # Act
    report = abbe.verify(result, truth=field, uncertainty=sd, pixel_size_nm=100.0)
    # Assert: 4096 pixels, binomial sd 0.005 around 0.9; 0.02 is four of them.
    assert report.coverage_90 == pytest.approx(0.9, abs=0.02)
    d = report.to_dict()
    assert d["uncertainty"]["median_sd"] == pytest.approx(np.sqrt(2.0) * b)
    # Result and truth share one scale, so the scores are raw (abbe evaluate's rule): PSNR is
    # 10·log10(R²/MSE) with R the truth's range, computed here independently.
    mse = np.mean((result - field) ** 2)
    expected = 10 * np.log10(np.ptp(field) ** 2 / mse)
    assert d["metrics"]["normalization"] == "none"
    assert d["metrics"]["psnr"] == pytest.approx(expected, abs=1e-9)
    assert "frc_against_truth_nm" in d["resolution"]
    assert report.error_map is None and "error_map" not in d


def test_pixel_sizes_are_shared_on_one_grid_and_needed_on_two():
    assert grid_pixel_sizes((8, 8), (8, 8)) == (1.0, 1.0)
    assert grid_pixel_sizes((8, 8), (8, 8), reference_pixel_size_nm=65.0) == (65.0, 65.0)
    assert grid_pixel_sizes((16, 16), (8, 8), pixel_size_nm=50.0) == (50.0, None)
    assert grid_pixel_sizes((16, 16), (8, 8), reference_pixel_size_nm=100.0) == (None, 100.0)
    with pytest.raises(InputError, match="pixel size of the result unknown"):
        abbe.verify(np.ones((16, 16)), reference=np.ones((8, 8)))


def test_a_truth_on_another_grid_is_refused(field):
    with pytest.raises(InputError, match=r"truth shape \(32, 32\) differs"):
        abbe.verify(field, truth=field[:32, :32])


def test_the_figure_is_a_png(field, tmp_path):
    from abbe.report import verify_figure

    report = abbe.verify(field, reference=field, truth=field)
    path = verify_figure(report, tmp_path / "v.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
