"""PSF models: values are pixel integrals of the PSF, derivatives are those of the values, numpy
and torch agree, and the fitter reaches each model's Cramér–Rao bound."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from abbe.localize import fit_rois
from abbe.simulate.psfmodel import (
    AiryPSF,
    IntegratedGaussian,
    PSFModel,
    PSFValues,
    crlb,
    integrated_gaussian_1d,
    integrated_gaussian_terms,
)

BOX = 9


def _params(x, y, photons, **shape):
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    return {"x": t(x), "y": t(y), "photons": t(photons)} | {k: t(v) for k, v in shape.items()}


def _finite_difference(psf: PSFModel, params, name: str, step: float) -> torch.Tensor:
    hi = dict(params, **{name: params[name] + step})
    lo = dict(params, **{name: params[name] - step})
    return (psf.evaluate(hi, (BOX, BOX)).image - psf.evaluate(lo, (BOX, BOX)).image) / (2 * step)


def test_gaussian_derivatives_match_finite_differences():
    psf = IntegratedGaussian(sigma_px=1.3)
    p = _params(
        [4.2, 3.71, 5.5], [4.9, 4.03, 2.2], [1000.0, 250.0, 3000.0], sigma_px=[1.3, 1.1, 1.6]
    )
    wrt = ["x", "y", "photons", "sigma_px"]
    out = psf.evaluate(p, (BOX, BOX), wrt=wrt)
    for name in wrt:
        fd = _finite_difference(psf, p, name, 1e-5)
        # Central differences of step h err by O(h²·f‴) ≈ 1e-10 of the peak here.
        np.testing.assert_allclose(out.grad[name], fd, atol=1e-6 * float(out.image.max()))


def test_airy_derivatives_match_finite_differences():
    psf = AiryPSF(na=1.4, wavelength_nm=600, pixel_size_nm=100)
    p = _params([4.2, 3.71], [4.9, 4.35], [1000.0, 250.0])
    out = psf.evaluate(p, (BOX, BOX), wrt=["x", "y", "photons"])
    for name in ("x", "y", "photons"):
        # The model's own x, y derivatives are numerical (step 1e-4 px): compare at 1e-3 px.
        fd = _finite_difference(psf, p, name, 1e-3)
        np.testing.assert_allclose(out.grad[name], fd, atol=1e-5 * float(out.image.max()))


def test_integrated_gaussian_holds_all_photons_on_a_large_grid():
    psf = IntegratedGaussian(sigma_nm=130, pixel_size_nm=100)
    img = psf.render(np.array([40.3]), np.array([39.8]), np.array([2500.0]), (80, 80))
    # The grid spans 30 σ on each side: the missing tail is below 1e-100.
    assert img.sum() == pytest.approx(2500.0, rel=1e-12)


def test_integrated_gaussian_matches_the_erf_formula():
    # Independently: Smith et al. (2010) eq. 3 with math.erf, pixel by pixel.
    x, y, n, s = 3.37, 4.81, 1200.0, 1.21
    expected = np.empty((BOX, BOX))
    for i in range(BOX):
        for j in range(BOX):
            ex = 0.5 * (
                math.erf((j + 1 - x) / (math.sqrt(2) * s)) - math.erf((j - x) / (math.sqrt(2) * s))
            )
            ey = 0.5 * (
                math.erf((i + 1 - y) / (math.sqrt(2) * s)) - math.erf((i - y) / (math.sqrt(2) * s))
            )
            expected[i, j] = n * ex * ey
    psf = IntegratedGaussian(sigma_px=s)
    edges = np.arange(BOX + 1, dtype=np.float64)
    numpy_img = psf.window(edges, np.array([y]), edges, np.array([x]), np.array([n]))[0]
    torch_img = psf.evaluate(_params([x], [y], [n]), (BOX, BOX)).image[0].numpy()
    frame = psf.render(np.array([x]), np.array([y]), np.array([n]), (BOX, BOX))
    for img in (numpy_img, torch_img, frame):
        np.testing.assert_allclose(img, expected, rtol=1e-12, atol=1e-12)


def test_airy_numpy_and_torch_agree_and_hold_the_photons():
    psf = AiryPSF(na=1.2, wavelength_nm=560, pixel_size_nm=80)
    x, y, n = np.array([30.4, 25.9]), np.array([29.7, 32.2]), np.array([1000.0, 500.0])
    frame = psf.render(x, y, n, (60, 60))  # the supports, ±24 pixels, lie in the frame
    assert frame.sum() == pytest.approx(n.sum(), rel=1e-12)
    torch_img = psf.evaluate(_params(x, y, n), (60, 60)).image.sum(0).numpy()
    # torch's float64 J1 differs from scipy's by up to 5e-7 (measured, near v = 5): the two
    # backends agree to a few parts in a million, far below any Poisson noise.
    np.testing.assert_allclose(torch_img, frame, atol=3e-6 * frame.max())


def test_kernels_are_the_models_at_the_centre():
    g = IntegratedGaussian(sigma_px=1.5)
    kernel = g.kernel(11)
    edges = np.arange(12, dtype=np.float64)
    direct = g.window(edges, np.array([5.5]), edges, np.array([5.5]))[0]
    np.testing.assert_allclose(kernel, direct / direct.sum(), rtol=1e-6)
    assert kernel.sum() == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize(
    "psf",
    [
        IntegratedGaussian(sigma_px=1.3),
        # A small support and 3×3 sub-samples keep the numerical Airy fit fast.
        AiryPSF(na=1.4, wavelength_nm=600, pixel_size_nm=100, oversample=3, support_px=5),
    ],
    ids=["gaussian", "airy"],
)
def test_fitter_reaches_the_models_cramer_rao_bound(psf):
    # Arrange: spots drawn from the model itself, 2000 photons on 30 per pixel, 9×9 regions.
    rng = np.random.default_rng(1)
    n, photons, background = 1500 if isinstance(psf, IntegratedGaussian) else 400, 2000.0, 30.0
    x = BOX / 2 + rng.uniform(-0.5, 0.5, n)
    y = BOX / 2 + rng.uniform(-0.5, 0.5, n)
    edges = np.arange(BOX + 1, dtype=np.float64)
    mu = background + psf.window(edges, y, edges, x, np.full(n, photons))
    rois = rng.poisson(mu).astype(np.float32)
    # Act
    (slot,) = fit_rois(rois, psf=psf)
    # Assert: the RMSE per axis is the bound (within 10 %, about 3 standard errors for the Airy
    # sample of 400), and the fit reports that bound.
    bound = crlb(psf, x=x, y=y, photons=photons, background=background, shape=(BOX, BOX))
    rmse_x = float(np.sqrt(np.mean((slot["x"] - x) ** 2)))
    rmse_y = float(np.sqrt(np.mean((slot["y"] - y) ** 2)))
    sd = float(np.sqrt(np.mean(bound["x"] ** 2 + bound["y"] ** 2) / 2))
    assert (rmse_x + rmse_y) / 2 == pytest.approx(sd, rel=0.10)
    own = float(np.sqrt(np.mean(slot["crlb_x"] ** 2 + slot["crlb_y"] ** 2) / 2))
    assert own == pytest.approx(sd, rel=0.05)
    assert np.median(slot["photons"]) == pytest.approx(photons, rel=0.03)


class _Astigmatic(PSFModel):
    """A 3D PSF in one class: σx, σy = σ₀·√(1 + ((z ∓ c)/d)²) (Huang et al., Science 319:810
    (2008)); the fitter, its CRLB and rendering take it as they are."""

    emitter_params = ("z",)

    def __init__(self, sigma0_px: float = 1.3, c_nm: float = 250.0, d_nm: float = 400.0):
        self.sigma0_px, self.c_nm, self.d_nm = sigma0_px, c_nm, d_nm

    @property
    def width_px(self) -> float:
        return self.sigma0_px

    def support_px(self) -> int:
        return math.ceil(8 * self.sigma0_px) + 1

    def bounds(self, name, box):
        return (-600.0, 600.0) if name == "z" else super().bounds(name, box)

    def _sigmas(self, z, sqrt):
        u = ((z - self.c_nm) / self.d_nm, (z + self.c_nm) / self.d_nm)
        return u, tuple(self.sigma0_px * sqrt(1 + v**2) for v in u)

    def evaluate(self, params, shape, *, wrt=()):
        x, y, z, n = params["x"], params["y"], params["z"], params["photons"]
        (ux, uy), (sx, sy) = self._sigmas(z, torch.sqrt)
        ex, dex, dsx = integrated_gaussian_terms(x, sx, shape[1], True)
        ey, dey, dsy = integrated_gaussian_terms(y, sy, shape[0], True)
        nn, unit = n[:, None, None], ey[:, :, None] * ex[:, None, :]
        # dσ/dz = σ₀²·u / (d·σ)
        dz_x = dsx * (self.sigma0_px**2 * ux / (self.d_nm * sx))[:, None]
        dz_y = dsy * (self.sigma0_px**2 * uy / (self.d_nm * sy))[:, None]
        grad = {
            "x": nn * ey[:, :, None] * dex[:, None, :],
            "y": nn * dey[:, :, None] * ex[:, None, :],
            "z": nn * (dz_y[:, :, None] * ex[:, None, :] + ey[:, :, None] * dz_x[:, None, :]),
            "photons": unit,
        }
        return PSFValues(nn * unit, {k: grad[k] for k in wrt})

    def window(self, y_edges, y, x_edges, x, photons=None, *, z=0.0):
        _, (sx, sy) = self._sigmas(np.broadcast_to(z, np.shape(x)), np.sqrt)
        img = integrated_gaussian_1d(y_edges, y, sy)[:, :, None]
        img = img * integrated_gaussian_1d(x_edges, x, sx)[:, None, :]
        return img if photons is None else np.asarray(photons)[:, None, None] * img


def test_a_3d_psf_is_one_class_and_the_fitter_finds_z_at_its_bound():
    psf = _Astigmatic()
    p = _params([4.2, 3.9], [4.6, 4.4], [2000.0, 900.0], z=[-180.0, 260.0])
    out = psf.evaluate(p, (BOX, BOX), wrt=["x", "y", "z", "photons"])
    for name, step in (("x", 1e-5), ("y", 1e-5), ("z", 1e-3)):
        fd = _finite_difference(psf, p, name, step)
        np.testing.assert_allclose(out.grad[name], fd, atol=1e-6 * float(out.image.max()))
    # Spots at z in ±300 nm, fitted with z free.
    rng = np.random.default_rng(2)
    n, photons, background = 1500, 3000.0, 20.0
    x, y = (BOX / 2 + rng.uniform(-0.5, 0.5, n) for _ in range(2))
    z = rng.uniform(-300, 300, n)
    edges = np.arange(BOX + 1, dtype=np.float64)
    mu = background + psf.window(edges, y, edges, x, np.full(n, photons), z=z)
    (slot,) = fit_rois(rng.poisson(mu).astype(np.float32), psf=psf)
    bound = crlb(psf, x=x, y=y, z=z, photons=photons, background=background, shape=(BOX, BOX))
    rmse_z = float(np.sqrt(np.mean((slot["z"] - z) ** 2)))
    # Within 15 %: near the edges of the range a few fits are held by the ±600 nm bounds.
    assert rmse_z == pytest.approx(float(np.sqrt(np.mean(bound["z"] ** 2))), rel=0.15)
    assert np.median(np.abs(slot["crlb_z"] / bound["z"] - 1)) < 0.05
    frame = psf.render(x[:3] + 10, y[:3] + 10, np.full(3, photons), (30, 30), z=z[:3])
    assert frame.sum() == pytest.approx(3 * photons, rel=1e-9)
