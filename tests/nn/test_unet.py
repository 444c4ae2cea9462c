"""The U-Net: shapes, receptive field, N2V2 variant, Laplace head and batch-norm folding."""

from __future__ import annotations

import pytest
import torch

from abbe.nn import UNet, UNetConfig, fuse_batch_norm


@pytest.mark.parametrize(
    "cfg",
    [
        UNetConfig(width=8),
        UNetConfig(width=8, depth=3, kernel_size=5, batch_norm=True),
        UNetConfig(width=8, n2v2=True, residual=False),
        UNetConfig(width=8, probabilistic=True),
        UNetConfig(dims=3, width=4, depth=1),
        UNetConfig(dims=3, width=4, depth=2, pool_z=False, n2v2=True, residual=False),
    ],
    ids=["plain", "deep-bn-5x5", "n2v2", "laplace", "3d", "3d-n2v2-noz"],
)
def test_output_has_the_input_size_and_the_right_channels(cfg):
    shape = (2, 1, *((8, 32, 32) if cfg.dims == 3 else (32, 32)))
    out = UNet(cfg)(torch.randn(shape))
    assert out.shape == (2, 2 if cfg.probabilistic else 1, *shape[2:])


@pytest.mark.parametrize(
    "cfg", [UNetConfig(width=4), UNetConfig(width=4, depth=3, n2v2=True, residual=False)]
)
def test_receptive_radius_bounds_the_true_dependency(cfg):
    torch.manual_seed(0)
    net = UNet(cfg).eval()
    size = (2 * cfg.receptive_radius + 64) // 8 * 8  # a multiple of 2**depth
    x = torch.randn(1, 1, size, size, requires_grad=True)
    c = size // 2
    net(x)[0, 0, c, c].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(dim=1) > 0).flatten()
    reach = int(max(c - rows.min(), rows.max() - c))
    # The bound holds and is not loose by more than one pooling window.
    assert reach <= cfg.receptive_radius
    assert reach >= cfg.receptive_radius - 2 ** (cfg.depth + 1)


def test_n2v2_drops_the_top_skip_connection():
    plain = UNet(UNetConfig(width=8))
    n2v2 = UNet(UNetConfig(width=8, n2v2=True, residual=False))
    # The top decoder block sees only the upsampled features (16 channels), not the skip (+8).
    assert plain.up[-1][0].in_channels == 24
    assert n2v2.up[-1][0].in_channels == 16


def test_folding_batch_norm_changes_nothing_in_eval_mode():
    torch.manual_seed(1)
    net = UNet(UNetConfig(width=8, batch_norm=True))
    with torch.no_grad():  # give the norms non-trivial statistics
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    net.eval()
    x = torch.randn(1, 1, 48, 48)
    expected = net(x)
    fused = fuse_batch_norm(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    torch.testing.assert_close(fused(x), expected, atol=1e-5, rtol=1e-5)


def test_invalid_architectures_are_refused():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="odd"):
        UNetConfig(kernel_size=4)
    with pytest.raises(ValidationError, match="residual"):
        UNetConfig(in_channels=2, out_channels=1)
    with pytest.raises(ValidationError, match="cannot be residual"):
        UNetConfig(n2v2=True)
    with pytest.raises(ValidationError, match="Extra inputs"):
        UNetConfig(widht=8)
