"""Camera gain and PSF width read off simulated stacks match the values they were made with."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from abbe.errors import AbbeWarning, InputError
from abbe.localize.calibration import (
    camera_by_photon_transfer,
    load_camera,
    photon_transfer,
    photon_transfer_gain,
    psf_sigma_from_spectrum,
)
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


def _no_abbe_warning(fn, *args, **kwargs):
    """Call ``fn`` and fail if it warns that its result is doubtful."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args, **kwargs)
    assert not [w for w in caught if issubclass(w.category, AbbeWarning)]
    return result


# The default simulated EMCCD: 1/45 ADU per output electron behind EM gain 100.
EMCCD_TOTAL_GAIN = 100 / 45


@pytest.mark.parametrize("density", [2.0, 5.0, 10.0])
def test_photon_transfer_holds_for_dense_random_emitters(density):
    """Issue 28, finding 1 scaled down (abbe simulate smlm --density 5 --camera emccd): emitters
    placed anew in every frame light every pixel now and then, so the dimmest pixels' noise
    over time reads the gain many times too high (92.8 instead of 2.22 ADU/e⁻ at 200 frames of
    64²); the shot noise of the finest detail does not see them. 30 frames of 32² bound the
    statistical error to about 3 %: 10 % is over three SD."""
    sim = smlm(frames=30, size=32, density=density, camera="emccd", seed=2)
    dimmest = photon_transfer_gain(sim.stack, offset=100.0, excess_noise_factor=2.0)
    assert dimmest > 3 * EMCCD_TOTAL_GAIN  # the finding: dense indeed, the old estimate fails
    found = _no_abbe_warning(photon_transfer, sim.stack, offset=100.0, excess_noise_factor=2.0)
    assert found.method == "finest detail" and found.warnings == ()
    assert found.gain == pytest.approx(EMCCD_TOTAL_GAIN, rel=0.10)


@pytest.mark.parametrize(
    ("camera", "total_gain", "structure", "background"),
    [
        (EMCCD, 2.0, "filaments", (20, 20)),
        (EMCCD, 2.0, "filaments", (20, 100)),
        (Camera(kind="ccd", gain=0.5, offset=100.0, qe=1.0, read_noise=0.0), 0.5, None, (20, 100)),
        (EMCCD, 2.0, None, (20, 100)),
    ],
)
def test_photon_transfer_keeps_sparse_and_filament_stacks_right(
    camera, total_gain, structure, background
):
    """Where the old estimate was right (dense filaments, sparse random emitters at 0.1/µm²)
    the combined one stays right, within 5 % (64² × 100 frames: about 1 % statistical)."""
    sim = smlm(
        frames=100,
        size=64,
        density=5.0 if structure else 0.1,
        background=background,
        camera=camera,
        structure=structure,
        seed=4,
    )
    found = _no_abbe_warning(
        photon_transfer, sim.stack, offset=100.0, excess_noise_factor=camera.excess_noise_factor
    )
    assert found.gain == pytest.approx(total_gain, rel=0.05)


def test_read_noise_given_is_taken_out_of_the_gain():
    """A CCD with 6 e⁻ read noise at 0.5 ADU/e⁻ adds 9 ADU² to every pixel's variance: the gain
    reads about 25 % high unless the read noise is given."""
    camera = Camera.ccd()  # 0.5 ADU/e⁻, 6 e⁻ read noise, offset 100
    sim = smlm(frames=40, size=48, density=5.0, camera=camera, seed=6)
    without = photon_transfer(sim.stack, offset=100.0).gain
    given = _no_abbe_warning(photon_transfer, sim.stack, offset=100.0, read_noise_e=6.0).gain
    assert without > 1.15 * 0.5
    assert given == pytest.approx(0.5, rel=0.05)


