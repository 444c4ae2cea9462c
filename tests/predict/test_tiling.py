"""Tiled prediction equals untiled prediction, streams from and to disk, and respects memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from abbe.nn import UNet, UNetConfig
from abbe.predict import auto_tile, plan_tiles, predict_tiled


def test_cores_partition_the_image_exactly_once():
    shape = (203, 317)
    _, tiles = plan_tiles(shape, tile=(64, 96), margin=(20, 20), multiple=(8, 8))
    count = np.zeros(shape, int)
    for t in tiles:
        count[t.core] += 1
        for w, m in zip(t.window, (8, 8), strict=True):
            assert w.start % m == 0 and (w.stop - w.start) % m == 0
    assert np.all(count == 1)


def _net_fn(cfg):
    torch.manual_seed(3)
    net = UNet(cfg).eval()

    def run(window):
        with torch.inference_mode():
            return net(torch.from_numpy(window)[None])[0].numpy()

    return run


@pytest.mark.parametrize(
    "cfg",
    [
        UNetConfig(width=8),
        UNetConfig(width=8, depth=3, n2v2=True, residual=False, batch_norm=True),
        UNetConfig(dims=3, width=4, depth=1),
    ],
    ids=["unet", "n2v2-depth3", "3d"],
)
def test_tiled_equals_untiled_to_1e_4_relative(rng, cfg):
    run = _net_fn(cfg)
    shape = (1, 203, 187) if cfg.dims == 2 else (1, 21, 75, 61)
    image = rng.random(shape).astype(np.float32)
    spatial = cfg.dims
    margin = (cfg.receptive_radius,) * spatial
    whole = predict_tiled(
        run, image, spatial_ndim=spatial, tile=None, margin=margin, multiple=cfg.multiple
    )
    tiled = predict_tiled(
        run, image, spatial_ndim=spatial, tile=(16,) * spatial, margin=margin, multiple=cfg.multiple
    )
    scale = np.abs(whole).max()
    assert np.abs(tiled - whole).max() <= 1e-4 * scale


def test_streaming_from_dask_to_zarr_gives_the_same_result(rng, tmp_path):
    import dask.array as da
    import zarr

    cfg = UNetConfig(width=8)
    run = _net_fn(cfg)
    image = rng.random((1, 300, 260)).astype(np.float32)
    margin = (cfg.receptive_radius,) * 2
    expected = predict_tiled(
        run, image, spatial_ndim=2, tile=None, margin=margin, multiple=cfg.multiple
    )
    out = zarr.open_array(
        tmp_path / "o.zarr", mode="w", shape=image.shape, chunks=(1, 64, 64), dtype="float32"
    )
    predict_tiled(
        run,
        da.from_array(image, chunks=(1, 100, 100)),
        spatial_ndim=2,
        tile=(64, 64),
        margin=margin,
        multiple=cfg.multiple,
        out=out,
    )
    np.testing.assert_allclose(out[:], expected, rtol=0, atol=1e-4 * np.abs(expected).max())


def test_auto_tile_fits_the_memory_budget():
    core = auto_tile(
        (20000, 20000), bytes_per_pixel=1500.0, memory_mb=512, margin=(24, 24), multiple=(4, 4)
    )
    window = [c + 48 for c in core]
    assert np.prod(window) * 1500.0 <= 512 * 2**20
    assert core[0] >= 256 and core[0] % 4 == 0
    small = auto_tile(
        (100, 90), bytes_per_pixel=1500.0, memory_mb=512, margin=(24, 24), multiple=(4, 4)
    )
    assert small == (100, 92)  # the whole (padded) image when it fits
