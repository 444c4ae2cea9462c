"""PSF models: one object per point spread function, for simulation, fitting and rendering.

A :class:`PSFModel` gives, for emitters with parameters ``x``, ``y`` (pixels), ``z`` (nm; 0 for a
2D model), ``photons`` and the model's own shape parameters (σ for a Gaussian), the expected
photons in each camera pixel, integrated over the pixel, and the derivatives of those values
with respect to every parameter. The background is not part of the model: it is flat and added
by the caller (``μ = b + N·h``), so ``∂μ/∂b = 1`` for every model.

Two backends share one object:

* :meth:`PSFModel.evaluate` works on ``torch`` tensors (float64 in the fitter) and returns the
  values and their derivatives for a batch of emitters, each on its own region: this is what the
  Levenberg–Marquardt fitter of :mod:`abbe.localize.fit` and the Cramér–Rao bound use.
* :meth:`PSFModel.window` and :meth:`PSFModel.render` work on ``numpy`` arrays and give values
  only: the simulators and renderers use them. :meth:`PSFModel.expected` is the numpy view of
  :meth:`evaluate` (values and derivatives), for analysis and tests.

Coordinates: a pixel ``j`` spans ``[j, j + 1)``, so its centre is at ``j + ½``; the origin is
the corner of the region or frame being evaluated.

References
----------
Smith, Joseph, Rieger & Lidke, Nat Methods 7:373 (2010) (pixel-integrated Gaussian, its
derivatives, Poisson MLE and the Cramér–Rao bound).
Born & Wolf, *Principles of Optics*, 7th ed., §8.5 (Airy pattern).
Zhang, Zerubia & Olivo-Marin, Appl. Opt. 46:1819 (2007) (Gaussian approximation, σ = 0.21 λ/NA).
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from scipy import special

from abbe.errors import InputError

if TYPE_CHECKING:
    import torch

_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)


def gaussian_sigma_nm(na: float, wavelength_nm: float) -> float:
    """Standard deviation of the Gaussian that best fits the widefield Airy PSF: 0.21·λ/NA.

    Zhang et al., Appl. Opt. 46:1819 (2007), paraxial widefield fit.
    """
    return 0.21 * wavelength_nm / na


def _check_optics(na: float, wavelength_nm: float, n_immersion: float) -> None:
    if not (0 < na <= n_immersion):
        raise InputError(f"NA must be in (0, n_immersion={n_immersion}], got {na}")
    if not wavelength_nm > 0:
        raise InputError(f"wavelength must be positive, got {wavelength_nm} nm")


@dataclass(frozen=True)
class PSFValues:
    """What :meth:`PSFModel.evaluate` returns.

    Attributes
    ----------
    image : (n, h, w) tensor, ``photons · h`` on each region (no background).
    grad : derivative of ``image`` with respect to each requested parameter, (n, h, w) each.
    """

    image: torch.Tensor
    grad: dict[str, torch.Tensor]


class PSFModel(ABC):
    """A pixel-integrated PSF: expected photons per pixel and their derivatives.

    Subclasses fill :meth:`evaluate` (torch, values and derivatives), :meth:`window` (numpy,
    values), :attr:`width_px` and :meth:`support_px`; :meth:`render`, :meth:`expected` and
    :meth:`replace` come with the base class.
    """

    #: Per-emitter parameters the fitter fits besides ``x``, ``y`` and ``photons`` (``("z",)``
    #: for a 3D model). They are laid out between ``y`` and ``photons``.
    emitter_params: ClassVar[tuple[str, ...]] = ()
    #: Region-wide shape parameters the fitter may fit (``("sigma_px",)`` for the Gaussian);
    #: each is also an attribute holding the model's value.
    shape_params: ClassVar[tuple[str, ...]] = ()

    @property
    @abstractmethod
    def width_px(self) -> float:
        """σ of the Gaussian closest to this PSF, in pixels (detection filters, region sizes)."""

    @abstractmethod
    def support_px(self, **shape: float) -> int:
        """Half-width (pixels) of the square around the emitter's pixel that holds its light."""

    @abstractmethod
    def evaluate(
        self,
        params: Mapping[str, torch.Tensor],
        shape: tuple[int, int],
        *,
        wrt: Sequence[str] = (),
    ) -> PSFValues:
        """Expected photons of one emitter per region and their derivatives (torch).

        Parameters
        ----------
        params : (n,) tensors ``x``, ``y`` (pixels from the region's corner), ``photons`` and
            optionally ``z`` (nm, default 0) and shape parameters (default the model's values).
        shape : (h, w) of every region.
        wrt : names of the parameters to differentiate with respect to.
        """

    @abstractmethod
    def window(
        self,
        y_edges: np.ndarray,
        y: np.ndarray,
        x_edges: np.ndarray,
        x: np.ndarray,
        photons: np.ndarray | None = None,
        **shape: Any,
    ) -> np.ndarray:
        """Expected photons of each emitter on its own pixel grid (numpy): (n, h, w).

        Parameters
        ----------
        y_edges, x_edges : pixel edges, (h + 1,) shared or (n, h + 1) per emitter, in the same
            frame as ``y`` and ``x``; edges are whole numbers (pixels ``[j, j + 1)``).
        y, x : (n,) emitter positions.
        photons : (n,) photons per emitter; None for unit mass.
        shape : shape parameters, scalars or (n,) arrays (default the model's values).
        """

    def render(
        self,
        x: np.ndarray,
        y: np.ndarray,
        photons: np.ndarray,
        shape: tuple[int, int],
        **params: Any,
    ) -> np.ndarray:
        """Expected photons per pixel of a (Y, X) frame from emitters at (x, y): float64.

        Each emitter is drawn on the square of :meth:`support_px` pixels around its own pixel.
        """
        h, w = shape
        if len(x) == 0:
            return np.zeros(shape, dtype=np.float64)
        radius = self.support_px()
        k = np.arange(-radius, radius + 1)
        iy = np.floor(np.asarray(y)).astype(np.int64)[:, None] + k[None, :]
        ix = np.floor(np.asarray(x)).astype(np.int64)[:, None] + k[None, :]
        y_edges = np.concatenate([iy, iy[:, -1:] + 1], axis=1).astype(np.float64)
        x_edges = np.concatenate([ix, ix[:, -1:] + 1], axis=1).astype(np.float64)
        vals = self.window(y_edges, y, x_edges, x, photons, **params)
        yy = np.broadcast_to(iy[:, :, None], vals.shape)
        xx = np.broadcast_to(ix[:, None, :], vals.shape)
        ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        out = np.zeros(shape, dtype=np.float64)
        np.add.at(out, (yy[ok], xx[ok]), vals[ok])
        return out

    def expected(
        self,
        *,
        x: np.ndarray | float,
        y: np.ndarray | float,
        photons: np.ndarray | float,
        background: np.ndarray | float,
        shape: tuple[int, int],
        z: np.ndarray | float = 0.0,
        wrt: Sequence[str] | None = None,
        **params: Any,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Numpy view of :meth:`evaluate` with a flat background: ``μ = b + N·h``.

        Returns
        -------
        μ of shape (n, h, w) and its derivatives by parameter name (``background`` included);
        ``wrt`` defaults to x, y, the emitter parameters, photons, background.
        """
        import torch

        n = np.broadcast(x, y, photons, background, z).shape or (1,)
        as_t = lambda v: torch.as_tensor(np.broadcast_to(np.asarray(v, np.float64), n).copy())  # noqa: E731
        p = {"x": as_t(x), "y": as_t(y), "z": as_t(z), "photons": as_t(photons)}
        p |= {k: as_t(v) for k, v in params.items()}
        wrt = list(wrt) if wrt is not None else [*self.fit_params(), "background"]
        out = self.evaluate(p, shape, wrt=[k for k in wrt if k != "background"])
        b = as_t(background)[:, None, None]
        mu = b + out.image
        grad = {k: v.numpy() for k, v in out.grad.items()}
        if "background" in wrt:
            grad["background"] = np.ones(mu.shape)
        return mu.numpy(), {k: grad[k] for k in wrt}

    def fit_params(self) -> list[str]:
        """Per-emitter parameter names in the fitter's order: x, y, emitter parameters, photons."""
        return ["x", "y", *self.emitter_params, "photons"]

    def bounds(self, name: str, box: int) -> tuple[float, float]:
        """Range the fitter keeps parameter ``name`` in, for a region of ``box`` pixels."""
        return (-math.inf, math.inf)

    def replace(self, **changes: float) -> PSFModel:
        """A copy with some shape parameters changed (e.g. σ set to a fitted median)."""
        new = copy.copy(self)
        for k, v in changes.items():
            if k not in self.shape_params:
                raise InputError(f"{type(self).__name__} has no shape parameter {k!r}")
            object.__setattr__(new, k, float(v))
        return new


def integrated_gaussian_1d(
    edges: np.ndarray, centres: np.ndarray, sigma: float | np.ndarray
) -> np.ndarray:
    """Fraction of a unit 1D Gaussian in each pixel between consecutive ``edges``: (n, k).

    ``½[erf((e_{j+1} − c)/(√2 σ)) − erf((e_j − c)/(√2 σ))]`` (Smith et al. 2010, eq. 3).

    Parameters
    ----------
    edges : (k + 1,) shared or (n, k + 1) per-emitter pixel edges, in the frame of ``centres``.
    centres : (n,) positions.
    sigma : σ, scalar or (n,), in the same unit.
    """
    s = np.asarray(sigma, dtype=np.float64).reshape(-1, 1) * _SQRT2
    d = np.atleast_2d(edges) - np.asarray(centres, np.float64)[:, None]
    return np.diff(special.erf(d / s), axis=1) / 2


def integrated_gaussian_terms(c: torch.Tensor, s: torch.Tensor, size: int, with_sigma: bool):
    """Torch: :func:`integrated_gaussian_1d` on pixels ``[j, j + 1)``, j < ``size``, for centres
    ``c`` and widths ``s`` (n,), with its derivatives in c and (if ``with_sigma``, else None) σ:
    three (n, size) tensors (Smith et al. 2010, eqs. 3–5). The building block of Gaussian-based
    models (σ from z for an astigmatic PSF)."""
    import torch

    edges = torch.arange(size + 1, dtype=c.dtype)
    d = edges[None, :] - c[:, None]
    sig = s[:, None]
    cdf = torch.erf(d / (_SQRT2 * sig))
    g = torch.exp(-(d**2) / (2 * sig**2))
    e = 0.5 * (cdf[:, 1:] - cdf[:, :-1])
    de_dc = (g[:, :-1] - g[:, 1:]) / (_SQRT2PI * sig)
    if not with_sigma:
        return e, de_dc, None
    dg = d * g
    de_ds = (dg[:, :-1] - dg[:, 1:]) / (_SQRT2PI * sig**2)
    return e, de_dc, de_ds


class IntegratedGaussian(PSFModel):
    """2D Gaussian PSF of standard deviation σ, integrated exactly over each pixel.

    ``h = E_x·E_y`` with ``E_x = ½[erf((j + 1 − x)/(√2σ)) − erf((j − x)/(√2σ))]``; all
    derivatives (x, y, σ) are analytic (Smith et al., Nat Methods 7:373 (2010)). ``z`` is
    accepted and ignored (a 2D model).

    Parameters
    ----------
    sigma_px : σ in pixels; or give ``sigma_nm`` and ``pixel_size_nm``.
    """

    shape_params: ClassVar[tuple[str, ...]] = ("sigma_px",)

    def __init__(
        self,
        sigma_px: float | None = None,
        *,
        sigma_nm: float | None = None,
        pixel_size_nm: float | None = None,
    ) -> None:
        if sigma_px is None:
            if sigma_nm is None or pixel_size_nm is None:
                raise InputError("give sigma_px, or sigma_nm with pixel_size_nm")
            sigma_px = sigma_nm / pixel_size_nm
        if not sigma_px > 0:
            raise InputError(f"the Gaussian PSF's σ must be positive, got {sigma_px} px")
        self.sigma_px = float(sigma_px)

    def __repr__(self) -> str:
        return f"IntegratedGaussian(sigma_px={self.sigma_px!r})"

    @property
    def width_px(self) -> float:
        return self.sigma_px

    def support_px(self, *, sigma_px: float | None = None) -> int:
        """4σ, rounded up, plus one pixel."""
        return math.ceil(4 * float(sigma_px or self.sigma_px)) + 1

    def bounds(self, name: str, box: int) -> tuple[float, float]:
        return (0.3, box / 2) if name == "sigma_px" else super().bounds(name, box)

    def evaluate(self, params, shape, *, wrt=()):
        import torch

        x, y, n = params["x"], params["y"], params["photons"]
        s = params.get("sigma_px")
        if s is None:
            s = torch.full_like(x, self.sigma_px)
        with_sigma = "sigma_px" in wrt
        ex, dex, dsx = integrated_gaussian_terms(x, s, shape[1], with_sigma)
        ey, dey, dsy = integrated_gaussian_terms(y, s, shape[0], with_sigma)
        unit = ey[:, :, None] * ex[:, None, :]
        nn = n[:, None, None]
        grad: dict[str, torch.Tensor] = {}
        for name in wrt:
            if name == "x":
                grad[name] = nn * ey[:, :, None] * dex[:, None, :]
            elif name == "y":
                grad[name] = nn * dey[:, :, None] * ex[:, None, :]
            elif name == "photons":
                grad[name] = unit
            elif name == "sigma_px":
                d_sigma = dsy[:, :, None] * ex[:, None, :] + ey[:, :, None] * dsx[:, None, :]
                grad[name] = nn * d_sigma
            elif name == "z":
                grad[name] = torch.zeros_like(unit)
            else:
                raise InputError(f"IntegratedGaussian has no parameter {name!r}")
        return PSFValues(nn * unit, grad)

    def window(self, y_edges, y, x_edges, x, photons=None, *, sigma_px=None):
        s = self.sigma_px if sigma_px is None else sigma_px
        wy = integrated_gaussian_1d(y_edges, y, s)
        wx = integrated_gaussian_1d(x_edges, x, s)
        if photons is None:
            return wy[:, :, None] * wx[:, None, :]
        return np.asarray(photons)[:, None, None] * wy[:, :, None] * wx[:, None, :]

    def render(self, x, y, photons, shape, *, sigma_px=None):
        """Separable: the whole frame at once, ``Σₙ Nₙ·E_y,n ⊗ E_x,n``."""
        h, w = shape
        if len(x) == 0:
            return np.zeros(shape, dtype=np.float64)
        s = self.sigma_px if sigma_px is None else sigma_px
        ey = integrated_gaussian_1d(np.arange(h + 1, dtype=np.float64), y, s)
        ex = integrated_gaussian_1d(np.arange(w + 1, dtype=np.float64), x, s)
        return np.einsum("n,ny,nx->yx", np.asarray(photons, np.float64), ey, ex)

    def kernel(self, size: int, *, center: float = 0.0) -> np.ndarray:
        """Odd ``size`` × ``size`` kernel with the emitter ``center`` pixels from the middle
        along both axes, normalized to unit sum (float32)."""
        edges = np.arange(size + 1) - size / 2
        profile = integrated_gaussian_1d(edges, np.array([center]), self.sigma_px)
        psf = profile[0][:, None] * profile[0][None, :]
        return (psf / psf.sum()).astype(np.float32)


class AiryPSF(PSFModel):
    """In-focus widefield (Airy) PSF ``(2 J1(v)/v)²``, v = 2π·NA·r/λ, integrated over pixels.

    The pattern is integrated over each pixel on ``oversample`` × ``oversample`` sub-pixel
    samples and normalized to unit sum over the square of ±``support_px`` pixels around the
    emitter's pixel (default ±4 λ/NA): an emitter puts all its photons there. numpy uses scipy's
    J1, torch ``torch.special.bessel_j1``, which differs from it by up to 5·10⁻⁷ (near v = 5):
    the two backends agree to a few parts in a million.
    Derivatives in x and y are **numerical** (central differences of 10⁻⁴ px, with the support
    square held in place), the derivative in photons is exact; ``z`` is ignored (in focus).
    Fitting with it is slow (every evaluation samples the whole support square): it is meant for
    checks and simulation; the Gaussian is the fitting model.

    Parameters
    ----------
    na, wavelength_nm, n_immersion : numerical aperture, emission wavelength, immersion index.
    pixel_size_nm : pixel size (the model works in pixels).
    oversample : sub-samples per pixel edge.
    support_px : half-width of the normalization square; default ⌈4·λ/NA / pixel⌉.
    """

    def __init__(
        self,
        *,
        na: float,
        wavelength_nm: float,
        pixel_size_nm: float,
        n_immersion: float = 1.515,
        oversample: int = 5,
        support_px: int | None = None,
    ) -> None:
        _check_optics(na, wavelength_nm, n_immersion)
        if not pixel_size_nm > 0:
            raise InputError(f"pixel size must be positive, got {pixel_size_nm} nm")
        if oversample < 1:
            raise InputError(f"oversample must be at least 1, got {oversample}")
        self.na, self.wavelength_nm, self.n_immersion = na, wavelength_nm, n_immersion
        self.pixel_size_nm, self.oversample = pixel_size_nm, int(oversample)
        self._support = (
            math.ceil(4 * wavelength_nm / na / pixel_size_nm) if support_px is None else support_px
        )

    def __repr__(self) -> str:
        return (
            f"AiryPSF(na={self.na!r}, wavelength_nm={self.wavelength_nm!r}, "
            f"pixel_size_nm={self.pixel_size_nm!r}, oversample={self.oversample})"
        )

    @property
    def width_px(self) -> float:
        return gaussian_sigma_nm(self.na, self.wavelength_nm) / self.pixel_size_nm

    def support_px(self) -> int:
        return self._support

    def intensity(self, r_nm: np.ndarray) -> np.ndarray:
        """``(2 J1(v)/v)²`` at radii ``r_nm`` (1 at the centre)."""
        v = 2 * np.pi * self.na * r_nm / self.wavelength_nm
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(v > 1e-9, 2 * special.j1(v) / v, 1.0) ** 2

    def _support_patch(self, x: float, y: float) -> tuple[np.ndarray, int, int]:
        """Unnormalized pixel sums on the support square; returns it and its corner (i0, j0)."""
        radius, sub = self._support, self.oversample
        offsets = (np.arange(sub) + 0.5) / sub
        j0, i0 = math.floor(x) - radius, math.floor(y) - radius
        k = 2 * radius + 1
        jj = np.arange(j0, j0 + k)
        ii = np.arange(i0, i0 + k)
        sx = (jj[:, None] + offsets[None, :]).ravel() - x
        sy = (ii[:, None] + offsets[None, :]).ravel() - y
        r = np.hypot(sy[:, None], sx[None, :]) * self.pixel_size_nm
        patch = self.intensity(r).reshape(k, sub, k, sub).sum(axis=(1, 3))
        return patch, i0, j0

    def window(self, y_edges, y, x_edges, x, photons=None):
        n = len(x)
        y_edges = np.broadcast_to(np.atleast_2d(y_edges), (n, np.shape(y_edges)[-1]))
        x_edges = np.broadcast_to(np.atleast_2d(x_edges), (n, np.shape(x_edges)[-1]))
        out = np.zeros((n, y_edges.shape[1] - 1, x_edges.shape[1] - 1))
        k = 2 * self._support + 1
        for e in range(n):
            patch, i0, j0 = self._support_patch(float(x[e]), float(y[e]))
            patch *= (1.0 if photons is None else photons[e]) / patch.sum()
            ii = y_edges[e, :-1].astype(np.int64) - i0
            jj = x_edges[e, :-1].astype(np.int64) - j0
            oi, oj = (ii >= 0) & (ii < k), (jj >= 0) & (jj < k)
            out[e][np.ix_(oi, oj)] = patch[np.ix_(ii[oi], jj[oj])]
        return out

    def kernel(self, size: int, *, oversample: int | None = None) -> np.ndarray:
        """Odd ``size`` × ``size`` kernel centred on the middle pixel, integrated on a symmetric
        sub-pixel grid and normalized to unit sum over the kernel (float32)."""
        sub = self.oversample if oversample is None else oversample
        r = _subpixel_radii(size, self.pixel_size_nm, sub)
        return _bin_and_normalize(self.intensity(r), size, sub)

    def evaluate(self, params, shape, *, wrt=()):
        import torch

        x, y, n = params["x"], params["y"], params["photons"]
        # The support square stays where the emitter's pixel is, also for the shifted samples.
        j0 = torch.floor(x) - self._support
        i0 = torch.floor(y) - self._support
        unit = self._unit_torch(x, y, i0, j0, shape)
        nn = n[:, None, None]
        grad: dict[str, torch.Tensor] = {}
        step = 1e-4
        for name in wrt:
            if name in ("x", "y"):
                dx = step if name == "x" else 0.0
                dy = step if name == "y" else 0.0
                hi = self._unit_torch(x + dx, y + dy, i0, j0, shape)
                lo = self._unit_torch(x - dx, y - dy, i0, j0, shape)
                grad[name] = nn * (hi - lo) / (2 * step)
            elif name == "photons":
                grad[name] = unit
            elif name == "z":
                grad[name] = torch.zeros_like(unit)
            else:
                raise InputError(f"AiryPSF has no parameter {name!r}")
        return PSFValues(nn * unit, grad)

    def _unit_torch(self, x, y, i0, j0, shape, chunk: int = 128):
        import torch

        sub, k = self.oversample, 2 * self._support + 1
        offsets = (torch.arange(sub, dtype=x.dtype) + 0.5) / sub
        grid = (torch.arange(k, dtype=x.dtype)[:, None] + offsets[None, :]).reshape(-1)
        h, w = shape
        out = []
        for s in range(0, x.shape[0], chunk):
            sl = slice(s, s + chunk)
            sx = (j0[sl, None] + grid[None, :]) - x[sl, None]
            sy = (i0[sl, None] + grid[None, :]) - y[sl, None]
            r = torch.hypot(sy[:, :, None], sx[:, None, :]) * self.pixel_size_nm
            v = 2 * math.pi * self.na * r / self.wavelength_nm
            safe = torch.where(v > 1e-9, v, torch.ones_like(v))
            amp = torch.where(v > 1e-9, 2 * torch.special.bessel_j1(safe) / safe, 1.0) ** 2
            patch = amp.reshape(-1, k, sub, k, sub).sum(dim=(2, 4))
            patch = patch / patch.sum(dim=(1, 2), keepdim=True)
            # Region pixel (i, j) is support pixel (i − i0, j − j0); outside the support: 0.
            ii = torch.arange(h, dtype=x.dtype)[None, :] - i0[sl, None]
            jj = torch.arange(w, dtype=x.dtype)[None, :] - j0[sl, None]
            oi, oj = (ii >= 0) & (ii < k), (jj >= 0) & (jj < k)
            ii = ii.clamp(0, k - 1).long()
            jj = jj.clamp(0, k - 1).long()
            rows = torch.gather(patch, 1, ii[:, :, None].expand(-1, h, k))
            vals = torch.gather(rows, 2, jj[:, None, :].expand(-1, h, w))
            out.append(vals * (oi[:, :, None] & oj[:, None, :]))
        return torch.cat(out) if out else torch.zeros((0, h, w), dtype=x.dtype)


def crlb_from_jacobian(jac: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """Cramér–Rao standard deviations (n, P) from the Jacobian (n, P, K) and μ (n, …) of a
    Poisson model: the square roots of the diagonal of the inverse Fisher information
    ``Iᵢⱼ = Σₖ ∂ᵢμₖ ∂ⱼμₖ / μₖ`` (Smith et al. 2010, eq. 9)."""
    import torch

    n, p, _ = jac.shape
    fisher = torch.einsum("npk,nqk->npq", jac / mu.reshape(n, 1, -1), jac)
    eye = torch.eye(p, dtype=torch.float64)
    cov = torch.linalg.solve(fisher + 1e-12 * eye, eye.expand(n, -1, -1))
    return torch.sqrt(torch.clamp(torch.diagonal(cov, dim1=1, dim2=2), min=0.0))


def crlb(
    psf: PSFModel,
    *,
    x: np.ndarray | float,
    y: np.ndarray | float,
    photons: np.ndarray | float,
    background: np.ndarray | float,
    shape: tuple[int, int],
    z: np.ndarray | float = 0.0,
    fit_shape: bool = False,
    excess: float = 1.0,
) -> dict[str, np.ndarray]:
    """Cramér–Rao lower bound of each fitted parameter for emitters on ``shape`` regions.

    The parameters are those the fitter estimates: x, y, the model's emitter parameters,
    photons, background and, with ``fit_shape``, its shape parameters. ``excess`` (F², 2 for an
    EMCCD) scales the variances (Mortensen et al., Nat Methods 7:377 (2010)).

    Returns
    -------
    Standard deviations by parameter name, (n,) each, in the parameters' units.
    """
    import torch

    names = psf.fit_params() + ["background"] + (list(psf.shape_params) if fit_shape else [])
    mu, grad = psf.expected(
        x=x, y=y, z=z, photons=photons, background=background, shape=shape, wrt=names
    )
    n = mu.shape[0]
    jac = torch.as_tensor(np.stack([grad[k].reshape(n, -1) for k in names], axis=1))
    sd = crlb_from_jacobian(jac, torch.as_tensor(mu)).numpy() * math.sqrt(excess)
    return {k: sd[:, i] for i, k in enumerate(names)}


def _subpixel_radii(size: int, pixel_size_nm: float, oversample: int) -> np.ndarray:
    if size % 2 == 0:
        raise InputError(f"PSF size must be odd so that it has a centre pixel, got {size}")
    if oversample < 1 or oversample % 2 == 0:
        raise InputError(f"oversample must be a positive odd number, got {oversample}")
    n = size * oversample
    coords = (np.arange(n) - (n - 1) / 2) * (pixel_size_nm / oversample)
    return np.hypot(*np.meshgrid(coords, coords, indexing="ij"))


def _bin(values: np.ndarray, size: int, oversample: int) -> np.ndarray:
    return values.reshape(size, oversample, size, oversample).mean(axis=(1, 3))


def _bin_and_normalize(values: np.ndarray, size: int, oversample: int) -> np.ndarray:
    psf = _bin(values, size, oversample)
    return (psf / psf.sum()).astype(np.float32)
