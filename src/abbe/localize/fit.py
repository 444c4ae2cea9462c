"""Maximum-likelihood fitting of single emitters, batched in PyTorch, with the Cramér–Rao bound.

Each candidate's ``box × box`` region is fitted by the model ``μ = b + N·h`` (a PSF model
:class:`~abbe.simulate.psfmodel.PSFModel`, by default the pixel-integrated Gaussian of σ, plus a
flat background) under Poisson statistics, by
Levenberg–Marquardt steps on the Fisher information (Fisher scoring with a per-fit damping that
rises when a step lowers the likelihood). All regions are fitted at once as tensors.

sCMOS pixels add Gaussian read noise of their own variance; following Huang et al. (2013), the
variance γ = σ_read² (in e⁻²) is added to both data and model, which turns read noise into a
Poisson-like term the likelihood handles. An EM register doubles the shot-noise variance: the
fit is unchanged but its Cramér–Rao bound is multiplied by √2 (Mortensen et al. 2010).

References
----------
Smith, Joseph, Rieger & Lidke, "Fast, single-molecule localization that achieves theoretically
minimum uncertainty", Nat Methods 7:373 (2010).
Huang et al., "Video-rate nanoscopy using sCMOS camera-specific single-molecule localization
algorithms", Nat Methods 10:653 (2013).
Mortensen, Churchman, Spudich & Flyvbjerg, Nat Methods 7:377 (2010).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from abbe.errors import InputError
from abbe.localize.detect import band_pass, find_peaks, threshold_for
from abbe.simulate.camera import Camera
from abbe.simulate.psfmodel import IntegratedGaussian, PSFModel, crlb_from_jacobian

LOC_COLUMNS = [
    "frame",
    "x_nm",
    "y_nm",
    "photons",
    "background",
    "sigma_nm",
    "uncertainty_nm",
    "crlb_x_nm",
    "crlb_y_nm",
]
#: A region is refitted with one more emitter when its deviance exceeds the degrees of freedom
#: by this many standard deviations (√(2·dof)) of a χ² ...
TRIGGER_SD = 1.5
#: ... and the extra emitter is kept when the deviance drops by more than this times the
#: Bayesian-information penalty ln(pixels) per added parameter.
PENALTY_PER_PARAMETER = 1.0


@dataclass(frozen=True)
class Electrons:
    """A stack converted to photo-electrons, with what the likelihood needs to know."""

    data: np.ndarray  # (T, Y, X) float32 photo-electrons (after QE, before any EM gain)
    read_variance: np.ndarray | float  # γ, e⁻² per pixel (sCMOS) or scalar
    excess: float  # F²: 2 with an EM register, else 1
    qe: float


def to_electrons(stack: np.ndarray, camera: Camera | None) -> Electrons:
    """Convert recorded values to photo-electrons with the camera's offset and gains.

    Without a camera the values are taken as photons (ideal detector).
    """
    data = np.asarray(stack, dtype=np.float32)
    if camera is None:
        return Electrons(data, 0.0, 1.0, 1.0)
    gain = camera.gain if camera.gain_map is None else camera.gain * camera.gain_map
    electrons = (data - np.asarray(camera.offset, np.float32)) / (
        np.asarray(gain, np.float32) * camera.em_gain
    )
    # Read noise referred to the input of the EM register is divided by the EM gain.
    variance = (np.asarray(camera.read_noise, np.float32) / camera.em_gain) ** 2
    return Electrons(electrons.astype(np.float32), variance, camera.excess_noise_factor, camera.qe)


def _gather(frames: np.ndarray, t, y0, x0, box: int) -> np.ndarray:
    r = np.arange(box)
    return frames[t[:, None, None], (y0[:, None] + r)[:, :, None], (x0[:, None] + r)[:, None, :]]


def _model(
    theta: torch.Tensor, box: int, gamma: torch.Tensor, m: int, psf: PSFModel, fit_shape: bool
):
    """Model μ (n, box, box) of ``m`` emitters plus background and its Jacobian (n, P, box²).

    Parameters are laid out as the PSF's :meth:`~abbe.simulate.psfmodel.PSFModel.fit_params`
    for each emitter ((x, y, N) for a 2D PSF, (x, y, z, N) for a 3D one), then the background,
    then the PSF's shape parameters (σ for the Gaussian) when they are fitted.
    """
    n_roi = theta.shape[0]
    names = psf.fit_params()
    per = len(names)
    b = theta[:, per * m]
    shape = {}
    if fit_shape:
        shape = {name: theta[:, per * m + 1 + i] for i, name in enumerate(psf.shape_params)}
    wrt = names + list(shape)
    mu = b[:, None, None] + gamma
    cols = []
    dshape = {name: torch.zeros_like(mu) for name in shape}
    for k in range(m):
        params = {name: theta[:, per * k + i] for i, name in enumerate(names)} | shape
        out = psf.evaluate(params, (box, box), wrt=wrt)
        mu = mu + out.image
        cols += [out.grad[name] for name in names]
        for name in dshape:  # one shape for every emitter of a region
            dshape[name] = dshape[name] + out.grad[name]
    cols.append(torch.ones_like(mu))
    cols += list(dshape.values())
    jac = torch.stack(cols, dim=1).reshape(n_roi, len(cols), box * box)
    return mu, jac


def _loglik(data: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    return (data * torch.log(mu) - mu).sum(dim=(1, 2))


def deviance(data: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """Poisson deviance 2Σ[d·ln(d/μ) − (d − μ)]: about the degrees of freedom for a good fit."""
    ratio = torch.where(data > 0, data * torch.log(torch.clamp(data, min=1e-12) / mu), 0.0)
    return 2 * (ratio - (data - mu)).sum(dim=(1, 2))


def _bounds(box: int, m: int, psf: PSFModel, fit_shape: bool) -> tuple[torch.Tensor, torch.Tensor]:
    fixed = {"x": (0.0, float(box)), "y": (0.0, float(box)), "photons": (1.0, 1e9)}
    per = [fixed.get(name) or psf.bounds(name, box) for name in psf.fit_params()]
    shape = [psf.bounds(name, box) for name in psf.shape_params] if fit_shape else []
    lo = [b[0] for b in per] * m + [1e-3] + [b[0] for b in shape]
    hi = [b[1] for b in per] * m + [1e9] + [b[1] for b in shape]
    return torch.tensor(lo, dtype=torch.float64), torch.tensor(hi, dtype=torch.float64)


def _levenberg_marquardt(
    data: torch.Tensor,
    theta: torch.Tensor,
    *,
    gamma: torch.Tensor,
    m: int,
    psf: PSFModel,
    fit_shape: bool,
    iterations: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Maximize the Poisson likelihood of every region; returns θ, μ, Jacobian, log-likelihood."""
    n, box, _ = data.shape
    p = theta.shape[1]
    lo, hi = _bounds(box, m, psf, fit_shape)
    per = len(psf.fit_params())
    theta = theta.clone()  # updated in place below
    lam = torch.full((n,), 1e-3, dtype=torch.float64)
    mu, jac = _model(theta, box, gamma, m, psf, fit_shape)
    ll = _loglik(data, mu)
    eye = torch.eye(p, dtype=torch.float64)
    # Regions drop out once converged (most need well under ``iterations`` steps); the
    # rest keep iterating on a smaller batch.
    active = torch.arange(n)
    for _ in range(iterations):
        if active.numel() == 0:
            break
        d, g, th, mu_a, jac_a = data[active], gamma[active], theta[active], mu[active], jac[active]
        na = active.numel()
        resid = (d / mu_a - 1).reshape(na, 1, -1)
        grad = (jac_a * resid).sum(-1)
        fisher = torch.einsum("npk,nqk->npq", jac_a / mu_a.reshape(na, 1, -1), jac_a)
        diag = torch.diag_embed(torch.diagonal(fisher, dim1=1, dim2=2))
        lam_a = lam[active]
        step = torch.linalg.solve(fisher + lam_a[:, None, None] * diag + 1e-9 * eye, grad)
        for k in range(m):  # at most a pixel per step keeps emitters from swapping places
            step[:, per * k : per * k + 2] = step[:, per * k : per * k + 2].clamp(-1.0, 1.0)
        trial = torch.minimum(torch.maximum(th + step, lo), hi)
        mu_t, jac_t = _model(trial, box, g, m, psf, fit_shape)
        ll_t = _loglik(d, mu_t)
        better = ll_t > ll[active]
        theta[active] = torch.where(better[:, None], trial, th)
        mu[active] = torch.where(better[:, None, None], mu_t, mu_a)
        jac[active] = torch.where(better[:, None, None], jac_t, jac_a)
        gain = ll_t - ll[active]
        ll[active] = torch.where(better, ll_t, ll[active])
        lam[active] = torch.where(better, lam_a / 3, lam_a * 10).clamp(1e-7, 1e7)
        # Done when an accepted step gained almost nothing (for a located emitter, a move of
        # ~1e-3 px), or when refused steps in a row have damped the step to nothing.
        converged = (better & (gain < 1e-4)) | (~better & (lam[active] >= 1e2))
        active = active[~converged]
    return theta, mu, jac, ll


