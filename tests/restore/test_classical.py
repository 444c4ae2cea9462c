"""Classical baselines: variance stabilization, non-local means and Richardson–Lucy."""

from __future__ import annotations

import numpy as np
import pytest

from abbe import metrics, simulate
from abbe.restore import classical


@pytest.mark.parametrize("lam", [5.0, 20.0, 100.0])
def test_generalized_anscombe_stabilizes_poisson_gaussian_variance_to_one(rng, lam):
    gain, offset, read = 2.0, 100.0, 3.0
    x = gain * rng.poisson(lam, 200_000) + offset + rng.normal(0, read, 200_000)
    d = classical.anscombe(x, gain=gain, offset=offset, read_noise=read)
    assert d.var() == pytest.approx(1.0, abs=0.05)
    # The unbiased inverse of the mean recovers the expected value (Mäkitalo & Foi 2013).
    back = classical.inverse_anscombe(d.mean(), gain=gain, offset=offset, read_noise=read)
    assert back == pytest.approx(gain * lam + offset, rel=0.01)


def test_inverse_anscombe_is_zero_at_and_below_zero_signal_and_never_explodes():
    d = np.array([0.0, 1e-6, 0.5, 2 * np.sqrt(0.375), 1.3, 3.0])
    lam = classical.inverse_anscombe(d)
    assert np.all(np.isfinite(lam)) and lam.min() >= 0
    assert lam[:4].max() < 1e-9
    assert np.all(np.diff(lam[3:]) > 0)  # increasing above zero signal


def test_nlm_raises_psnr_of_a_noisy_widefield_image():
    sim = simulate.widefield(
        "filaments", size=128, photons=30, background=2, read_noise=1.0, seed=1
    )
    before = metrics.psnr(sim.input, sim.clean)
    after = metrics.psnr(classical.nlm(sim.input, read_noise=1.0), sim.clean)
    assert after > before + 6


def _beads():
    from scipy.signal import fftconvolve

    psf = simulate.gaussian_psf(fwhm_nm=300, pixel_size_nm=50)
    obj = np.zeros((64, 64))
    obj[20, 20] = obj[40, 45] = 1000.0
    return psf, fftconvolve(obj, psf, mode="same")


def test_richardson_lucy_conserves_photons_without_background():
    # Each EM step preserves Σu when Hᵀ1 = 1 (beads far from the border).
    psf, blurred = _beads()
    out = classical.richardson_lucy(blurred, psf, iterations=50)
    assert out.sum() == pytest.approx(blurred.sum(), rel=1e-3)


def test_richardson_lucy_with_known_background_sharpens_beads():
    psf, blurred = _beads()
    out = classical.richardson_lucy(blurred + 1.0, psf, iterations=100, background=1.0)
    # Most of each bead's photons return to its 3×3 neighbourhood; the peak rises fivefold.
    assert out[19:22, 19:22].sum() > 0.8 * 1000
    assert out[20, 20] > 5 * blurred[20, 20]


def test_bm3d_after_gat_beats_nlm_or_says_how_to_install_it():
    sim = simulate.widefield("filaments", size=96, photons=30, background=2, read_noise=1.0, seed=2)
    try:
        import bm3d  # noqa: F401
    except ImportError:
        from abbe.errors import InputError

        with pytest.raises(InputError, match=r"abbe\[bm3d\]"):
            classical.bm3d_gat(sim.input)
        return
    out = classical.bm3d_gat(sim.input, read_noise=1.0)
    assert metrics.psnr(out, sim.clean) > metrics.psnr(sim.input, sim.clean) + 6


@pytest.mark.parametrize(("gain", "offset", "read"), [(2.0, 10.0, 3.0), (0.5, 100.0, 1.0)])
def test_noise_model_recovers_gain_and_intercept_from_repeated_captures(rng, gain, offset, read):
    from abbe.restore.noise import estimate_noise_model

    lam = rng.gamma(1.5, 10, (256, 256))
    frames = gain * rng.poisson(lam, (8, 256, 256)) + offset + rng.normal(0, read, (8, 256, 256))
    model = estimate_noise_model(frames)
    assert model.gain == pytest.approx(gain, rel=0.03)
    # The intercept σ² − α·μ is all the Anscombe transform needs.
    assert model.intercept == pytest.approx(read**2 - gain * offset, abs=0.05 * gain * offset + 1)
    d = classical.anscombe(frames, **model.anscombe_parameters())
    assert d.var(axis=0, ddof=1).mean() == pytest.approx(1.0, abs=0.1)
