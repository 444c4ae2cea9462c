"""Image-quality metrics against a ground truth: PSNR, SSIM, MS-SSIM and NRMSE.

Definitions coincide with scikit-image's ``peak_signal_noise_ratio``, ``structural_similarity`` and
``normalized_root_mse`` (checked to 1e-6 in the tests); computations run in float64. An optional
normalization (percentiles of the truth, then the affine fit of the prediction that minimizes the
squared error, as CSBDeep does) lets methods with different intensity scales compare fairly.

References
----------
Wang, Bovik, Sheikh & Simoncelli, IEEE TIP 13:600 (2004) (SSIM).
Wang, Simoncelli & Bovik, Asilomar 2003 (MS-SSIM).
Weigert et al., Nat Methods 15:1090 (2018) (normalized comparison of restorations).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

from abbe.errors import AbbeWarning, InputError

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

#: How :func:`evaluate` compared the intensities, as written in outputs (``normalization``):
#: as they are, or after :func:`normalize_pair` (the truth's 0.1 and 99.9 percentiles mapped to
#: 0 and 1, the result affine-fitted to it, as CSBDeep does).
RAW = "none"
NORMALIZED = "percentile-affine"

#: Beyond these, two images are not on one intensity scale: the result's gain against the truth
#: (least-squares slope of result on truth) outside [1/3, 3], or its level at the truth's median
#: off by more than a quarter of the truth's range. Noisy images and blurred restorations in the
#: truth's units stay well inside (slopes 0.68–1.01, level shifts under 0.05 of the range,
#: measured on simulated widefield images of 2–100 photons); a camera's ADU against photons
#: falls far outside (slope 1.6, shift 1.3 ranges for sCMOS, 2.0 and 1.3 for EMCCD).
MAX_GAIN = 3.0
MAX_LEVEL_SHIFT = 0.25


def _pair(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if p.shape != t.shape:
        raise InputError(f"prediction shape {p.shape} differs from truth shape {t.shape}")
    if p.size == 0:
        raise InputError("cannot compare empty images")
    return p, t


def _data_range(truth: np.ndarray, data_range: float | None) -> float:
    if data_range is not None:
        return float(data_range)
    rng = float(truth.max() - truth.min())
    if rng <= 0:
        raise InputError("the truth is constant: give data_range explicitly")
    return rng


def percentile_normalize(
    x: np.ndarray, low: float = 0.1, high: float = 99.9, *, eps: float = 1e-20
) -> np.ndarray:
    """Map the ``low`` and ``high`` percentiles of ``x`` to 0 and 1 (no clipping), in float64."""
    x = np.asarray(x, dtype=np.float64)
    lo, hi = np.percentile(x, [low, high])
    return (x - lo) / max(hi - lo, eps)


def affine_fit(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Return ``α·pred + β`` with α, β minimizing the squared error to ``truth`` (least squares)."""
    p, t = _pair(pred, truth)
    pc = p - p.mean()
    var = float((pc * pc).mean())
    alpha = float((pc * (t - t.mean())).mean()) / var if var > 0 else 0.0
    return alpha * pc + t.mean()


def normalize_pair(
    pred: np.ndarray, truth: np.ndarray, *, low: float = 0.1, high: float = 99.9
) -> tuple[np.ndarray, np.ndarray]:
    """CSBDeep-style fair comparison: percentile-normalize the truth, affine-fit the prediction.

    Returns
    -------
    (pred_n, truth_n) in float64.
    """
    t = percentile_normalize(truth, low, high)
    return affine_fit(pred, t), t