_crlb = crlb_from_jacobian


def _initial(rois: torch.Tensor, psf: PSFModel, fit_shape: bool) -> torch.Tensor:
    """One emitter at the background-subtracted centroid, background from the region's rim."""
    _n, box, _ = rois.shape
    border = torch.cat([rois[:, 0], rois[:, -1], rois[:, 1:-1, 0], rois[:, 1:-1, -1]], 1)
    b0 = torch.clamp(border.median(dim=1).values, min=0.1)
    signal = torch.clamp(rois - b0[:, None, None], min=0.0)
    total = signal.sum(dim=(1, 2)).clamp(min=1e-6)
    grid = torch.arange(box, dtype=torch.float64) + 0.5
    x0 = (signal.sum(1) * grid).sum(1) / total
    y0 = (signal.sum(2) * grid).sum(1) / total
    extra = [torch.zeros_like(x0) for _ in psf.emitter_params]  # z = 0: in focus
    params = [x0, y0, *extra, total.clamp(min=10.0), b0]
    if fit_shape:
        params += [torch.full_like(x0, getattr(psf, name)) for name in psf.shape_params]
    return torch.stack(params, dim=1)


def _add_emitter(theta: torch.Tensor, data: torch.Tensor, mu: torch.Tensor, m: int, psf: PSFModel):
    """θ of m emitters → θ of m + 1: the new one at the peak of the smoothed positive residual,
    with the photons that residual holds; the others keep theirs."""
    import torch.nn.functional as F

    n, box, _ = data.shape
    sigma_px = psf.width_px
    per = len(psf.fit_params())
    resid = torch.clamp(data - mu, min=0.0)
    r = max(1, round(sigma_px))
    k = torch.arange(-r, r + 1, dtype=torch.float64)
    g = torch.exp(-(k**2) / (2 * sigma_px**2))
    kernel = (g[:, None] * g[None, :])[None, None]
    smooth = F.conv2d(resid[:, None], kernel / kernel.sum(), padding=r)[:, 0]
    idx = smooth.reshape(n, -1).argmax(1)
    y_new = (idx // box).to(torch.float64) + 0.5
    x_new = (idx % box).to(torch.float64) + 0.5
    n_new = torch.clamp(resid.sum(dim=(1, 2)), min=10.0)
    extra = [torch.zeros_like(x_new) for _ in psf.emitter_params]
    emitters = theta[:, : per * m]
    rest = theta[:, per * m : per * m + 1]  # background (the shape is fixed for several emitters)
    return torch.cat([emitters, torch.stack([x_new, y_new, *extra, n_new], 1), rest], 1)


def fit_rois(
    rois: np.ndarray,
    *,
    sigma_px: float | None = None,
    psf: PSFModel | None = None,
    fit_sigma: bool = False,
    gamma: np.ndarray | float = 0.0,
    iterations: int = 30,
    max_emitters: int = 1,
    excess: float = 1.0,
    start: np.ndarray | None = None,
) -> list[dict[str, np.ndarray]]:
    """Poisson MLE of (x, y, N, b[, σ]) in each (n, box, box) region of photo-electrons.

    The PSF is ``psf``, or an :class:`~abbe.simulate.psfmodel.IntegratedGaussian` of
    ``sigma_px``; with ``fit_sigma`` its shape parameters (σ for the Gaussian) are fitted per
    region too. A 3D PSF adds its emitter parameters (z) between y and N.

    With ``max_emitters`` > 1, regions whose one-emitter fit is poor (Poisson deviance well above
    its degrees of freedom) are refitted with one more emitter (σ fixed), kept when the deviance
    drops by more than a Bayesian-information penalty (3·ln(box²) for 3 new parameters, scaled by
    the excess noise ``excess``). ``start`` gives the initial (x, y, N, b) of each region.

    Returns
    -------
    One dict per emitter slot: ``x``, ``y`` (pixels from the region's corner, pixel centres at
    j + ½), ``photons`` and ``background`` (photo-electrons), ``sigma`` (pixels), ``crlb_x``,
    ``crlb_y`` (pixels), ``present`` (bool; slot k > 0 exists only where more emitters won);
    a 3D PSF adds its emitter parameters and their ``crlb_<name>``.
    """
    psf = _psf_or_gaussian(psf, sigma_px)
    per = len(psf.fit_params())
    rois_t = torch.as_tensor(np.asarray(rois), dtype=torch.float64)
    n, box, _ = rois_t.shape
    g = torch.as_tensor(np.broadcast_to(np.asarray(gamma, np.float64), rois_t.shape).copy())
    data = torch.clamp(rois_t + g, min=0.0)
    theta0 = _initial(rois_t, psf, fit_sigma)
    if start is not None:  # (x, y, [z,] N, b) per region, e.g. an earlier fit's
        theta0[:, : per + 1] = torch.as_tensor(np.asarray(start, np.float64))
    theta, mu, jac, _ = _levenberg_marquardt(
        data, theta0, gamma=g, m=1, psf=psf, fit_shape=fit_sigma, iterations=iterations
    )
    if fit_sigma and "sigma_px" in psf.shape_params:
        sigma = theta[:, per + 1 + psf.shape_params.index("sigma_px")]
    else:
        sigma = torch.full((n,), psf.width_px, dtype=torch.float64)
    best_m = torch.ones(n, dtype=torch.long)
    best = {1: (theta, jac, mu)}
    dev = deviance(data, mu)
    penalty = excess * PENALTY_PER_PARAMETER * per * math.log(box * box)
    active = torch.ones(n, dtype=torch.bool)
    for m in range(2, max_emitters + 1):
        dof = box * box - (per * (m - 1) + 1)
        # Only regions whose current model leaves structure behind are worth another emitter.
        active = active & (dev > excess * (dof + TRIGGER_SD * math.sqrt(2 * dof)))
        idx = torch.nonzero(active).squeeze(1)
        if idx.numel() == 0:
            break
        prev_theta, _, prev_mu = best[m - 1]
        base = prev_theta[idx]
        if m == 2 and fit_sigma:  # several emitters share the single fit's shape, held fixed
            base = base[:, : per + 1]
        start = _add_emitter(base, data[idx], prev_mu[idx], m - 1, psf)
        sub_psf = psf
        if fit_sigma:
            fitted = theta[idx, per + 1 :]
            sub_psf = psf.replace(
                **{k: float(fitted[:, i].median()) for i, k in enumerate(psf.shape_params)}
            )
        t_m, mu_m, jac_m, _ = _levenberg_marquardt(
            data[idx],
            start,
            gamma=g[idx],
            m=m,
            psf=sub_psf,
            fit_shape=False,
            iterations=iterations,
        )
        dev_m = deviance(data[idx], mu_m)
        wins = (dev[idx] - dev_m) > penalty
        theta_m = torch.zeros((n, per * m + 1), dtype=torch.float64)
        mu_full = best[m - 1][2].clone()
        jac_full = torch.zeros((n, per * m + 1, box * box), dtype=torch.float64)
        theta_m[idx], jac_full[idx], mu_full[idx] = t_m, jac_m, mu_m
        best[m] = (theta_m, jac_full, mu_full)
        won = idx[wins]
        best_m[won] = m
        dev[won] = dev_m[wins]
        active = torch.zeros(n, dtype=torch.bool)
        active[won] = True
    return _slots(best, best_m, sigma, max_emitters, psf)


def _psf_or_gaussian(psf: PSFModel | None, sigma_px: float | None) -> PSFModel:
    if psf is not None:
        if sigma_px is not None:
            raise InputError("give the PSF as psf or as sigma_px, not both")
        return psf
    if sigma_px is None:
        raise InputError("give the PSF: psf=<PSFModel> or sigma_px for a Gaussian")
    return IntegratedGaussian(sigma_px=sigma_px)


def _slots(best, best_m, sigma, max_emitters, psf: PSFModel) -> list[dict[str, np.ndarray]]:
    n = best_m.numel()
    names = psf.fit_params()
    per = len(names)
    extra = list(psf.emitter_params)
    keys = ["x", "y", "photons", "background", "crlb_x", "crlb_y"]
    keys += extra + [f"crlb_{name}" for name in extra]
    out = [
        {k: np.full(n, np.nan) for k in keys}
        | {"sigma": sigma.numpy().copy(), "present": np.zeros(n, bool)}
        for _ in range(max_emitters)
    ]
    for m, (theta, jac, mu) in best.items():
        sel = torch.nonzero(best_m == m).squeeze(1)
        if sel.numel() == 0:
            continue
        sd = _crlb(jac[sel], mu[sel])
        th = theta[sel]
        s = sel.numpy()
        for k in range(m):
            slot = out[k]
            slot["x"][s] = th[:, per * k].numpy()
            slot["y"][s] = th[:, per * k + 1].numpy()
            slot["photons"][s] = th[:, per * k + per - 1].numpy()
            slot["background"][s] = th[:, per * m].numpy()
            slot["crlb_x"][s] = sd[:, per * k].numpy()
            slot["crlb_y"][s] = sd[:, per * k + 1].numpy()
            for i, name in enumerate(extra):
                slot[name][s] = th[:, per * k + 2 + i].numpy()
                slot[f"crlb_{name}"][s] = sd[:, per * k + 2 + i].numpy()
            slot["present"][s] = True
    return out


def default_box(sigma_px: float) -> int:
    """Odd region size covering ±2.5 σ (at least 5 pixels): 7 for σ 1.3 px."""
    return max(5, 2 * round(2.5 * sigma_px) + 1)


def fit(
    stack: np.ndarray,
    *,
    pixel_size_nm: float,
    psf_sigma_nm: float | None = None,
    psf: PSFModel | None = None,
    camera: Camera | None = None,
    min_photons: float | None = None,
    snr: float = 6.0,
    box: int | None = None,
    max_emitters: int = 3,
    passes: int = 2,
    refine: bool = True,
    iterations: int = 30,
    chunk: int = 20_000,
) -> pd.DataFrame:
    """Detect and localize single emitters in a (T, Y, X) stack.

    Parameters
    ----------
    stack : (T, Y, X) or (Y, X) frames, in ADU with ``camera``, else in photons.
    pixel_size_nm : camera pixel size referred to the sample.
    psf_sigma_nm : σ of the Gaussian PSF; None fits σ per emitter (starting at 130 nm).
    psf : any :class:`~abbe.simulate.psfmodel.PSFModel` (in pixels of this stack) instead of the
        Gaussian, with its shape held fixed; its ``width_px`` sets detection and region sizes.
    camera : calibration (offset, gains, sCMOS maps); None: the values are photons.
    min_photons : detection threshold in photons; None: ``snr`` times the noise.
    box : fit region edge (odd); default :func:`default_box`.
    max_emitters : up to this many emitters per region where one does not explain the data
        (overlapping emitters); 1 for plain single-emitter fitting.
    passes : detection rounds; each one after the first searches the data minus the emitters
        already fitted (1: a single round).
    refine : refit every emitter once more in the data minus all its neighbours' fitted
        images, which removes the pull of overlapping neighbours on its position.

    Returns
    -------
    pandas.DataFrame with :data:`LOC_COLUMNS`: positions in nm from the corner of the first
    pixel, frames from 1, photons and background (per pixel) in photons, the fitted σ, the
    Cramér–Rao standard deviations per axis and their mean ``uncertainty_nm``.
    """
    frames = np.asarray(stack)
    if frames.ndim == 2:
        frames = frames[None]
    if frames.ndim != 3 or frames.shape[0] == 0:
        raise InputError(f"localization needs (T, Y, X) frames, got shape {frames.shape}")
    if psf is not None:
        if psf_sigma_nm is not None:
            raise InputError("give psf_sigma_nm (a Gaussian) or psf, not both")
        fit_sigma, sigma_px = False, psf.width_px
    else:
        fit_sigma = psf_sigma_nm is None
        sigma_px = (psf_sigma_nm or 130.0) / pixel_size_nm
        psf = IntegratedGaussian(sigma_px=sigma_px)
    box = box or default_box(sigma_px)
    if min(frames.shape[1:]) < box:
        raise InputError(f"frames of {frames.shape[1:]} are smaller than the fit box {box}")
    e = to_electrons(frames, camera)
    min_e = None if min_photons is None else min_photons * e.qe
    filtered = band_pass(e.data, sigma_px)
    threshold = threshold_for(filtered, sigma_px, min_e, snr)
    gamma_map = np.broadcast_to(np.asarray(e.read_variance, np.float32), frames.shape[1:])
    rows: list[dict[str, np.ndarray]] = []
    fitted = np.zeros_like(e.data)
    for _ in range(passes):
        # Later passes look for emitters hidden by brighter neighbours: in the data minus the
        # emitters found so far (Holden et al. 2011; Babcock et al. 2012).
        source = e.data - fitted
        if rows:  # the first pass searches the data as filtered above
            filtered = band_pass(source, sigma_px)
        t, y, x = find_peaks(filtered, threshold)
        if len(t) == 0:
            break
        new = _fit_candidates(
            source,
            gamma_map,
            t,
            y,
            x,
            box=box,
            psf=psf,
            fit_sigma=fit_sigma,
            iterations=iterations,
            max_emitters=max_emitters,
            excess=e.excess,
            chunk=chunk,
        )
        if not len(new["t"]):
            break
        rows.append(new)
        fitted += _render_model(e.data.shape, new, psf)
    if not rows:
        return pd.DataFrame({c: np.zeros(0) for c in LOC_COLUMNS})
    r = {k: np.concatenate([row[k] for row in rows]) for k in rows[0]}
    keep = _unique(r["t"], r["x"], r["y"], r["dist"], 0.5 * sigma_px)
    r = {k: v[keep] for k, v in r.items()}
    if refine and len(r["t"]):
        r = _refine(e.data, gamma_map, r, psf=psf, box=box, iterations=iterations, chunk=chunk)
    f = math.sqrt(e.excess)
    a = pixel_size_nm
    crlb_x, crlb_y = r["crlb_x"] * a * f, r["crlb_y"] * a * f
    locs = pd.DataFrame(
        {
            "frame": r["t"] + 1,
            "x_nm": r["x"] * a,
            "y_nm": r["y"] * a,
            "photons": r["photons"] / e.qe,
            "background": r["background"] / e.qe,
            "sigma_nm": r["sigma"] * a,
            "uncertainty_nm": np.sqrt((crlb_x**2 + crlb_y**2) / 2),
            "crlb_x_nm": crlb_x,
            "crlb_y_nm": crlb_y,
        }
    )
    return locs.sort_values(["frame", "y_nm", "x_nm"], kind="stable").reset_index(drop=True)


def _fit_candidates(
    data: np.ndarray,
    gamma_map: np.ndarray,
    t: np.ndarray,
    y: np.ndarray,
    x: np.ndarray,
    *,
    box: int,
    psf: PSFModel,
    fit_sigma: bool,
    iterations: int,
    max_emitters: int,
    excess: float,
    chunk: int,
) -> dict[str, np.ndarray]:
    """Fit the regions around candidates (t, y, x); positions in pixels of the frame."""
    h, w = data.shape[1:]
    y0 = np.clip(y - box // 2, 0, h - box)
    x0 = np.clip(x - box // 2, 0, w - box)
    rows = []
    for start in range(0, len(t), chunk):
        sl = slice(start, start + chunk)
        rois = _gather(data, t[sl], y0[sl], x0[sl], box)
        gam = _gather(gamma_map[None], np.zeros_like(t[sl]), y0[sl], x0[sl], box)
        slots = fit_rois(
            rois,
            psf=psf,
            fit_sigma=fit_sigma,
            gamma=gam,
            iterations=iterations,
            max_emitters=max_emitters,
            excess=excess,
        )
        cy, cx = y[sl] - y0[sl] + 0.5, x[sl] - x0[sl] + 0.5
        for k, slot in enumerate(slots):
            dist = np.hypot(slot["x"] - cx, slot["y"] - cy)
            if k == 0:  # a lone fit that wandered off its candidate found a neighbour's emitter
                ok = slot["present"] & (dist <= 1.5)
            else:
                ok = slot["present"] & _within(slot, box)
            ok &= np.isfinite(slot["crlb_x"]) & (slot["photons"] > 1.0)
            rows.append(
                {
                    "t": t[sl][ok],
                    "x": x0[sl][ok] + slot["x"][ok],
                    "y": y0[sl][ok] + slot["y"][ok],
                    "dist": dist[ok],
                    **{
                        key: slot[key][ok]
                        for key in ("photons", "background", "sigma", "crlb_x", "crlb_y")
                    },
                }
            )
    keys = ("t", "x", "y", "dist", "photons", "background", "sigma", "crlb_x", "crlb_y")
    if not rows:
        return {k: np.zeros(0) for k in keys}
    return {k: np.concatenate([r[k] for r in rows]) for k in keys}


def _shape_of(psf: PSFModel, locs: dict[str, np.ndarray], sl: slice = slice(None)) -> dict:
    """Each emitter's own fitted shape, for the PSFs whose shape is the fitted σ."""
    return {"sigma_px": locs["sigma"][sl]} if "sigma_px" in psf.shape_params else {}


def _render_model(
    shape: tuple[int, int, int], locs: dict[str, np.ndarray], psf: PSFModel
) -> np.ndarray:
    """Expected photo-electrons of fitted emitters (no background) in a (T, Y, X) stack."""
    t_n, h, w = shape
    out = np.zeros(t_n * h * w, dtype=np.float64)
    t = locs["t"].astype(np.int64)
    own = _shape_of(psf, locs)
    # The support of nearly all emitters: one rare broad fit must not widen every window.
    r = psf.support_px(**{k: float(np.percentile(v, 99)) for k, v in own.items()})
    k = np.arange(-r, r + 1)
    iy = np.floor(locs["y"]).astype(np.int64)[:, None] + k[None, :]
    ix = np.floor(locs["x"]).astype(np.int64)[:, None] + k[None, :]
    edges = np.arange(-r, r + 2, dtype=np.float64)
    fy = locs["y"] - np.floor(locs["y"])
    fx = locs["x"] - np.floor(locs["x"])
    vals = psf.window(edges, fy, edges, fx, locs["photons"], **own)
    yy = np.broadcast_to(iy[:, :, None], vals.shape)
    xx = np.broadcast_to(ix[:, None, :], vals.shape)
    tt = np.broadcast_to(t[:, None, None], vals.shape)
    ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
    index = (tt[ok] * h + yy[ok]) * w + xx[ok]
    out += np.bincount(index, weights=vals[ok], minlength=out.size)
    return out.reshape(shape).astype(np.float32)


def _refine(
    data: np.ndarray,
    gamma_map: np.ndarray,
    r: dict[str, np.ndarray],
    *,
    psf: PSFModel,
    box: int,
    iterations: int,
    chunk: int,
) -> dict[str, np.ndarray]:
    """Refit each emitter alone in the data minus every other emitter's fitted image.

    Neighbours are modelled with their fitted photons and shape (σ), so what remains in a region
    is one emitter on the background (DAOSTORM-style neighbour subtraction, Holden et al.,
    Nat Methods 8:279 (2011)). Refits that move by more than a pixel are not trusted: the first
    fit stays.
    """
    h, w = data.shape[1:]
    residual = data - _render_model(data.shape, r, psf)
    t = r["t"].astype(np.int64)
    cy, cx = np.floor(r["y"]).astype(np.int64), np.floor(r["x"]).astype(np.int64)
    y0 = np.clip(cy - box // 2, 0, h - box)
    x0 = np.clip(cx - box // 2, 0, w - box)
    out = {k: v.copy() for k, v in r.items()}
    for start in range(0, len(t), chunk):
        sl = slice(start, start + chunk)
        own = _render_roi(r, sl, y0[sl], x0[sl], box, psf)
        rois = _gather(residual, t[sl], y0[sl], x0[sl], box) + own
        gam = _gather(gamma_map[None], np.zeros_like(t[sl]), y0[sl], x0[sl], box)
        sub_psf = psf
        if "sigma_px" in psf.shape_params:  # the chunk's median σ for every refit
            sub_psf = psf.replace(sigma_px=float(np.median(r["sigma"][sl])))
        extra = [r[name][sl] for name in psf.emitter_params]
        xy = [r["x"][sl] - x0[sl], r["y"][sl] - y0[sl]]
        init = np.stack([*xy, *extra, r["photons"][sl], r["background"][sl]], 1)
        (slot,) = fit_rois(rois, psf=sub_psf, gamma=gam, iterations=iterations, start=init)
        moved = np.hypot(slot["x"] - init[:, 0], slot["y"] - init[:, 1])
        ok = np.isfinite(slot["crlb_x"]) & (slot["photons"] > 1.0) & (moved <= 1.0)
        idx = np.arange(len(t))[sl][ok]
        out["x"][idx] = x0[sl][ok] + slot["x"][ok]
        out["y"][idx] = y0[sl][ok] + slot["y"][ok]
        for key in ("photons", "background", "crlb_x", "crlb_y"):
            out[key][idx] = slot[key][ok]
    return out


def _render_roi(
    r: dict[str, np.ndarray], sl: slice, y0: np.ndarray, x0: np.ndarray, box: int, psf: PSFModel
):
    """Each emitter's own fitted image on its (box × box) region: (n, box, box)."""
    edges = np.arange(box + 1, dtype=np.float64)
    img = psf.window(
        edges, r["y"][sl] - y0, edges, r["x"][sl] - x0, r["photons"][sl], **_shape_of(psf, r, sl)
    )
    return img.astype(np.float32)


def _within(slot: dict[str, np.ndarray], box: int) -> np.ndarray:
    return (slot["x"] > 0.5) & (slot["x"] < box - 0.5) & (slot["y"] > 0.5) & (slot["y"] < box - 0.5)


def _unique(
    t: np.ndarray, x: np.ndarray, y: np.ndarray, rank: np.ndarray, radius: float
) -> np.ndarray:
    """Keep one of each group of localizations of a frame closer than ``radius`` (pixels): the
    one found nearest its own candidate (several regions can fit the same emitter)."""
    from scipy.spatial import cKDTree

    if len(t) == 0:
        return np.zeros(0, bool)
    pts = np.column_stack([x, y, t.astype(np.float64) * 1e4])
    pairs = cKDTree(pts).query_pairs(radius, output_type="ndarray")
    keep = np.ones(len(t), bool)
    for i, j in pairs[np.argsort(np.minimum(rank[pairs[:, 0]], rank[pairs[:, 1]]))]:
        if keep[i] and keep[j]:
            keep[j if rank[i] <= rank[j] else i] = False
    return keep
