"""SMLM metrics of the localization challenge, and the localization precision limit.

Matching (Sage et al., Nat Methods 12:717 (2015); 16:387 (2019)): within each frame, pairs of a
localization and a true emitter closer than a tolerance (250 nm lateral) are accepted one-to-one,
greedily by increasing distance (or by the Hungarian algorithm). TP = pairs, FP = localizations
left over, FN = emitters left over. Jaccard = 100·TP/(TP+FP+FN); lateral RMSE over the pairs;
efficiency E = 100 − √((100 − J)² + α²·RMSE²) with α = 1 nm⁻¹.

The precision limit is Mortensen et al.'s (Nat Methods 7:377, 2010) for a pixelated Gaussian
with background, for MLE and least-squares fitting.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import integrate
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from abbe.errors import InputError


@dataclass(frozen=True)
class SMLMScore:
    """Challenge metrics of a set of localizations against the truth (all in %, nm)."""

    jaccard: float
    rmse_nm: float
    efficiency: float
    recall: float
    precision: float
    tp: int
    fp: int
    fn: int
    bias_x_nm: float
    bias_y_nm: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _columns(table: pd.DataFrame, name: str) -> pd.DataFrame:
    missing = {"frame", "x_nm", "y_nm"} - set(table.columns)
    if missing:
        raise InputError(f"{name} lacks columns {sorted(missing)} (need frame, x_nm, y_nm)")
    return table


def match(
    test: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    radius_nm: float = 250.0,
    method: str = "greedy",
) -> tuple[np.ndarray, np.ndarray]:
    """Pair localizations with true emitters of the same frame, one-to-one within ``radius_nm``.

    Returns
    -------
    (i_test, i_truth): row positions of the matched pairs.
    """
    _columns(test, "localizations")
    _columns(truth, "truth")
    if method not in ("greedy", "hungarian"):
        raise InputError(f"unknown matching {method!r}; choose greedy or hungarian")
    if len(test) == 0 or len(truth) == 0:
        return np.zeros(0, int), np.zeros(0, int)
    # Frames far apart in a third coordinate: one KD-tree query finds pairs within frames.
    sep = 10.0 * radius_nm
    a = np.column_stack([test["x_nm"], test["y_nm"], test["frame"].to_numpy(float) * sep])
    b = np.column_stack([truth["x_nm"], truth["y_nm"], truth["frame"].to_numpy(float) * sep])
    pairs = cKDTree(a).sparse_distance_matrix(cKDTree(b), radius_nm, output_type="ndarray")
    if len(pairs) == 0:
        return np.zeros(0, int), np.zeros(0, int)
    i, j, d = pairs["i"], pairs["j"], pairs["v"]
    if method == "greedy":
        return _greedy(i, j, d)
    return _hungarian(i, j, d, test["frame"].to_numpy()[i])


def _greedy(i, j, d):
    order = np.argsort(d, kind="stable")
    used_i, used_j = set(), set()
    out_i, out_j = [], []
    for k in order:
        if i[k] in used_i or j[k] in used_j:
            continue
        used_i.add(i[k])
        used_j.add(j[k])
        out_i.append(i[k])
        out_j.append(j[k])
    return np.array(out_i, int), np.array(out_j, int)


def _hungarian(i, j, d, frames):
    out_i, out_j = [], []
    for f in np.unique(frames):
        sel = frames == f
        ui, ii = np.unique(i[sel], return_inverse=True)
        uj, jj = np.unique(j[sel], return_inverse=True)
        cost = np.full((len(ui), len(uj)), 1e12)
        cost[ii, jj] = d[sel]
        r, c = linear_sum_assignment(cost)
        ok = cost[r, c] < 1e12
        out_i.extend(ui[r[ok]])
        out_j.extend(uj[c[ok]])
    return np.array(out_i, int), np.array(out_j, int)


def inside(table: pd.DataFrame, field_nm: tuple[float, float], border_nm: float) -> np.ndarray:
    """Rows at least ``border_nm`` from the edges of a (height, width) field."""
    h, w = field_nm
    x, y = table["x_nm"].to_numpy(), table["y_nm"].to_numpy()
    return (x >= border_nm) & (x <= w - border_nm) & (y >= border_nm) & (y <= h - border_nm)


def score(
    test: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    radius_nm: float = 250.0,
    method: str = "greedy",
    field_nm: tuple[float, float] | None = None,
    border_nm: float = 0.0,
    alpha: float = 1.0,
) -> SMLMScore:
    """Jaccard, lateral RMSE and efficiency of ``test`` against ``truth``.

    Parameters
    ----------
    field_nm, border_nm : with a (height, width) field, emitters and localizations closer than
        ``border_nm`` to its edge are left out (the challenge excludes a border).
    alpha : efficiency weight of the RMSE, per nm.
    """
    if field_nm is not None and border_nm > 0:
        test = test[inside(test, field_nm, border_nm)]
        truth = truth[inside(truth, field_nm, border_nm)]
    test = test.reset_index(drop=True)
    truth = truth.reset_index(drop=True)
    it, ig = match(test, truth, radius_nm=radius_nm, method=method)
    tp = len(it)
    fp, fn = len(test) - tp, len(truth) - tp
    jac = 100.0 * tp / max(tp + fp + fn, 1)
    if tp:
        dx = test["x_nm"].to_numpy()[it] - truth["x_nm"].to_numpy()[ig]
        dy = test["y_nm"].to_numpy()[it] - truth["y_nm"].to_numpy()[ig]
        rmse = float(np.sqrt(np.mean(dx**2 + dy**2)))
        bx, by = float(dx.mean()), float(dy.mean())
    else:
        rmse, bx, by = math.nan, math.nan, math.nan
    eff = efficiency(jac, rmse, alpha) if tp else 0.0
    return SMLMScore(
        jaccard=jac,
        rmse_nm=rmse,
        efficiency=eff,
        recall=100.0 * tp / max(tp + fn, 1),
        precision=100.0 * tp / max(tp + fp, 1),
        tp=tp,
        fp=fp,
        fn=fn,
        bias_x_nm=bx,
        bias_y_nm=by,
    )


def efficiency(jaccard: float, rmse_nm: float, alpha: float = 1.0) -> float:
    """Challenge efficiency E = 100 − √((100 − J)² + α²·RMSE²) (2D)."""
    return 100.0 - math.sqrt((100.0 - jaccard) ** 2 + (alpha * rmse_nm) ** 2)


def mortensen_variance(
    photons: float,
    background: float,
    *,
    sigma_nm: float,
    pixel_size_nm: float,
    excess: float = 1.0,
    method: str = "mle",
) -> float:
    """Variance (nm²) of one coordinate of a localization at the precision limit.

    Parameters
    ----------
    photons : detected photons N of the emitter.
    background : background photons per pixel b (add an sCMOS read-noise variance in e⁻²).
    sigma_nm : PSF σ; the pixel adds a²/12 to σ².
    excess : F, 2 for a high-gain EMCCD, else 1.
    method : ``mle`` (the MLE bound) or ``lsq`` (least squares).
    """
    a = pixel_size_nm
    sa2 = sigma_nm**2 + a**2 / 12
    if photons <= 0:
        return math.inf
    if method == "lsq":
        return excess * sa2 / photons * (16 / 9 + 8 * math.pi * sa2 * background / (photons * a**2))
    if method != "mle":
        raise InputError(f"unknown method {method!r}; choose mle or lsq")
    tau = 2 * math.pi * sa2 * background / (photons * a**2)
    if tau <= 0:
        return excess * sa2 / photons
    value, _ = integrate.quad(lambda t: math.log(t) / (1 + t / tau), 0, 1, limit=200)
    return excess * sa2 / photons / (1 + value)


def crlb_nm(
    photons: np.ndarray,
    background: np.ndarray,
    *,
    sigma_nm: float,
    pixel_size_nm: float,
    excess: float = 1.0,
) -> np.ndarray:
    """Lateral precision limit √(2·Var_x) (nm) for each (photons, background) pair."""
    ph = np.atleast_1d(np.asarray(photons, np.float64))
    bg = np.broadcast_to(np.asarray(background, np.float64), ph.shape)
    var = [
        mortensen_variance(n, b, sigma_nm=sigma_nm, pixel_size_nm=pixel_size_nm, excess=excess)
        for n, b in zip(ph, bg, strict=True)
    ]
    return np.sqrt(2 * np.asarray(var))
