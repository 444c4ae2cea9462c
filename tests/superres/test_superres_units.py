"""Super-resolution building blocks: networks, losses, pair simulation, scaled patches, tiling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from abbe.errors import InputError


@pytest.mark.parametrize("arch", ["dfcan", "rcan", "resunet"])
@pytest.mark.parametrize("scale", [1, 2, 4])
def test_generators_enlarge_by_their_scale(arch, scale):
    from abbe.nn.superres import SRNetConfig, build_generator

    cfg = SRNetConfig(arch=arch, scale=scale, width=8, groups=1, blocks=1)
    y = build_generator(cfg)(torch.rand(2, 1, 16, 24))
    assert y.shape == (2, 1, 16 * scale, 24 * scale)
    assert cfg.receptive_radius >= 32
    assert cfg.multiple == ((4, 4) if arch == "resunet" else (1, 1))


def test_generator_learns_a_correction_to_bilinear_upsampling():
    """With the tail zeroed, a generator returns exactly the bilinear upsampling of its input."""
    from torch.nn import functional as F

    from abbe.nn.superres import SRNetConfig, build_generator

    net = build_generator(SRNetConfig(arch="dfcan", width=8, groups=1, blocks=1))
    torch.nn.init.zeros_(net.tail[-1].weight)
    torch.nn.init.zeros_(net.tail[-1].bias)
    x = torch.rand(1, 1, 20, 20)
    expected = F.interpolate(x, scale_factor=2, mode="bilinear")
    assert torch.allclose(net(x), expected, atol=1e-6)


def test_fourier_attention_tells_detail_from_smooth_channels():
    """Two zero-mean channels of equal energy, one smooth and one fine-grained: plain average
    pooling cannot tell them apart; the pooled |FFT|^0.8 (concave, so a spread spectrum sums
    higher) can, and it does not change when the features are translated."""
    from abbe.nn.superres import FourierChannelAttention

    n = 32
    gen = torch.Generator().manual_seed(0)
    fine = torch.randn(n, n, generator=gen)
    xx = torch.arange(n).float()[None, :].expand(n, n)
    smooth = torch.cos(2 * torch.pi * xx / n)
    fine = (fine - fine.mean()) / fine.std() * smooth.std()
    x = torch.stack([smooth, fine])[None]
    att = FourierChannelAttention(2, 1, 0.8)
    with torch.no_grad():  # identity spectrum convolution: pool the amplitude itself
        att.spectrum[0].weight.zero_()
        att.spectrum[0].bias.zero_()
        att.spectrum[0].weight[0, 0, 1, 1] = 1.0
        att.spectrum[0].weight[1, 1, 1, 1] = 1.0
        pooled = att.pooled(x).flatten()
        moved = att.pooled(torch.roll(x, shifts=(5, 11), dims=(-2, -1))).flatten()
    assert abs(float(x[0, 0].mean() - x[0, 1].mean())) < 1e-5
    assert float(pooled[1]) > 3 * float(pooled[0])
    torch.testing.assert_close(pooled, moved, rtol=2e-2, atol=1e-4)


def test_patch_discriminator_scores_patches():
    from abbe.nn.superres import PatchDiscriminator

    d = PatchDiscriminator(width=8)
    score = d(torch.rand(3, 1, 32, 32), torch.rand(3, 1, 64, 64))
    assert score.shape == (3, 1, 8, 8)


def test_torch_ssim_matches_the_metric(rng):
    from abbe.metrics.image import ms_ssim as ms_ssim_np
    from abbe.metrics.image import ssim as ssim_np
    from abbe.nn.losses import ms_ssim, ssim

    a = rng.random((96, 96)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1).astype(np.float32)
    ta, tb = torch.from_numpy(a)[None, None], torch.from_numpy(b)[None, None]
    assert float(ssim(ta, ta)) == pytest.approx(1.0, abs=1e-6)
    assert float(ms_ssim(ta, ta)) == pytest.approx(1.0, abs=1e-5)
    assert float(ssim(ta, tb)) == pytest.approx(ssim_np(a, b, data_range=1.0), abs=0.02)
    assert 0.3 < float(ms_ssim(ta, tb)) < 1.0
    assert ms_ssim_np(a, b, data_range=1.0) > 0.3


def test_fourier_loss_is_parseval_consistent(rng):
    """Orthonormal spectra: a difference of one unit at one pixel of N costs 1/√N per bin."""
    from abbe.nn.losses import fourier_loss

    x = torch.zeros(1, 1, 16, 16)
    y = x.clone()
    y[0, 0, 3, 5] = 1.0
    assert float(fourier_loss(x, x)) == 0.0
    assert float(fourier_loss(x, y)) == pytest.approx(1 / 16, rel=1e-5)


def test_loss_needs_a_content_term():
    from abbe.nn.losses import SRLoss

    with pytest.raises(ValueError):
        SRLoss(mse=0, ssim=0, adversarial=1.0)


def test_pairs_conserve_flux_and_reach_the_target_resolution():
    """The target, averaged over scale² blocks, holds the input's expected photons; a straight
    line in it has the target resolution (80 nm, + the 50 nm pixels' own width)."""
    from abbe.simulate.superres import SRPairConfig, sr_pair

    cfg = SRPairConfig(size=64, haze_probability=0.0)
    pair = sr_pair(cfg, seed=4, photons=500, background=5)
    assert pair.target.shape == (128, 128)
    assert pair.target.sum() / 4 == pytest.approx(pair.expected_input.sum(), rel=0.03)
    assert np.percentile(pair.target, 1) == pytest.approx(5.0, abs=0.5)

    from abbe.simulate.specimens import Specimen

    k = cfg.oversample
    density = np.zeros((64 * k, 64 * k), np.float32)
    density[:, 32 * k] = 1.0  # a vertical line, one fine pixel wide
    line = sr_pair(cfg, seed=1, specimen=Specimen(density, 25.0), photons=500, background=0)
    profile = line.target[20:100].mean(axis=0)
    x = (np.arange(128) + 0.5) * 50.0
    mean = (profile * x).sum() / profile.sum()
    sigma = np.sqrt((profile * (x - mean) ** 2).sum() / profile.sum())
    expected = np.sqrt((80 / 2.3548) ** 2 + 25**2 / 12 + 50**2 / 12)
    assert sigma == pytest.approx(expected, rel=0.08)
    wide = line.expected_input[10:50].mean(axis=0)
    xi = (np.arange(64) + 0.5) * 100.0
    m = (wide * xi).sum() / wide.sum()
    sigma_in = np.sqrt((wide * (xi - m) ** 2).sum() / wide.sum())
    assert sigma_in > 2 * sigma  # the input really is diffraction-limited


def test_haze_is_broad_carries_its_flux_and_is_the_same_in_input_and_target():
    from abbe.simulate.specimens import Specimen
    from abbe.simulate.superres import SRPairConfig, sr_pair, with_haze

    cfg = SRPairConfig(size=64, haze_flux=(1.0, 1.0), haze_sigma_nm=(500.0, 500.0))
    k = cfg.oversample
    density = np.zeros((64 * k, 64 * k), np.float32)
    density[:, 32 * k] = 1.0
    spec = Specimen(density, 25.0)
    hazy = with_haze(spec, cfg, np.random.default_rng(0))
    haze = hazy.density - density
    assert haze.min() >= 0 and haze.sum() == pytest.approx(density.sum(), rel=1e-3)
    # Broad: no detail finer than the defocus blur (σ 500 nm = 20 fine pixels).
    assert np.abs(np.diff(haze, axis=1)).max() < 0.05 * haze.max()
    # Out-of-focus light is in the target as in the input: far from the line (≥ 1.6 µm) and
    # from the field's edges (where the input's wider blur loses light), the target binned to
    # input pixels holds what the input holds, and that is the haze.
    pairs = {
        p: sr_pair(
            cfg.model_copy(update={"haze_probability": p}),
            seed=2,
            specimen=spec,
            photons=500,
            background=0,
        )
        for p in (0.0, 1.0)
    }
    on, off = pairs[1.0], pairs[0.0]
    binned = on.target.reshape(64, 2, 64, 2).sum(axis=(1, 3)) / 4
    far = np.s_[8:56, 4:16]
    far_in = on.expected_input[far].mean()
    assert far_in > 0.02 * on.expected_input.max()
    assert binned[far].mean() == pytest.approx(far_in, rel=0.05)
    assert off.expected_input[far].mean() < 0.05 * far_in
    inner = np.s_[8:56, 8:56]
    assert binned[inner].sum() == pytest.approx(on.expected_input[inner].sum(), rel=0.03)


def test_rings_are_hollow():
    """Each ring's centre (its centre of mass) is dark, its circumference at the set radius."""
    from scipy import ndimage

    from abbe.simulate.specimens import rings

    spec = rings((1000, 1000), pixel_size_nm=5.0, density_per_um2=0.2, radius_nm=(80, 80), seed=2)
    blurred = ndimage.gaussian_filter(spec.density.astype(float), 2)
    labels, n = ndimage.label(ndimage.binary_closing(blurred > 0.05 * blurred.max(), iterations=3))
    checked = 0
    for k in range(1, n + 1):
        ys, xs = np.nonzero(labels == k)
        if not (40 < ys.min() and ys.max() < 960 and 40 < xs.min() and xs.max() < 960):
            continue
        if max(np.ptp(ys), np.ptp(xs)) > 60:  # two rings touching
            continue
        cy, cx = ys.mean(), xs.mean()
        radius = np.hypot(ys - cy, xs - cx)
        weights = blurred[ys, xs]
        assert np.average(radius, weights=weights) * 5.0 == pytest.approx(80, rel=0.1)
        assert blurred[round(cy), round(cx)] < 0.2 * weights.max()
        checked += 1
    assert checked >= 2


def test_crappify_downsamples_and_adds_noise(rng):
    from abbe.simulate.superres import crappify

    hi = np.zeros((64, 64), np.float32)
    hi[20:22, 10:50] = 100.0
    low = crappify(hi, 2, photons=200, background=5, read_noise=0, seed=1)
    assert low.shape == (32, 32)
    assert np.median(low) == pytest.approx(5, abs=2)
    assert 120 < low.max() < 300
    again = crappify(hi, 2, photons=200, background=5, read_noise=0, seed=1)
    np.testing.assert_array_equal(low, again)
    with pytest.raises(InputError, match="NaN"):
        crappify(np.full((16, 16), np.nan), 2)
    with pytest.raises(InputError, match="2D"):
        crappify(np.zeros((2, 16, 16)), 2)


def test_scaled_patch_pool_keeps_pairs_aligned(rng):
    from abbe.data.patches import PatchPool

    x = rng.random((1, 40, 40)).astype(np.float32)
    y = np.kron(x, np.ones((1, 2, 2), np.float32))
    pool = PatchPool([x], [y], (16, 16), scale=2)
    px, py = pool.sample(6, np.random.default_rng(0))
    assert px.shape == (6, 1, 16, 16) and py.shape == (6, 1, 32, 32)
    np.testing.assert_array_equal(np.kron(px, np.ones((1, 1, 2, 2), np.float32)), py)


def test_tiled_prediction_with_scale_equals_one_window(rng):
    from scipy import ndimage

    from abbe.predict.tiling import predict_tiled

    def fn(window):  # a local operation, then ×2 nearest upsampling
        smooth = ndimage.uniform_filter(window, size=(1, 5, 5), mode="constant")
        return np.kron(smooth, np.ones((1, 2, 2), np.float32))

    image = rng.random((1, 70, 50)).astype(np.float32)
    kw = {"spatial_ndim": 2, "margin": (4, 4), "multiple": (1, 1), "scale": 2}
    whole = predict_tiled(fn, image, tile=None, **kw)
    tiled = predict_tiled(fn, image, tile=(16, 16), **kw)
    assert whole.shape == (1, 140, 100)
    np.testing.assert_allclose(tiled, whole, atol=1e-6)
