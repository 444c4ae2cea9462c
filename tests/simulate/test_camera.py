"""Flat fields through each camera have the mean and variance of the noise model.

Tolerances are statistical: with n samples the sample mean has SE σ/√n and the sample variance
has relative SE ≈ √(2/n) (more for the skewed EMCCD output), and each check allows ~5 SE.
"""

from __future__ import annotations

import numpy as np
import pytest

from abbe.errors import InputError
from abbe.simulate import Camera

N = 200_000


@pytest.mark.parametrize(
    "camera",
    [
        Camera.ideal(),
        Camera.ideal(read_noise=2.0),
        Camera.ccd(bits=None),
        Camera(kind="ccd", qe=0.6, gain=3.0, offset=50.0, read_noise=4.0),
        Camera.emccd(bits=None),
        Camera.emccd(em_gain=300, read_noise=20.0, bits=None),
    ],
    ids=["ideal", "ideal+read", "ccd", "ccd-custom", "emccd", "emccd-300"],
)
@pytest.mark.parametrize("photons", [3.0, 50.0])
def test_flat_field_mean_and_variance_match_the_model(camera, photons):
    flat = camera.expose(np.full(N, photons), seed=1).astype(np.float64)
    g = camera.gain
    expected_mean = g * camera.em_gain * camera.qe * photons + camera.offset
    expected_var = g**2 * (
        camera.excess_noise_factor * camera.em_gain**2 * camera.qe * photons + camera.read_noise**2
    )
    if camera.bits is not None:
        expected_var += 1 / 12  # rounding to integers
    assert flat.mean() == pytest.approx(expected_mean, abs=5 * np.sqrt(expected_var / N))
    assert flat.var() == pytest.approx(expected_var, rel=5 * np.sqrt(6 / N) + 1e-3)
    # The model's own bookkeeping agrees with the formula above.
    assert float(camera.expected(photons)) == pytest.approx(expected_mean)


def test_emccd_doubles_the_shot_noise_variance():
    cam = Camera(kind="emccd", em_gain=200.0, gain=1.0, offset=0.0)
    flat = cam.expose(np.full(N, 20.0), seed=2)
    # Excess noise factor F² = 2: variance of the input-referred signal is 2·N.
    assert (flat / 200.0).var() == pytest.approx(2 * 20.0, rel=0.03)


def test_scmos_pixels_follow_their_own_offset_gain_and_noise_maps():
    frames, photons = 3000, 30.0
    cam = Camera.scmos((8, 8), seed=4, read_noise=3.0, noise_spread=0.5, bits=None)
    stack = cam.expose(np.full((frames, 8, 8), photons), seed=5).astype(np.float64)
    g = cam.gain * cam.gain_map
    mean_expected = g * cam.qe * photons + cam.offset
    var_expected = g**2 * (cam.qe * photons + cam.read_noise**2)
    np.testing.assert_allclose(
        stack.mean(0), mean_expected, atol=5 * np.sqrt(var_expected.max() / frames)
    )
    np.testing.assert_allclose(stack.var(0), var_expected, rtol=5 * np.sqrt(2 / frames))
    np.testing.assert_allclose(cam.variance(photons), var_expected, rtol=1e-6)
    # The maps differ between pixels: a per-pixel model is needed, not a scalar one.
    assert cam.offset.std() > 1.0 and cam.read_noise.std() > 0.5


def test_adc_rounds_and_saturates():
    cam = Camera(kind="ccd", gain=10.0, offset=0.0, bits=8)
    recorded = cam.expose(np.array([0.0, 5.0, 1000.0]), seed=0)
    assert recorded[2] == 255
    assert np.all(recorded == np.round(recorded))
    well = Camera(kind="ccd", gain=1.0, full_well=100.0)
    assert well.expose(np.full(100, 1e4), seed=0).max() == 100


def test_same_seed_same_image_and_to_photons_inverts_the_mean():
    cam = Camera.emccd()
    a = cam.expose(np.full((16, 16), 40.0), seed=9)
    b = cam.expose(np.full((16, 16), 40.0), seed=9)
    np.testing.assert_array_equal(a, b)
    assert float(cam.to_photons(cam.expected(40.0))) == pytest.approx(40.0)


def test_negative_or_non_finite_photons_are_refused():
    with pytest.raises(InputError):
        Camera.ideal().expose(np.array([1.0, -1.0]))
    with pytest.raises(InputError):
        Camera.ideal().expose(np.array([np.nan]))
