"""Estimating a Poisson–Gaussian noise model from repeated captures of the same field.

For data ``x = α·Poisson(λ) + μ + N(0, σ²)`` the variance across captures is linear in the mean:
``Var = α·(mean − μ) + σ² = α·mean + c``. A robust fit over mean-binned pixels gives the gain α
and the intercept c, which is all the generalized Anscombe transform needs (it depends on σ and μ
only through ``σ² − α·μ = c``).

Foi et al., "Practical Poissonian-Gaussian noise modeling and fitting for single-image raw-data",
IEEE TIP 17:1737 (2008) (the mean–variance relation); Mäkitalo & Foi (2013) (its use with GAT).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from abbe.errors import InputError


@dataclass(frozen=True)
class NoiseModel:
    """Variance = ``gain``·mean + ``intercept`` (units of the data)."""

    gain: float
    intercept: float

    def anscombe_parameters(self) -> dict[str, float]:
        """Keyword arguments for :func:`abbe.restore.classical.anscombe` and its inverse."""
        if self.intercept >= 0:
            return {"gain": self.gain, "offset": 0.0, "read_noise": float(np.sqrt(self.intercept))}
        return {"gain": self.gain, "offset": -self.intercept / self.gain, "read_noise": 0.0}


def estimate_noise_model(
    frames: np.ndarray, *, bins: int = 40, saturation: float | None = None
) -> NoiseModel:
    """Fit ``Var = gain·mean + intercept`` from captures ``(N, Y, X)`` of one still field.

    Pixels are binned by their mean over the even captures; each bin's mean and variance over the
    odd captures enter a weighted least-squares line. Pixels that reach ``saturation`` (default
    the data's maximum value) in any capture are left out because clipping lowers their variance.
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 3 or frames.shape[0] < 2:
        raise InputError(f"need at least two captures (N, Y, X), got shape {frames.shape}")
    if frames.shape[0] < 4:
        raise InputError(f"need at least four captures to fit a noise model, got {frames.shape[0]}")
    # Bin by the mean of half the captures, measure mean and variance on the other half:
    # binning on the same noisy means that are then regressed would bias the slope low.
    rank = frames[0::2].mean(axis=0).ravel()
    mean = frames[1::2].mean(axis=0).ravel()
    var = frames[1::2].var(axis=0, ddof=1).ravel()
    top = frames.max() if saturation is None else saturation
    keep = frames.max(axis=0).ravel() < top
    rank, mean, var = rank[keep], mean[keep], var[keep]
    edges = np.unique(np.quantile(rank, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, rank, side="right") - 1, 0, len(edges) - 2)
    xs, ys, ws = [], [], []
    for b in range(len(edges) - 1):
        sel = which == b
        if sel.sum() >= 20:
            xs.append(mean[sel].mean())
            ys.append(var[sel].mean())
            ws.append(np.sqrt(sel.sum()))
    if len(xs) < 3:
        raise InputError("too few distinct intensity levels to fit a noise model")
    gain, intercept = np.polyfit(xs, ys, 1, w=ws)
    if gain <= 0:
        raise InputError("variance does not grow with the mean: not Poisson-like data")
    return NoiseModel(gain=float(gain), intercept=float(intercept))
