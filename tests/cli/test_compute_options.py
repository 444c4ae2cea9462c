"""Every verb that runs a network takes --device, --threads and --memory-mb alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from abbe import io
from abbe.simulate.cells import nuclei_image

VERBS = {
    "restore": ["-m", "denoise-widefield"],
    "segment": [],
    "classify": [],
    "localize": ["--method", "fit"],
}


@pytest.fixture(scope="module")
def nuclei_tif(tmp_path_factory):
    path = tmp_path_factory.mktemp("in") / "nuclei.tif"
    io.write(path, nuclei_image((192, 192), seed=8).image, io.Meta("YX", pixel_size_nm=100.0))
    return path


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
@pytest.mark.parametrize("verb", sorted(VERBS))
def test_a_missing_gpu_is_one_line_before_any_work(verb, cli, nuclei_tif, tmp_path):
    out = tmp_path / ("out.csv" if verb in ("classify", "localize") else "out.tif")
    result = cli(verb, nuclei_tif, *VERBS[verb], "-o", out, "--device", "cuda")
    assert result.code == 2, result
    assert "--device cuda" in result.err and len(result.err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_network_verb_takes_the_compute_options(verb, cli):
    text = cli(verb, "--help").out
    assert "--threads" in text and "--device" in text
    if verb != "classify":  # classification runs whole crops: no tiles
        assert "--memory-mb" in text


def test_segment_with_a_small_memory_budget_gives_the_same_labels(cli, nuclei_tif, tmp_path):
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    assert cli("segment", nuclei_tif, "-o", a, "--quiet").code == 0
    result = cli("segment", nuclei_tif, "-o", b, "--memory-mb", "64", "--threads", "1", "-q")
    assert result.code == 0, result
    labels_a, labels_b = (np.asarray(io.read(p)[0]) for p in (a, b))
    assert labels_a.max() >= 10
    np.testing.assert_array_equal(labels_b, labels_a)