def psnr(pred: np.ndarray, truth: np.ndarray, *, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB: ``10·log10(R² / MSE)``, R the truth's range by default."""
    p, t = _pair(pred, truth)
    mse = float(np.mean((p - t) ** 2))
    if mse == 0:
        return float("inf")
    return float(10 * np.log10(_data_range(t, data_range) ** 2 / mse))


def nrmse(
    pred: np.ndarray,
    truth: np.ndarray,
    *,
    normalization: Literal["euclidean", "min-max", "mean"] = "euclidean",
) -> float:
    """Root-mean-square error divided by ‖truth‖/√n (euclidean), the truth's range, or its mean."""
    p, t = _pair(pred, truth)
    rmse = float(np.sqrt(np.mean((p - t) ** 2)))
    if normalization == "euclidean":
        denom = float(np.sqrt(np.mean(t * t)))
    elif normalization == "min-max":
        denom = float(t.max() - t.min())
    elif normalization == "mean":
        denom = float(t.mean())
    else:
        raise InputError(f"unknown NRMSE normalization {normalization!r}")
    return rmse / denom if denom else float("inf")


def _ssim_maps(
    p: np.ndarray,
    t: np.ndarray,
    data_range: float,
    *,
    gaussian: bool,
    sigma: float,
    win_size: int | None,
    k1: float,
    k2: float,
    sample_covariance: bool,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Luminance·contrast·structure map and contrast·structure map, with the border to crop."""
    if gaussian:
        truncate = 3.5  # an 11-tap window at σ = 1.5, as Wang et al. (2004)
        win = 2 * int(truncate * sigma + 0.5) + 1
        filt = lambda a: ndimage.gaussian_filter(a, sigma, mode="reflect", truncate=truncate)  # noqa: E731
    else:
        win = win_size or 7
        filt = lambda a: ndimage.uniform_filter(a, size=win)  # noqa: E731
    if min(p.shape) < win:
        raise InputError(f"images must be at least {win} pixels on each side for SSIM")
    n = win**p.ndim
    cov_norm = n / (n - 1) if sample_covariance else 1.0
    ux, uy = filt(p), filt(t)
    vx = cov_norm * (filt(p * p) - ux * ux)
    vy = cov_norm * (filt(t * t) - uy * uy)
    vxy = cov_norm * (filt(p * t) - ux * uy)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    cs = (2 * vxy + c2) / (vx + vy + c2)
    lum = (2 * ux * uy + c1) / (ux * ux + uy * uy + c1)
    return lum * cs, cs, (win - 1) // 2


def _crop_mean(a: np.ndarray, pad: int) -> float:
    return float(a[tuple(slice(pad, s - pad) for s in a.shape)].mean())


def ssim(
    pred: np.ndarray,
    truth: np.ndarray,
    *,
    data_range: float | None = None,
    gaussian_weights: bool = True,
    sigma: float = 1.5,
    win_size: int | None = None,
    k1: float = 0.01,
    k2: float = 0.03,
) -> float:
    """Mean structural similarity (2D or nD).

    Defaults follow Wang et al. (2004): an 11×11 Gaussian window of σ 1.5 and population
    covariance; ``gaussian_weights=False`` gives scikit-image's default 7×7 uniform window with
    sample covariance. The border of half a window is excluded from the mean, as in scikit-image.
    """
    p, t = _pair(pred, truth)
    r = _data_range(t, data_range)
    full, _, pad = _ssim_maps(
        p,
        t,
        r,
        gaussian=gaussian_weights,
        sigma=sigma,
        win_size=win_size,
        k1=k1,
        k2=k2,
        sample_covariance=not gaussian_weights,
    )
    return _crop_mean(full, pad)


def ms_ssim(
    pred: np.ndarray,
    truth: np.ndarray,
    *,
    data_range: float | None = None,
    weights: tuple[float, ...] = MS_SSIM_WEIGHTS,
) -> float:
    """Multi-scale SSIM of 2D images (Wang et al. 2003).

    Contrast·structure terms at each of up to five dyadic scales (2×2 mean downsampling) and the
    luminance term at the coarsest, raised to the published weights. Negative terms are clipped to
    zero so the product stays defined. Scales that would shrink an image below the 11-pixel window
    are dropped and the remaining weights renormalized to sum to one.
    """
    p, t = _pair(pred, truth)
    if p.ndim != 2:
        raise InputError(f"MS-SSIM takes 2D images, got {p.ndim} dimensions")
    r = _data_range(t, data_range)
    levels = len(weights)
    while levels > 1 and min(p.shape) // 2 ** (levels - 1) < 11:
        levels -= 1
    w = np.asarray(weights[:levels], dtype=np.float64)
    w = w / w.sum()
    value = 1.0
    for level in range(levels):
        full, cs, pad = _ssim_maps(
            p,
            t,
            r,
            gaussian=True,
            sigma=1.5,
            win_size=None,
            k1=0.01,
            k2=0.03,
            sample_covariance=False,
        )
        term = _crop_mean(full if level == levels - 1 else cs, pad)
        value *= max(term, 0.0) ** w[level]
        p, t = _downsample2(p), _downsample2(t)
    return float(value)


def _downsample2(a: np.ndarray) -> np.ndarray:
    h, w = (a.shape[0] // 2) * 2, (a.shape[1] // 2) * 2
    return a[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


@dataclass(frozen=True)
class ImageScores:
    """Image-quality scores of a prediction against its truth.

    ``normalization`` names how the intensities were compared: :data:`RAW` or
    :data:`NORMALIZED`; ``normalized`` says the same as a flag.
    """

    psnr: float
    ssim: float
    ms_ssim: float
    nrmse: float
    normalized: bool = False
    normalization: str = RAW

    def as_dict(self) -> dict[str, float | bool | str]:
        return asdict(self)


def scale_mismatch(
    pred: np.ndarray,
    truth: np.ndarray,
    *,
    units: str | None = None,
    truth_units: str | None = None,
) -> str | None:
    """Why ``pred`` and ``truth`` are not on one intensity scale, or None when they are.

    Two reasons count: units that differ where both are known (e.g. ADU against photons, from
    the files' metadata), and intensities far apart: the least-squares line of the prediction
    on the truth has a slope outside [1/:data:`MAX_GAIN`, :data:`MAX_GAIN`] or lies more than
    :data:`MAX_LEVEL_SHIFT` of the truth's range away at the truth's median. The prediction is
    regressed on the truth, not the reverse, because the truth is noise-free: noise in the
    prediction then leaves the slope unbiased.

    Parameters
    ----------
    pred, truth : arrays of the same shape.
    units, truth_units : their intensity units, or None when unknown.

    Returns
    -------
    A sentence naming the difference (for a warning), or None.
    """
    if units and truth_units and units.strip().lower() != truth_units.strip().lower():
        return f"the result is in {units} and the truth in {truth_units} (file metadata)"
    p, t = _pair(pred, truth)
    lo, mid, hi = np.percentile(t, [0.1, 50.0, 99.9])
    tc = t - t.mean()
    var = float(np.mean(tc * tc))
    if hi <= lo or var <= 0:
        return None  # a flat truth has no scale to compare with
    gain = float(np.mean(tc * (p - p.mean()))) / var
    level = gain * (mid - t.mean()) + p.mean()  # the fitted line at the truth's median
    shift = (level - mid) / (hi - lo)
    if not (1 / MAX_GAIN <= gain <= MAX_GAIN) or abs(shift) > MAX_LEVEL_SHIFT:
        return (
            f"the result is not on the truth's intensity scale (about {gain:.2g} × the truth, "
            f"shifted by {shift:+.2g} of the truth's range {lo:.4g}–{hi:.4g})"
        )
    return None


def evaluate(
    pred: np.ndarray,
    truth: np.ndarray,
    *,
    normalize: bool | None = False,
    units: str | None = None,
    truth_units: str | None = None,
    data_range: float | None = None,
) -> ImageScores:
    """PSNR, SSIM, MS-SSIM and NRMSE of ``pred`` against ``truth``.

    Whether the intensities are comparable as they are is checked by :func:`scale_mismatch`;
    a doubtful comparison is flagged with an :class:`~abbe.errors.AbbeWarning`.

    Parameters
    ----------
    pred, truth : arrays of the same shape; 2D, or stacks whose last two axes are (Y, X) (SSIM and
        MS-SSIM are then averaged over the planes, PSNR and NRMSE computed over all pixels).
    normalize : True: percentile-normalize the truth and affine-fit the prediction first
        (:func:`normalize_pair`), so that intensity scale and offset do not count as error.
        False: compare as they are (warning when they are not on one scale). None: the rule
        ``abbe evaluate`` and ``abbe verify`` share: normalize exactly when the two are not on
        one scale, and warn that it was done.
    units, truth_units : intensity units from the files' metadata (``meta.extra["units"]``),
        when known; units that differ count as a mismatch.
    data_range : R for PSNR and SSIM; default the (normalized) truth's max − min.
    """
    p, t = _pair(pred, truth)
    reason = scale_mismatch(p, t, units=units, truth_units=truth_units)
    if normalize is None:
        normalize = reason is not None
        if reason:
            _warn(
                f"{reason}; the scores are computed after normalization (the truth's 0.1–99.9 "
                "percentiles to 0–1, the result affine-fitted to it); --no-normalize gives the "
                "raw scores"
            )
    elif not normalize and reason:
        _warn(
            f"{reason}; raw scores of different scales mean little: use --normalize, "
            "or bring the result to the truth's units first"
        )
    if normalize:
        p, t = normalize_pair(p, t)
    r = _data_range(t, data_range)
    planes_p = p.reshape(-1, *p.shape[-2:])
    planes_t = t.reshape(-1, *t.shape[-2:])
    s = np.mean([ssim(a, b, data_range=r) for a, b in zip(planes_p, planes_t, strict=True)])
    ms = np.mean([ms_ssim(a, b, data_range=r) for a, b in zip(planes_p, planes_t, strict=True)])
    return ImageScores(
        psnr=psnr(p, t, data_range=r),
        ssim=float(s),
        ms_ssim=float(ms),
        nrmse=nrmse(p, t),
        normalized=normalize,
        normalization=NORMALIZED if normalize else RAW,
    )


def _warn(message: str) -> None:
    # stacklevel 3: the warning points at the caller of evaluate, not at this helper.
    warnings.warn(message, AbbeWarning, stacklevel=3)
