"""``abbe.verify`` with a truth: the uncertainty map's coverage in this image, and a warning
when the map is not a calibrated 90 % interval here (issue 21)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import abbe
from abbe.errors import AbbeWarning


def _field() -> np.ndarray:
    y, x = np.mgrid[:64, :64]
    return 10 + 50 * np.exp(-((x - 32) ** 2 + (y - 32) ** 2) / 200)


def test_verify_reports_this_images_coverage_overall_and_in_both_halves_of_the_map():
    # Arrange: errors drawn from Laplace distributions of scale 1 in one half of the pixels and
    # 4 in the other; the map gives each pixel its true SD √2·b.
    truth = _field()
    b = np.where(np.arange(64)[None, :] < 32, 1.0, 4.0) * np.ones((64, 1))
    result = truth + np.random.default_rng(5).laplace(0.0, b)
    # Act
    with warnings.catch_warnings():
        warnings.simplefilter("error", AbbeWarning)  # a right map raises no warning
        report = abbe.verify(result, truth=truth, uncertainty=np.sqrt(2) * b, pixel_size_nm=100)
    d = report.to_dict()["uncertainty"]
    # Assert: 2048 pixels per half, binomial SD 0.0066; 0.03 is 4.5 of them.
    assert d["coverage_90"] == pytest.approx(0.9, abs=0.02)
    assert d["coverage_90_low_uncertainty"] == pytest.approx(0.9, abs=0.03)
    assert d["coverage_90_high_uncertainty"] == pytest.approx(0.9, abs=0.03)
    assert d["coverage_90_band"] == [0.80, 0.97] and d["calibrated"] is True
    json.dumps(d)


def test_an_over_confident_map_is_flagged_with_a_warning_and_calibrated_false():
    # Arrange: the map claims half the true spread: its 90 % interval holds 1 − 10^(−1/2)
    # ≈ 68 % of the truth, below the 80 % that counts as calibrated.
    truth = _field()
    result = truth + np.random.default_rng(6).laplace(0.0, 2.0, truth.shape)
    sd = np.full(truth.shape, np.sqrt(2) * 1.0)
    # Act / Assert
    with pytest.warns(AbbeWarning, match=r"covers 6\d\.\d % of this image's pixels"):
        report = abbe.verify(result, truth=truth, uncertainty=sd, pixel_size_nm=100)
    assert report.coverage_90 == pytest.approx(1 - 10**-0.5, abs=0.02)
    assert report.to_dict()["uncertainty"]["calibrated"] is False


def test_abbe_verify_writes_the_images_coverage_and_the_warning_into_report_json(cli, tmp_path):
    from abbe import io

    # Arrange: the over-confident map of the test above, as files at 100 nm pixels.
    truth = _field()
    result = truth + np.random.default_rng(6).laplace(0.0, 2.0, truth.shape)
    meta = io.Meta("YX", pixel_size_nm=100.0)
    for name, image in (("out", result), ("in", truth), ("truth", truth)):
        io.write(tmp_path / f"{name}.tif", image.astype(np.float32), meta)
    io.write(tmp_path / "sd.tif", np.full(truth.shape, np.sqrt(2), np.float32), meta)
    # Act
    r = cli(
        "verify", tmp_path / "out.tif", "-i", tmp_path / "in.tif", "-t", tmp_path / "truth.tif",
        "--uncertainty", tmp_path / "sd.tif", "-o", tmp_path / "report",
    )  # fmt: skip
    # Assert: the coverage (≈ 68 %, see above) and the verdict are in the report, the warning
    # on stderr and in its warnings field.
    assert r.code == 0, r.err
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["uncertainty"]["coverage_90"] == pytest.approx(1 - 10**-0.5, abs=0.02)
    assert report["uncertainty"]["calibrated"] is False
    assert any("uncertainty interval covers" in w for w in report["warnings"])
    assert "uncertainty interval covers" in r.err
