"""``match_config``: one builder of the simulations a learned SMLM model trains on."""

from __future__ import annotations

import pytest

from abbe.errors import InputError
from abbe.localize.matching import match_config

GIVEN = {"psf_sigma_nm": 140.0, "photons": (500.0, 3000.0), "background": (10.0, 40.0)}


def test_settings_given_are_kept_and_the_rest_are_defaults_of_the_kind():
    cfg = match_config(
        "deepstorm",
        pixel_size_nm=110.0,
        **GIVEN,
        density=(1.0, 8.0),
        structured=0.25,
        training={"max_time_s": 30.0, "seed": 4},
        upsampling=8,
    )
    assert type(cfg).__name__ == "DeepStormConfig"
    assert (cfg.pixel_size_nm, cfg.psf_sigma_nm) == (110.0, 140.0)
    assert cfg.photons == (500.0, 3000.0) and cfg.background == (10.0, 40.0)
    assert cfg.density == (1.0, 8.0) and cfg.structured == 0.25 and cfg.upsampling == 8
    assert cfg.camera == {"kind": "ideal"}
    assert (cfg.training.max_time_s, cfg.training.seed) == (30.0, 4)
    # Only the fields named change: the patch size stays the kind's default.
    assert cfg.training.patch_size == type(cfg)().training.patch_size


def test_without_a_density_training_reaches_twice_the_stack_s():
    cfg = match_config("localizer", pixel_size_nm=100.0, **GIVEN, stack_density=3.0)
    assert type(cfg).__name__ == "LocalizerConfig"
    assert cfg.density == pytest.approx((0.6, 6.0))
    assert match_config("localizer", pixel_size_nm=100.0, **GIVEN).density == pytest.approx(
        (0.4, 4.0)
    )


def test_settings_neither_given_nor_readable_are_refused():
    with pytest.raises(InputError, match="photons, background unknown"):
        match_config("deepstorm", pixel_size_nm=100.0, psf_sigma_nm=130.0)
    with pytest.raises(InputError, match="unknown kind"):
        match_config("gaussian", pixel_size_nm=100.0, **GIVEN)


def test_training_by_steps_gives_the_same_model_for_the_same_seed(tmp_path):
    """Issue 21 item 4: on-the-fly models train a number of steps, not seconds, so the same
    seed gives the same weights and threshold on a busy or an idle machine."""
    import warnings

    import torch

    from abbe.localize.deepstorm import DeepStorm
    from abbe.localize.matching import match_stack
    from abbe.simulate import Camera
    from abbe.simulate.smlm import smlm

    camera = Camera(kind="emccd", em_gain=100.0, gain=0.02, offset=100.0, qe=0.9)
    sim = smlm(frames=40, size=32, density=4.0, structure="filaments", camera=camera, seed=2)

    def trained(seed: int, run: str) -> DeepStorm:
        cfg, _ = match_stack("deepstorm", sim.stack, pixel_size_nm=100.0, camera=camera,
                             steps=3, seed=seed)  # fmt: skip
        assert cfg.training.max_time_s is None
        # A small network on small patches: seconds, not minutes.
        cfg = cfg.updated(
            network={"width": 8, "depth": 2},
            training={"patch_size": 32, "batch_size": 4, "validation_batches": 1},
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 3 steps make no localizer; it says so
            return DeepStorm(cfg).fit(work_dir=tmp_path / run)

    a, b = trained(7, "a"), trained(7, "b")
    assert a.metrics["steps"] == b.metrics["steps"] == 3
    wa, wb = a.network.state_dict(), b.network.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a.metrics["val_loss"] == b.metrics["val_loss"]
    assert a.metrics["detection"] == b.metrics["detection"]
    # The steps did change the weights (an untrained network would pass the above trivially).
    fresh = DeepStorm(a.config).network.state_dict()
    assert not all(torch.equal(wa[k], fresh[k]) for k in wa)
