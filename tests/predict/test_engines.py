"""ONNX Runtime engines: the same tiled prediction as PyTorch, within stated tolerances."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from abbe import models
from abbe.data.normalize import percentile_range
from abbe.errors import InputError
from abbe.predict import engines
from abbe.simulate import widefield

#: fp32 ONNX Runtime and PyTorch differ by float rounding only (convolution order): 1e-4 of
#: the normalized range is ~100× the differences seen (6e-7) and far below any visible change.
FP32_TOLERANCE = 1e-4


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory):
    """A cache folder of this module's own: exports are made here once and reused."""
    with pytest.MonkeyPatch.context() as mp:
        folder = tmp_path_factory.mktemp("abbe-cache")
        mp.setenv("ABBE_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="module")
def denoiser():
    return models.load("denoise-widefield")


def _filaments(size: tuple[int, int], seed: int):
    # The denoise benchmark's protocol (benchmarks/denoise.py), smaller.
    return widefield(
        "filaments",
        size=size,
        pixel_size_nm=100.0,
        photons=50.0,
        background=2.0,
        read_noise=2.0,
        psf="gaussian",
        fwhm_nm=2 * 2.354820 * 100.0,
        camera="ideal",
        seed=seed,
    )


def _psnr(pred: np.ndarray, truth: np.ndarray) -> float:
    rng = float(truth.max() - truth.min())
    return float(10 * np.log10(rng**2 / np.mean((pred - truth) ** 2)))


def test_onnx_restore_equals_torch_through_the_tiled_path(denoiser):
    # Arrange: a size that is no multiple of the network's (padding) and small tiles (seams).
    img = _filaments((100, 84), seed=3).input
    lo, hi = percentile_range(img, 1.0, 99.8)
    # Act
    ref = denoiser.predict(img, "YX", tile=32, engine="torch")
    got = denoiser.predict(img, "YX", tile=32, engine="onnx")
    # Assert: in normalized units, as the network sees them.
    assert np.abs(got - ref).max() / (hi - lo) <= FP32_TOLERANCE


def test_int8_loses_little_psnr_on_the_denoise_protocol(denoiser):
    # Arrange
    sim = _filaments((160, 160), seed=11)
    # Act
    fp32 = denoiser.predict(sim.input, "YX", engine="onnx")
    int8 = denoiser.predict(sim.input, "YX", engine="onnx-int8")
    # Assert: the benchmark's 512² image lost 0.13 dB; a small image is noisier, so 0.3 dB.
    # The int8 model still denoises: far above the raw input.
    gap = _psnr(fp32, sim.clean) - _psnr(int8, sim.clean)
    assert gap < 0.3
    assert _psnr(int8, sim.clean) > _psnr(sim.input, sim.clean) + 5.0


def test_int8_file_is_quantized_except_its_output_side(denoiser):
    import onnx

    path = engines.onnx_file(denoiser, "onnx-int8")
    graph = onnx.load(str(path)).graph
    ops = [n.op_type for n in graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    # The head's weights stay float (not produced by a DequantizeLinear of int8 weights).
    head = next(n for n in graph.node if n.name == "/head/Conv")
    assert any(i.startswith("head.") for i in head.input)


def test_export_is_cached_by_weights(denoiser, monkeypatch):
    # Arrange: the file exists after a first call.
    first = engines.onnx_file(denoiser, "onnx")
    stamp = first.stat().st_mtime_ns

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr("abbe.models.export.onnx_export.export_onnx", no_export)
    # Act / Assert: the same weights reuse the file untouched.
    assert engines.onnx_file(denoiser, "onnx") == first
    assert first.stat().st_mtime_ns == stamp
    # Other weights get another file (a stale export is never used).
    other = models.load("denoise-widefield")
    import torch

    with torch.no_grad():
        next(other.network.parameters()).add_(0.01)
    assert engines.network_hash(other) != engines.network_hash(denoiser)


def test_segment_maps_agree_between_engines():
    from abbe.segment import Segmenter
    from abbe.simulate.cells import nuclei_image

    seg = Segmenter.load("nuclei-fluo")
    image = nuclei_image((96, 96), seed=2).image
    ref = seg.predict_maps(image, tile=48, engine="torch")
    got = seg.predict_maps(image, tile=48, engine="onnx")
    for a, b in zip(ref, got, strict=True):
        assert np.abs(a - b).max() <= FP32_TOLERANCE  # probabilities: already in 0–1


def test_missing_onnxruntime_is_one_line_error(denoiser, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(InputError, match=r"pip install 'abbe\[onnx\]'"):
        denoiser.predict(np.ones((32, 32), np.float32), "YX", engine="onnx")
    with pytest.raises(InputError, match=r"pip install 'abbe\[onnx\]'"):
        engines.check_engine("onnx-int8")


def test_unknown_engine_and_gpu_are_refused(denoiser):
    img = np.random.default_rng(0).random((32, 32), dtype=np.float32)
    with pytest.raises(InputError, match="--engine must be one of"):
        denoiser.predict(img, "YX", engine="tensorrt")
    with pytest.raises(InputError, match="runs on the CPU"):
        denoiser.predict(img, "YX", engine="onnx", device="cuda")


def test_cli_restore_engine_onnx_matches_torch(cli, tmp_path):
    from abbe import io

    img = _filaments((64, 64), seed=5).input
    src = tmp_path / "in.tif"
    io.write(src, img, io.Meta("YX", pixel_size_nm=100.0))
    a = cli("restore", src, "-m", "denoise-widefield", "-o", tmp_path / "torch.tif", "-q")
    b = cli(
        "restore", src, "-m", "denoise-widefield", "-o", tmp_path / "onnx.tif", "-q",
        "--engine", "onnx",
    )  # fmt: skip
    assert a.code == 0 and b.code == 0, (a, b)
    lo, hi = percentile_range(img, 1.0, 99.8)
    ref, got = io.read(tmp_path / "torch.tif")[0], io.read(tmp_path / "onnx.tif")[0]
    assert np.abs(got - ref).max() / (hi - lo) <= FP32_TOLERANCE
    bad = cli("restore", src, "-m", "denoise-widefield", "-o", tmp_path / "x.tif", "--engine", "x")
    assert bad.code == 2 and bad.err.count("\n") == 1 and "--engine must be one of" in bad.err
