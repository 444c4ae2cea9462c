"""The broad training family of ``widefield-2x``: structures, PSFs and cameras vary per field,
and each drawn variation is what it claims to be."""

from __future__ import annotations

import numpy as np
import pytest

from abbe.models.base import revalidated
from abbe.simulate import psf as _psf
from abbe.simulate.specimens import Specimen
from abbe.simulate.superres import (
    PRESETS,
    SRPairConfig,
    _widen,
    draw_camera,
    draw_optics,
    meshes,
    sr_pair,
    tubes,
)

BROAD = PRESETS["widefield-2x"]


def test_preset_draws_every_psf_fwhm_and_camera_in_its_ranges():
    """Over 60 fields: all three PSF kinds and cameras appear; the in-focus FWHM is in
    210–300 nm and matches the drawn optics (Airy FWHM 0.5145·λ/NA), NA ≤ 1.45; defocus only
    for Born–Wolf, within 0–600 nm."""
    rng = np.random.default_rng(0)
    optics = [draw_optics(BROAD, rng) for _ in range(60)]
    cams = [draw_camera(BROAD, 1.0, rng).kind for _ in range(60)]
    assert {o.kind for o in optics} == {"gaussian", "airy", "born_wolf"}
    assert set(cams) == {"ideal", "emccd", "scmos"}
    for o in optics:
        assert 210 <= o.fwhm_nm <= 300
        assert 0.9 <= o.na <= 1.45
        assert _psf.airy_fwhm_nm(o.na, o.wavelength_nm) == pytest.approx(o.fwhm_nm, rel=1e-6)
        assert (o.defocus_nm > 0) == (o.kind == "born_wolf")
        assert o.defocus_nm <= 600
    fwhms = [o.fwhm_nm for o in optics]
    assert max(fwhms) - min(fwhms) > 60  # spread, not one kernel


def test_filament_width_is_the_drawn_fwhm():
    """A one-pixel line widened to 150 nm has a 150 nm FWHM cross-section (±3 %)."""
    density = np.zeros((64, 64), np.float32)
    density[:, 32] = 1.0
    wide = _widen(Specimen(density, 10.0), 150.0).density
    profile = wide[32].astype(float)
    x = np.arange(64) * 10.0
    mean = (profile * x).sum() / profile.sum()
    sigma = np.sqrt((profile * (x - mean) ** 2).sum() / profile.sum())
    assert 2.3548 * sigma == pytest.approx(150.0, rel=0.03)
    # Flux kept (rows away from the ends, where the blur spills past the edge).
    assert wide[16:48].sum() == pytest.approx(density[16:48].sum(), rel=1e-3)


def test_tubes_are_outlined_and_meshes_are_networks():
    """Tubes: the brightest pixels lie on the membrane, a radius away from the dimmer lumen;
    meshes: many connected edges (one network, not isolated dots)."""
    from scipy import ndimage

    spec = tubes((400, 400), pixel_size_nm=10.0, density_per_um2=0.05, radius_nm=(200, 200), seed=1)
    d = spec.density
    assert d.max() > 0
    shell = d > 0.8 * d.max()
    lumen_mean = d[(d > 0) & (d < 0.5 * d.max())].mean()
    assert d[shell].mean() > 2.5 * lumen_mean
    net = meshes((400, 400), pixel_size_nm=10.0, density_per_um2=2.0, keep=(1.0, 1.0), seed=2)
    labels, n = ndimage.label(net.density > 0)
    sizes = ndimage.sum(np.ones_like(labels), labels, index=np.arange(1, n + 1))
    assert sizes.max() > 0.5 * (net.density > 0).sum()


@pytest.mark.parametrize("kind", ["gaussian", "airy", "born_wolf"])
def test_broad_pairs_conserve_flux_and_set_the_peak(kind):
    """Each PSF kind: the noise-free input peaks at photons + background, and the target
    averaged over 2×2 blocks holds the input's photons (a specimen in the field's middle)."""
    cfg = revalidated(BROAD, {"psfs": (kind,), "cameras": ("ideal",), "haze_probability": 0.0})
    k = cfg.oversample
    density = np.zeros((64 * k, 64 * k), np.float32)
    density[100:156, 120:124] = 1.0
    pair = sr_pair(cfg, seed=5, specimen=Specimen(density, 25.0), photons=300, background=7)
    assert pair.params["psf"] == kind
    assert pair.expected_input.max() == pytest.approx(307.0, rel=1e-4)
    signal_in = pair.expected_input.sum() - 7 * 64 * 64
    signal_target = pair.target.sum() / 4 - 7 * 64 * 64
    assert signal_target == pytest.approx(signal_in, rel=0.05)


@pytest.mark.parametrize(("camera", "ratio"), [("ideal", 1.0), ("emccd", 2 / 0.9)])
def test_camera_noise_is_what_the_camera_gives(camera, ratio):
    """On a flat field (in photons): ideal noise variance = mean + read²; EMCCD variance =
    2·mean/QE (excess noise factor 2, QE 0.9), both ±8 %."""
    cfg = revalidated(BROAD, {"cameras": (camera,), "psfs": ("gaussian",), "haze_probability": 0.0})
    k = cfg.oversample
    flat = Specimen(np.ones((64 * k, 64 * k), np.float32), 25.0)
    pair = sr_pair(cfg, seed=1, specimen=flat, photons=200, background=0, read_noise=2.0)
    inner = np.s_[8:56, 8:56]
    resid = (pair.input - pair.expected_input)[inner]
    mean = float(pair.expected_input[inner].mean())
    read = 2.0**2 if camera == "ideal" else (2.0 / 0.9) ** 2
    assert float(resid.var()) == pytest.approx(ratio * mean + read, rel=0.08)


def test_narrow_configs_are_unchanged():
    """SRPairConfig() (other presets, stored configs) draws no PSF or camera variations."""
    assert not SRPairConfig().varies_optics
    assert PRESETS["widefield-sim"].structures == ("filaments", "puncta", "rings")
    assert BROAD.varies_optics and BROAD.photons == (10.0, 1000.0)


def _script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "train_sr_widefield.py"
    spec = importlib.util.spec_from_file_location("train_sr_widefield", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_training_script_counts_steps_not_minutes():
    """The bundled model's recipe stops after a number of steps on one thread (no time limit),
    and its default step count is the one the shipped model was trained with."""
    import json

    from abbe.models.registry import resolve

    script = _script()
    cfg = script.model_config("rcan", 1000)
    assert cfg.training.max_time_s is None
    assert cfg.training.max_epochs * cfg.training.steps_per_epoch == 1000
    assert cfg.training.threads == 1
    shipped = json.loads((resolve("sr-widefield-2x") / "metrics.json").read_text())
    assert shipped["steps"] == script.STEPS
    assert shipped["stopped_by"] == "epochs"