def test_a_psf_too_narrow_for_the_pixels_is_warned_about():
    """σ = 0.6 px: emitter light reaches the highest spatial frequencies, so the shot noise
    cannot be read there; at 5 random emitters/µm² no estimate can be trusted and it says so,
    with what to do."""
    sim = smlm(frames=30, size=32, density=5.0, psf_sigma_nm=60.0, camera="emccd", seed=7)
    with pytest.warns(AbbeWarning, match="too narrow for the pixels.*datasheet gain"):
        found = photon_transfer(sim.stack, offset=100.0, excess_noise_factor=2.0)
    assert found.spatial is not None and found.spatial.upper_bound
    assert found.gain <= found.spatial.gain  # never above the bound the finest detail sets


def test_noise_correlated_between_pixels_is_warned_about():
    """Frames smoothed by a Gaussian of 0.5 px (processed data) no longer hold white noise:
    the finest detail's noise power falls with frequency, and photon transfer says so."""
    sim = smlm(frames=40, size=48, density=0.1, camera="emccd", seed=8)
    smoothed = gaussian_filter(sim.stack - 100.0, (0, 0.5, 0.5)) + 100.0
    with pytest.warns(AbbeWarning, match="not white"):
        found = photon_transfer(smoothed, offset=100.0, excess_noise_factor=2.0)
    assert found.method == "dimmest pixels"


def test_per_pixel_gain_differences_are_warned_about():
    """An sCMOS whose pixels' gains differ by 10 % rms: the pattern times the emitters' light
    is white like shot noise and the finest detail reads the gain about twice too high at 5
    random emitters/µm². The pattern is the same in every frame, and that gives it away."""
    camera = Camera.scmos((32, 32), gain_spread=0.10, seed=1)  # mean gain 2 ADU/e⁻
    sim = smlm(frames=30, size=32, density=5.0, camera=camera, seed=1)
    with pytest.warns(AbbeWarning, match="fixed pixel pattern.*gain map"):
        found = photon_transfer(sim.stack, offset=100.0, read_noise_e=1.9)
    assert found.spatial is not None and found.spatial.gain > 1.5 * 2.0  # the doubt is real
    # At 1 % (a well-made sCMOS) nothing is said, and the gain reads within 8 % (the
    # statistical error at 30 frames of 32² is about 3 %).
    camera = Camera.scmos((32, 32), gain_spread=0.01, seed=1)
    sim = smlm(frames=30, size=32, density=5.0, camera=camera, seed=1)
    found = _no_abbe_warning(photon_transfer, sim.stack, offset=100.0, read_noise_e=1.9)
    assert found.gain == pytest.approx(2.0, rel=0.08)


def test_small_frames_are_warned_about():
    """Under 16 × 16 pixels there is no spectrum to read: the dimmest pixels alone, warned."""
    sim = smlm(frames=20, size=12, density=5.0, camera="emccd", seed=9)
    with pytest.warns(AbbeWarning, match="under 16 × 16 pixels"):
        found = photon_transfer(sim.stack, offset=100.0, excess_noise_factor=2.0)
    assert found.spatial is None and found.method == "dimmest pixels"


def test_a_doubtful_camera_file_warns_where_it_is_read(tmp_path):
    """The camera file keeps the calibration's warnings; reading it repeats them."""
    sim = smlm(frames=20, size=12, density=5.0, camera="emccd", seed=9)
    with pytest.warns(AbbeWarning):
        camera = camera_by_photon_transfer(sim.stack, offset=100.0, em_gain=100.0)
    record = {"kind": "emccd", "offset": 100.0, "gain": camera.gain, "em_gain": 100.0}
    record |= {"photon_transfer": camera.extra["photon_transfer"]}
    record |= {"warnings": camera.extra["warnings"]}
    (tmp_path / "cam.json").write_text(json.dumps(record))
    with pytest.warns(AbbeWarning, match="cam.json: frames under 16"):
        assert load_camera(tmp_path / "cam.json").gain == pytest.approx(camera.gain)


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
