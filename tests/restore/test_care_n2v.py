"""CARE and N2V learn to denoise; the model predicts in the input's units at any size."""

from __future__ import annotations

import numpy as np
import pytest

from abbe import metrics
from abbe.errors import ConfigError, InputError
from abbe.nn import UNetConfig
from abbe.restore import CARE, N2V, RestorationConfig, RestorationModel
from abbe.train import TrainingConfig

FAST = TrainingConfig(
    patch_size=48, batch_size=8, steps_per_epoch=50, max_epochs=6, learning_rate=2e-3
)
# The module's tests share one trained model: keep them on one worker.
pytestmark = pytest.mark.xdist_group("care")


@pytest.fixture(scope="session")
def care(filament_pairs):
    noisy, clean = filament_pairs
    cfg = RestorationConfig(network=UNetConfig(width=16), training=FAST)
    return CARE(cfg).fit(noisy[:8], clean[:8], axes="SYX")


def test_care_raises_psnr_by_at_least_8_db_on_a_held_out_image(care, filament_pairs):
    noisy, clean = filament_pairs
    before = metrics.psnr(noisy[8], clean[8])
    after = metrics.psnr(care.predict(noisy[8], "YX"), clean[8])
    assert after > before + 8, (before, after)
    assert care.metrics["steps"] == 300 and care.metrics["n_validation_images"] == 1


def test_n2v_learns_from_noisy_images_alone(filament_pairs):
    noisy, clean = filament_pairs
    cfg = RestorationConfig(
        method="n2v", network=UNetConfig(width=16, n2v2=True, residual=False), training=FAST
    )
    n2v = N2V(cfg).fit(noisy[:8], axes="SYX")
    before = metrics.psnr(noisy[8], clean[8])
    after = metrics.psnr(n2v.predict(noisy[8], "YX"), clean[8])
    assert after > before + 5, (before, after)


def test_prediction_follows_the_input_units(care, filament_pairs):
    # Percentile normalization is undone with the input's own range: a camera with gain 3 and
    # offset 100 gets back gain 3 and offset 100 (the restoration is affine-equivariant).
    noisy, _ = filament_pairs
    plain = care.predict(noisy[8], "YX")
    adu = care.predict(3.0 * noisy[8] + 100.0, "YX")
    np.testing.assert_allclose(adu, 3.0 * plain + 100.0, rtol=1e-4, atol=1e-3)


def test_time_series_are_restored_frame_by_frame(care, filament_pairs):
    noisy, _ = filament_pairs
    frame = noisy[8]
    stack = np.stack([frame, frame, frame])
    out = care.predict(stack, "TYX")
    np.testing.assert_allclose(out[1], care.predict(frame, "YX"), rtol=1e-5, atol=1e-4)
    # Axes in another order are respected.
    out_yxt = care.predict(np.moveaxis(stack, 0, -1), "YXT")
    np.testing.assert_allclose(np.moveaxis(out_yxt, -1, 0), out, rtol=1e-5, atol=1e-4)


def test_a_3d_model_restores_a_zyx_stack(rng):
    cfg = RestorationConfig(axes="ZYX", network=UNetConfig(dims=3, width=4, depth=1))
    model = CARE(cfg)
    vol = rng.random((10, 37, 29)).astype(np.float32)
    out = model.predict(vol, "ZYX", tile=16)
    assert out.shape == vol.shape and np.isfinite(out).all()
    np.testing.assert_allclose(out, model.predict(vol, "ZYX", tile=None), rtol=1e-4, atol=1e-4)


def test_save_and_load_round_trip_exactly(care, filament_pairs, tmp_path):
    noisy, _ = filament_pairs
    care.save(tmp_path / "m")
    loaded = RestorationModel.load(tmp_path / "m")
    assert isinstance(loaded, CARE)
    np.testing.assert_array_equal(loaded.predict(noisy[8]), care.predict(noisy[8]))
    assert loaded.config == care.config


def test_broken_model_folders_give_clear_errors(care, tmp_path):
    from abbe.errors import ModelError

    folder = care.save(tmp_path / "m")
    cfg = folder / "config.yaml"
    cfg.write_text(cfg.read_text() + "surprise: 1\n")
    with pytest.raises(ConfigError, match="surprise"):
        RestorationModel.load(folder)
    with pytest.raises(ModelError, match="not an abbe model folder"):
        RestorationModel.load(tmp_path)


def test_mismatched_pairs_are_refused(filament_pairs):
    noisy, clean = filament_pairs
    with pytest.raises(InputError, match="same field"):
        CARE().fit([noisy[0]], [clean[0][:-1]], axes="YX")
    with pytest.raises(InputError, match="2 inputs but 1 targets"):
        CARE().fit([noisy[0], noisy[1]], [clean[0]], axes="YX")
    with pytest.raises(InputError, match="must contain Y and X"):
        CARE().predict(noisy[0][0], "X")
