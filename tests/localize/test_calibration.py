"""Camera gain and PSF width read off simulated stacks match the values they were made with."""

from __future__ import annotations

import numpy as np
import pytest

from abbe.errors import InputError
from abbe.localize.calibration import photon_transfer_gain, psf_sigma_from_spectrum
from abbe.localize.matching import estimate_conditions
from abbe.simulate import Camera
from abbe.simulate.smlm import smlm

EMCCD = Camera(kind="emccd", em_gain=100.0, gain=0.02, offset=100.0, qe=1.0, read_noise=0.0)


@pytest.mark.parametrize(
    ("camera", "total_gain", "background"),
    [
        (EMCCD, 2.0, (20, 20)),
        (Camera(kind="ccd", gain=0.5, offset=100.0, qe=1.0, read_noise=0.0), 0.5, (20, 20)),
        (EMCCD, 2.0, (20, 100)),  # the background jumps from frame to frame
    ],
)
def test_photon_transfer_recovers_the_gain(camera, total_gain, background):
    """Dense blinking filaments (5 emitters/µm²): pixels off the filaments see background."""
    sim = smlm(
        frames=100,
        size=64,
        density=5.0,
        background=background,
        camera=camera,
        structure="filaments",
        seed=4,
    )
    found = photon_transfer_gain(
        sim.stack, offset=100.0, excess_noise_factor=camera.excess_noise_factor
    )
    assert found == pytest.approx(total_gain, rel=0.07)


def test_photon_transfer_refuses_a_single_frame():
    with pytest.raises(InputError, match="10 frames"):
        photon_transfer_gain(np.zeros((1, 32, 32)), offset=0.0)


@pytest.mark.parametrize("sigma_nm", [100.0, 150.0])
def test_psf_width_from_the_spectrum_holds_at_high_density(sigma_nm):
    """At 5 emitters/µm² single-spot fits merge neighbours; the spectrum still gives σ."""
    sim = smlm(
        frames=40, size=64, density=5.0, psf_sigma_nm=sigma_nm, camera="ideal", seed=int(sigma_nm)
    )
    assert psf_sigma_from_spectrum(sim.stack, 100.0) == pytest.approx(sigma_nm, rel=0.05)


def test_dense_conditions_match_the_simulation():
    """σ, background and photons read off a dense EMCCD stack of blinking filaments."""
    sim = smlm(
        frames=60,
        size=64,
        density=5.0,
        photons=(1000, 2000),
        background=(20, 20),
        psf_sigma_nm=120.0,
        camera=EMCCD,
        structure="filaments",
        seed=8,
    )
    found = estimate_conditions(sim.stack, pixel_size_nm=100.0, camera=EMCCD, density=5.0)
    assert found["psf_sigma_nm"] == pytest.approx(120.0, rel=0.05)
    assert found["background"][0] / 0.5 == pytest.approx(20.0, rel=0.15)
    assert found["photons"][0] / 0.5 == pytest.approx(1500.0, rel=0.15)
