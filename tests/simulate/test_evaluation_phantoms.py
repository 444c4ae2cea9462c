"""The evaluation-only phantoms: a second simulator, independent of the training one, whose
effective-resolution measure recovers known blurs."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from abbe.simulate import evaluation as ev

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


@pytest.mark.parametrize(
    "path",
    [
        "scripts/train_sr_widefield.py",
        "src/abbe/simulate/superres.py",
        "src/abbe/restore/superres.py",
        "src/abbe/simulate/__init__.py",
    ],
)
def test_training_code_never_imports_the_evaluation_phantoms(path):
    names = _imports(ROOT / path)
    assert not any("evaluation" in n for n in names), sorted(names)
    assert "abbe.simulate.evaluation" not in (ROOT / path).read_text()


def test_effective_resolution_recovers_a_known_blur():
    """The object blurred by 150 nm (Gaussian) on 50 nm pixels reads 150 ± 3 nm at Pearson
    ≈ 1; the noise-free input of a 250 nm pupil PSF reads within 10 % of 250 nm."""
    field = ev.evaluation_field("curves", size=48, photons=1000, seed=1)
    k = 4
    sharp = ev.blur(field.object, 150.0, field.object_pixel_size_nm)
    image = ev.bin_sum(sharp, k // 2)
    res = ev.effective_resolution(image, field)
    assert res.fwhm_nm == pytest.approx(150.0, abs=3.0)
    assert res.pearson > 0.999
    clean = ev.effective_resolution(field.clean, field)
    assert clean.fwhm_nm == pytest.approx(250.0, rel=0.10)
    assert clean.pearson > 0.99


@pytest.mark.parametrize("family", ev.FAMILIES)
def test_fields_have_the_set_signal_and_poisson_noise(family):
    """Peak of the noise-free image = photons + background; the noise is Poisson plus read
    noise (variance of the residual ≈ mean + read²); the camera PSF is normalized and
    centred."""
    field = ev.evaluation_field(family, size=64, photons=200, background=10, read_noise=1.5, seed=3)
    assert field.clean.max() == pytest.approx(210.0, rel=1e-4)
    resid = field.input - field.clean
    var = float(np.mean(resid**2))
    assert var == pytest.approx(float(field.clean.mean()) + 1.5**2, rel=0.1)
    assert field.psf.sum() == pytest.approx(1.0, abs=1e-5)
    c = field.psf.shape[0] // 2
    assert np.unravel_index(np.argmax(field.psf), field.psf.shape) == (c, c)
    assert field.object.shape == (256, 256)


def test_pupil_otf_cuts_off_at_twice_the_pupil_radius():
    """The incoherent OTF is zero beyond 2·NA/λ = 2·0.5145/FWHM and positive just inside."""
    n, px = 256, 25.0
    otf = np.abs(ev.pupil_otf((n, n), px, fwhm_nm=250.0))
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(n, px), np.fft.fftfreq(n, px), indexing="ij"))
    cutoff = 2 * ev.AIRY_FWHM_PER_LAMBDA_NA / 250.0
    assert otf[f > 1.05 * cutoff].max() < 1e-6
    assert otf[(f > 0.8 * cutoff) & (f < 0.9 * cutoff)].min() > 1e-3
