"""Image resolution from the data alone: Fourier ring correlation and decorrelation analysis.

References
----------
Nieuwenhuizen et al., "Measuring image resolution in optical nanoscopy", Nat Methods 10:557
(2013) (FRC and its 1/7 threshold).
van Heel & Schatz, J Struct Biol 151:250 (2005) (half-bit threshold); van Heel, Ultramicroscopy
21:95 (1987) (σ-criteria).
Koho et al., Nat Commun 10:3103 (2019) (single-image FRC; here the split is a binomial thinning
of the photon counts, which for Poisson data gives two independent Poisson images, followed by
the 2F/(1+F) correction to the full dose).
Descloux, Grußmayer & Radenovic, "Parameter-free image resolution estimation based on
decorrelation analysis", Nat Methods 16:918 (2019).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from abbe.errors import AbbeWarning, InputError

Threshold = Literal["1/7", "half-bit", "3sigma"]

#: Smallest correlation of two images' noise that FRC flags as shared noise (also at least five
#: standard errors, 5/√(flat pixels)). Independent noise gives 0 ± 0.003 on a 512² image
#: with background; 2 e⁻ read noise on 2 photons of background gives 0.32, 1 e⁻ on 5 gives 0.1.
NOISE_CORRELATION_LIMIT = 0.03
#: A resolution within this factor of the Nyquist period (2 pixels) is a bound, not a measurement.
NYQUIST_MARGIN = 1.05


@dataclass(frozen=True)
class FRCResult:
    """Fourier ring correlation of two images.

    Attributes
    ----------
    resolution_nm : 1/f at the first crossing of the threshold (NaN when the curve never drops
        below it: the resolution is finer than the Nyquist limit can show).
    frequency : ring centres in cycles per nm.
    curve : FRC per ring.
    threshold : threshold per ring.
    threshold_name : which threshold.
    n_pixels : Fourier pixels per ring.
    nyquist_nm : the Nyquist period, two pixels.
    noise_correlation : correlation of the two images' pixel-scale fluctuations on flat
        (background) pixels, 0 for independent noise (NaN when not checked; see
        :func:`noise_correlation`).
    doubts : why the result cannot be taken at face value (each also emitted as an
        :class:`~abbe.errors.AbbeWarning`); empty when none was found.
    """

    resolution_nm: float
    frequency: np.ndarray
    curve: np.ndarray
    threshold: np.ndarray
    threshold_name: str
    n_pixels: np.ndarray = field(repr=False)
    nyquist_nm: float = float("nan")
    noise_correlation: float = float("nan")
    doubts: tuple[str, ...] = ()

    @property
    def at_nyquist(self) -> bool:
        """True when the curve never crosses the threshold or crosses it within 5 % of Nyquist."""
        r = self.resolution_nm
        return not np.isfinite(r) or r <= NYQUIST_MARGIN * self.nyquist_nm

    def as_dict(self) -> dict:
        return {
            "resolution_nm": self.resolution_nm,
            "threshold": self.threshold_name,
            "nyquist_nm": self.nyquist_nm,
            "noise_correlation": _or_none(self.noise_correlation),
            "doubts": list(self.doubts),
            "frequency_per_nm": self.frequency.tolist(),
            "curve": self.curve.tolist(),
        }


def _or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _square(a: np.ndarray) -> np.ndarray:
    """Centred largest square of a 2D image (rings need one frequency step on both axes)."""
    h, w = a.shape
    n = min(h, w)
    y0, x0 = (h - n) // 2, (w - n) // 2
    return a[y0 : y0 + n, x0 : x0 + n]


def _window(n: int, kind: str | None) -> np.ndarray:
    if kind is None:
        return np.ones((n, n))
    if kind == "hamming":
        w = np.hamming(n)
    elif kind == "tukey":
        from scipy.signal.windows import tukey

        w = tukey(n, alpha=0.25)
    else:
        raise InputError(f"unknown window {kind!r}; use tukey, hamming or none")
    return np.outer(w, w)


def _ring_index(n: int) -> np.ndarray:
    """Integer ring of each element of an unshifted n×n FFT (ring k: |f| ≈ k/n cycles/pixel)."""
    f = np.fft.fftfreq(n) * n
    return np.rint(np.hypot(*np.meshgrid(f, f, indexing="ij"))).astype(np.int64)


def threshold_curve(name: str, n_pixels: np.ndarray) -> np.ndarray:
    """Threshold per ring: ``1/7``; ``half-bit`` (van Heel & Schatz 2005); ``3sigma``:
    3/√(n/2), three standard deviations of the FRC of pure noise, counting the n/2 independent
    Fourier pixels of a ring (the other half are their complex conjugates)."""
    n = np.maximum(np.asarray(n_pixels, dtype=np.float64), 1.0)
    if name == "1/7":
        return np.full(n.shape, 1 / 7)
    if name == "half-bit":
        return (0.2071 + 1.9102 / np.sqrt(n)) / (1.2071 + 0.9102 / np.sqrt(n))
    if name == "3sigma":
        return 3.0 / np.sqrt(n / 2)
    raise InputError(f"unknown threshold {name!r}; use 1/7, half-bit or 3sigma")


def frc_curve(
    a: np.ndarray, b: np.ndarray, *, window: str | None = "tukey"
) -> tuple[np.ndarray, np.ndarray]:
    """FRC per integer ring (0 … n/2) of two same-shape 2D images, and pixels per ring.

    ``FRC(k) = Re Σ F₁F₂* / √(Σ|F₁|² Σ|F₂|²)`` over ring k. Images are cropped to a centred
    square, their means removed and apodized (Tukey by default) so that edges add no spectrum.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise InputError(f"FRC needs two 2D images of one shape, got {a.shape} and {b.shape}")
    a, b = _square(a), _square(b)
    n = a.shape[0]
    if n < 16:
        raise InputError(f"image too small for FRC ({n} pixels)")
    w = _window(n, window)
    fa = _rfft2((a - a.mean()) * w)
    fb = _rfft2((b - b.mean()) * w)
    ring, weight, size = _half_rings(n)
    cross = np.bincount(ring, weight * (fa * fb.conj()).real.ravel(), size)
    pa = np.bincount(ring, weight * (fa.real**2 + fa.imag**2).ravel(), size)
    pb = np.bincount(ring, weight * (fb.real**2 + fb.imag**2).ravel(), size)
    count = np.rint(np.bincount(ring, weight, size)).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        curve = cross / np.sqrt(pa * pb)
    return np.nan_to_num(curve), count


def _rfft2(a: np.ndarray) -> np.ndarray:
    from scipy import fft

    return fft.rfft2(a, workers=-1)


def _half_rings(n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Ring index and weight of each element of an n×n real FFT (half plane), inside n/2.

    Columns 1 … n/2−1 stand for themselves and their complex conjugates: weight 2.
    """
    fy = np.fft.fftfreq(n) * n
    fx = np.fft.rfftfreq(n) * n
    ring = np.rint(np.hypot(fy[:, None], fx[None, :])).astype(np.int64)
    weight = np.full(ring.shape, 2.0)
    weight[:, 0] = 1.0
    if n % 2 == 0:
        weight[:, -1] = 1.0
    keep = ring <= n // 2
    weight[~keep] = 0.0
    ring[~keep] = 0
    return ring.ravel(), weight.ravel(), n // 2 + 1


def smooth_curve(curve: np.ndarray, n: int) -> np.ndarray:
    """Running mean over 2·⌈n/256⌉ + 1 rings: a ring of an n² FFT holds ~πk independent pixels,
    so single rings scatter by ~1/√(πk); averaging neighbours steadies the threshold crossing
    without moving it (the curve is smooth on that scale)."""
    half = max(1, -(-n // 256))
    kernel = np.ones(2 * half + 1) / (2 * half + 1)
    padded = np.pad(curve, half, mode="reflect")
    return np.convolve(padded, kernel, mode="valid")


def _first_crossing(curve: np.ndarray, thr: np.ndarray, start: int = 1) -> float:
    """Fractional ring index where ``curve`` first falls below ``thr`` (NaN if never)."""
    below = np.flatnonzero(curve[start:] < thr[start:])
    if below.size == 0:
        return float("nan")
    k = int(below[0]) + start
    if k == 0:
        return 0.0
    d0, d1 = curve[k - 1] - thr[k - 1], curve[k] - thr[k]
    return float(k - 1 + d0 / (d0 - d1)) if d0 != d1 else float(k)


def _result(curve, count, n, pixel_size_nm, threshold, smooth: bool = True) -> FRCResult:
    thr = threshold_curve(threshold, count)
    if smooth:
        curve = smooth_curve(curve, n)
    k = _first_crossing(curve, thr)
    freq = np.arange(curve.size) / (n * pixel_size_nm)
    res = float(n * pixel_size_nm / k) if np.isfinite(k) and k > 0 else float("nan")
    return FRCResult(res, freq, curve, thr, threshold, count, nyquist_nm=2.0 * pixel_size_nm)


def frc(
    a: np.ndarray,
    b: np.ndarray,
    *,
    pixel_size_nm: float,
    threshold: Threshold = "1/7",
    window: str | None = "tukey",
    independent: bool = False,
) -> FRCResult:
    """Fourier ring correlation of two independent images of the same field.

    Parameters
    ----------
    a, b : (Y, X) images of the same shape (cropped to a centred square).
    pixel_size_nm : pixel size of both.
    threshold : ``1/7`` (Nieuwenhuizen 2013), ``half-bit`` or ``3sigma``.
    window : apodization, ``tukey`` (default), ``hamming`` or None.
    independent : the two are meant to be independent acquisitions: check that their noise is
        (:func:`noise_correlation`) and that the curve crosses the threshold before Nyquist,
        and warn (:class:`~abbe.errors.AbbeWarning`) where not. Leave False to compare an image
        with a noise-free one (a ground truth).

    Returns
    -------
    FRCResult with ``resolution_nm``, ``frequency`` (cycles/nm), ``curve`` and ``doubts``.
    """
    curve, count = frc_curve(a, b, window=window)
    res = _result(curve, count, _square(np.asarray(a)).shape[0], pixel_size_nm, threshold)
    if not independent:
        return res
    corr, n_flat = noise_correlation(a, b)
    return _with_checks(res, corr, n_flat, route="FRC")


def expected_frc(
    clean: np.ndarray,
    *,
    pixel_size_nm: float,
    variance: np.ndarray | None = None,
    threshold: Threshold = "1/7",
    window: str | None = "tukey",
) -> FRCResult:
    """The FRC two independent noisy acquisitions of ``clean`` should give: S/(S+N) per ring.

    S is the ring energy of the (windowed) clean image; N the ring's noise energy for white noise
    of per-pixel ``variance`` (default: ``clean`` itself, Poisson data in photons). Use it to check
    a measured FRC against theory on simulations.
    """
    c = _square(np.asarray(clean, dtype=np.float64))
    n = c.shape[0]
    var = c if variance is None else _square(np.asarray(variance, dtype=np.float64))
    w = _window(n, window)
    spectrum = np.abs(np.fft.fft2((c - c.mean()) * w)) ** 2
    ring = _ring_index(n)
    keep = ring <= n // 2
    size = n // 2 + 1
    signal = np.bincount(ring[keep], spectrum[keep], size)
    count = np.bincount(ring[keep], minlength=size)
    noise = count * np.sum(w**2 * var)
    curve = signal / (signal + noise)
    return _result(curve, count, n, pixel_size_nm, threshold, smooth=False)


def split_counts(
    image: np.ndarray, *, seed: int | np.random.Generator | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split photon counts binomially into two independent images: n₁ ~ Bin(n, ½), n₂ = n − n₁.

    For Poisson data each half is Poisson with half the mean, independent of the other; the
    image must be in photons (counts), rounded to integers here.
    """
    counts = np.rint(np.asarray(image, dtype=np.float64))
    if np.any(counts < 0):
        raise InputError("single-image FRC needs photon counts ≥ 0; convert ADU to photons first")
    rng = np.random.default_rng(seed)
    first = rng.binomial(counts.astype(np.int64), 0.5).astype(np.float64)
    return first, counts - first


def frc_single(
    image: np.ndarray,
    *,
    pixel_size_nm: float,
    threshold: Threshold = "1/7",
    window: str | None = "tukey",
    seed: int = 0,
    repeats: int = 4,
) -> FRCResult:
    """Single-image FRC: binomial split of photon counts, then the two-image FRC corrected to
    the full image's signal-to-noise ratio, ``FRC_full = 2F/(1+F)``.

    Each half holds half the counts, so its spectral SNR is half the full image's; 2F/(1+F) maps
    the halves' correlation onto the correlation two full-dose images would have. The curve is
    averaged over ``repeats`` independent splits, which removes the scatter of one split.

    The halves are independent only for pure photon counts: given the counts n, their noise
    covariance is (Var n − E n)/4 per pixel, zero for Poisson noise, positive with read noise,
    EMCCD excess noise, sCMOS offset patterns or a gain set too low (the FRC then reads too
    fine, often beyond Nyquist), negative with a gain set too high or smoothed data. The halves'
    correlation on flat background is measured (``noise_correlation``) and, with a curve that
    never crosses the threshold before Nyquist, flagged in ``doubts`` and as an
    :class:`~abbe.errors.AbbeWarning`.
    """
    rng = np.random.default_rng(seed)
    curves = []
    flat = flat_pixels(np.asarray(image, dtype=np.float64))
    sums = np.zeros(3)
    for _ in range(max(1, repeats)):
        a, b = split_counts(image, seed=rng)
        c, count = frc_curve(a, b, window=window)
        curves.append(c)
        sums += _residual_products(a, b, flat)
    curve = np.mean(curves, axis=0)
    # Non-Poisson counts split anti-correlated (F → −1), where 2F/(1+F) diverges; keep it bounded.
    corrected = np.clip(2 * curve / np.maximum(1 + curve, 1e-6), -1.0, 1.0)
    res = _result(corrected, count, _square(a).shape[0], pixel_size_nm, threshold)
    return _with_checks(res, _correlation(sums), int(flat.sum()), route="single-image FRC")


def frc_time_series(
    stack: np.ndarray,
    *,
    pixel_size_nm: float,
    threshold: Threshold = "1/7",
    window: str | None = "tukey",
) -> FRCResult:
    """FRC of the sums of even and odd frames of a (T, Y, X) series (independent noise).

    Noise that repeats in every frame (an sCMOS offset map left in, hot pixels) is shared by
    both sums; it is measured and flagged as in :func:`frc` with ``independent=True``.
    """
    stack = np.asarray(stack, dtype=np.float64)
    if stack.ndim != 3 or stack.shape[0] < 2:
        raise InputError(f"need a (T, Y, X) series of at least 2 frames, got {stack.shape}")
    even, odd = stack[0::2].sum(0), stack[1::2].sum(0)
    res = frc(even, odd, pixel_size_nm=pixel_size_nm, threshold=threshold, window=window)
    corr, n_flat = noise_correlation(even, odd)
    return _with_checks(res, corr, n_flat, route="odd/even FRC")


# ------------------------------------------------------------------ is the noise independent?
#: Each pixel minus the mean of its four neighbours: removes the smooth (PSF-blurred) signal
#: and keeps white noise, whose variance it multiplies by 1 + 4/16.
_RESIDUAL = np.array([[0.0, -0.25, 0.0], [-0.25, 1.0, -0.25], [0.0, -0.25, 0.0]])


def _residual(x: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return ndimage.convolve(np.asarray(x, dtype=np.float64), _RESIDUAL, mode="reflect")


def flat_pixels(image: np.ndarray, *, block: int = 16, max_lag1: float = 0.1) -> np.ndarray:
    """Mask of the pixels in blocks that hold noise and no visible structure.

    Noise (shot, read, per-pixel offsets) is white; a PSF-blurred structure correlates
    neighbouring pixels. A ``block``² block whose lag-1 autocorrelation (mean of the Y and X
    lags, block mean removed) stays below ``max_lag1`` is flat: white noise gives 0 ± 0.05 on
    16² pixels, while a structure (lag-1 correlation ≈ 0.8 under a 2.5-pixel PSF) that adds a
    seventh of the noise variance already gives 0.1.
    """
    img = np.asarray(image, dtype=np.float64)
    hb, wb = img.shape[0] // block, img.shape[1] // block
    mask = np.zeros(img.shape, dtype=bool)
    if hb == 0 or wb == 0:
        return mask
    x = img[: hb * block, : wb * block].reshape(hb, block, wb, block).transpose(0, 2, 1, 3)
    x = x - x.mean(axis=(2, 3), keepdims=True)
    var = (x**2).mean(axis=(2, 3))
    lag_x = (x[..., :, 1:] * x[..., :, :-1]).mean(axis=(2, 3))
    lag_y = (x[..., 1:, :] * x[..., :-1, :]).mean(axis=(2, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        lag1 = 0.5 * (lag_x + lag_y) / var
    flat = np.nan_to_num(lag1, nan=1.0) < max_lag1  # an empty (constant) block holds no noise
    mask[: hb * block, : wb * block] = np.repeat(np.repeat(flat, block, 0), block, 1)
    return mask


def _residual_products(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Σ r_a r_b, Σ r_a², Σ r_b² of the two images' residuals over ``mask``."""
    ra, rb = _residual(a)[mask], _residual(b)[mask]
    return np.array([np.sum(ra * rb), np.sum(ra * ra), np.sum(rb * rb)])


def _correlation(sums: np.ndarray) -> float:
    den = float(np.sqrt(sums[1] * sums[2]))
    return float(sums[0] / den) if den > 0 else float("nan")


def noise_correlation(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """Correlation of two images' pixel-scale fluctuations on flat (background) pixels.

    For two images with independent noise the fluctuations of each pixel about its neighbours
    are uncorrelated between the images where the field holds no structure: the correlation is
    0 ± 1/√n. Noise both share (read noise across the halves of a binomial split, a fixed
    offset pattern across two frames) makes it positive; the signal, smooth at the pixel scale
    and absent on flat pixels (:func:`flat_pixels` of ``a + b``), adds almost nothing.

    Returns
    -------
    ``(correlation, n)``: the correlation (NaN when no pixel is flat) and the flat pixels used.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    flat = flat_pixels(a + b)
    return _correlation(_residual_products(a, b, flat)), int(flat.sum())


def _with_checks(res: FRCResult, corr: float, n_flat: int, *, route: str) -> FRCResult:
    """Record the noise correlation and warn about shared noise and a crossing at Nyquist."""
    found = (_shared_noise_doubt(corr, n_flat, route), _nyquist_doubt(res, route))
    doubts = [m for m in found if m is not None]
    for message in doubts:
        warnings.warn(message, AbbeWarning, stacklevel=3)
    return dataclasses.replace(res, noise_correlation=corr, doubts=tuple(doubts))


def _shared_noise_doubt(corr: float, n_flat: int, route: str) -> str | None:
    """The message for noise correlated beyond chance, or None (also when not measurable)."""
    if n_flat < 256 or not np.isfinite(corr):
        return None  # no flat block: the check cannot be made (the result keeps NaN)
    spread = 1 / np.sqrt(n_flat)
    # Five standard errors: faint structure left on flat blocks lifts independent noise by up to
    # 0.08 on 128² images of bright puncta (0.02 on 512²), still inside this limit.
    if abs(corr) <= max(NOISE_CORRELATION_LIMIT, 5 * spread):
        return None
    single = route == "single-image FRC"
    found = (
        f"by {corr:.2f} on flat background pixels "
        f"(independent {'halves' if single else 'noise'}: 0 ± {spread:.3f})"
    )
    if single:
        if corr > 0:
            return (
                f"{route}: the noise is not pure photon (Poisson) noise: the two halves of the "
                f"binomial split correlate {found}. Read noise, EMCCD excess noise, sCMOS pixel "
                "offsets or a --gain below the camera's do this, and the FRC then reads too fine. "
                "Measure with two acquisitions of the field (abbe resolution a.tif b.tif) or, "
                "for a time series, its odd/even frames; check --gain and --offset"
            )
        return (
            f"{route}: the noise is below photon (Poisson) noise: the two halves of the binomial "
            f"split anti-correlate {found}. A --gain above the camera's, an offset left in, or "
            "smoothed, binned or denoised data do this, and the FRC then reads too coarse. Check "
            "--gain and --offset, or measure with two acquisitions (abbe resolution a.tif b.tif)"
        )
    if corr > 0:
        return (
            f"{route}: the two images share noise: their pixel fluctuations correlate {found}. "
            "A fixed pattern (an sCMOS offset map or hot pixels left in) or images that are not "
            "independent acquisitions do this, and the FRC then reads too fine. Subtract the "
            "camera's offset map (dark frames) or use independent acquisitions"
        )
    return (
        f"{route}: the two images' noise anti-correlates {found}: they are not independent "
        "acquisitions (one derived from the other?), and the FRC then reads too coarse"
    )


def _nyquist_doubt(res: FRCResult, route: str) -> str | None:
    """The message for a curve that reaches the Nyquist limit, or None."""
    if not res.at_nyquist:
        return None
    nyq = f"the Nyquist limit ({res.nyquist_nm:.0f} nm, 2 pixels)"
    pair = "the two halves" if route == "single-image FRC" else "the two images"
    if not np.isfinite(res.resolution_nm):
        return (
            f"{route}: the curve stays above the {res.threshold_name} threshold up to {nyq}, so "
            "no resolution can be read from it (withheld): the image holds detail finer than "
            f"its pixels sample, or {pair} share noise"
        )
    return (
        f"{route}: the curve crosses the {res.threshold_name} threshold at "
        f"{res.resolution_nm:.0f} nm, at {nyq}: a bound set by the pixel size (or by shared "
        "noise), not a measured resolution"
    )


# ------------------------------------------------------------------------------ decorrelation
#: Width (pixels) of the cosine taper on the image edges before the FFT: the jump between
#: opposite edges of a periodic FFT would otherwise add a cross of spectrum out to Nyquist.
#: 20 pixels as in Descloux et al.'s own analysis script.
APODIZATION_PX = 20
#: Each high-pass filter is applied this many times, (1 − G_g)^p. Descloux et al. use p = 1,
#: which weights the spectrum by at most k² (small g); the curves then peak where the weighted
#: spectrum falls to half its mean inside the radius, well before the frequency where the signal
#: ends: 12–15 % coarse on widefield filaments at 1000 photons. p = 4 (k⁸ at small g) moves the
#: peak to the end of the signal. Measured on abbe's simulations (512², seeds not in the
#: benchmark), with the noise floor subtracted: p = 1, 2, 3, 4 read 306, 280, 271, 258–265 nm
#: at 1000 photons (cutoff 243 nm, FRC 260 nm; the published algorithm 280 nm), and p = 4
#: stays within 7 % of the FRC at 30 photons (p = 5 and 6 scatter up to 15 %).
FILTER_ORDER = 4
#: Pure noise makes the (noise-floor corrected) curves peak at up to 4.6/n on an n² image
#: (40 Poisson fields each at n = 32 … 256); a peak must exceed NOISE_PEAK/n as well as the
#: minimum amplitude to count.
NOISE_PEAK = 6.0


@dataclass(frozen=True)
class DecorrelationResult:
    """Decorrelation analysis of one image (Descloux et al. 2019).

    Attributes
    ----------
    resolution_nm : 2·pixel/k_c, k_c the highest frequency (Nyquist = 1) at which a (high-pass
        filtered) decorrelation curve still peaks above the noise; NaN if none does.
    a0 : peak amplitude of the unfiltered curve, a proxy for the image's signal-to-noise ratio
        (NaN when that curve has no peak).
    radii : normalized frequencies (Nyquist = 1) at which the curves were sampled.
    curves : (filters + 1, radii) decorrelation curves, unfiltered first.
    peaks : (curves, 2) position and amplitude of each curve's peak (NaN where none), both
        filter passes and the unfiltered curve last.
    k_c : the chosen peak position (NaN when none).
    noise_floor : mean Fourier magnitude of pure noise, subtracted before correlating.
    reason : why no resolution was read (empty when one was).
    """

    resolution_nm: float
    a0: float
    radii: np.ndarray = field(repr=False)
    curves: np.ndarray = field(repr=False)
    peaks: np.ndarray = field(repr=False)
    k_c: float = float("nan")
    noise_floor: float = float("nan")
    reason: str = ""

    def as_dict(self) -> dict:
        return {
            "resolution_nm": _or_none(self.resolution_nm),
            "a0": _or_none(self.a0),
            "k_c": _or_none(self.k_c),
            "reason": self.reason or None,
            "radii": self.radii.tolist(),
            "curve": self.curves[0].tolist(),
        }


def _curve_peak(
    d: np.ndarray, radii: np.ndarray, *, significance: float = 1e-3
) -> tuple[float, float]:
    """The highest local maximum of a decorrelation curve that a dip follows.

    A curve that keeps rising to its last radius (noise dominates there) has no peak at the end:
    the end is trimmed until the maximum lies inside the curve and exceeds the curve's minimum
    after it by ``significance``.
    """
    t = np.array(d, dtype=np.float64)
    n = t.size
    i = int(np.argmax(t))
    while i == n - 1:  # the maximum is at the end: no peak there, trim it
        n -= 1
        if n == 0:
            return float("nan"), float("nan")
        i = int(np.argmax(t[:n]))
        if t[i] - d[i:].min() > significance:
            break
        t[i] = d[i:].min()  # a shoulder of the rising tail, not a peak
        i = n - 1
    return float(radii[i]), float(d[i])


def _apodize(img: np.ndarray, width: int) -> np.ndarray:
    """Image minus its mean, edges tapered to zero by a raised cosine over ``width`` pixels."""
    n = img.shape[0]
    width = min(width, n // 4)
    taper = np.ones(n)
    ramp = 0.5 * (1 - np.cos(np.pi * (np.arange(width) + 0.5) / width))
    taper[:width], taper[n - width :] = ramp, ramp[::-1]
    return (img - img.mean()) * np.outer(taper, taper)


@dataclass(frozen=True)
class _RingSpectrum:
    """Sums over the Fourier pixels of each ring j (j ≤ r·n/2 < j + 1, Nyquist r = 1) of an
    n×n image: pixel count, Σ(|I| − floor), Σ|I|², and the rings' mean radius."""

    count: np.ndarray
    excess: np.ndarray
    power: np.ndarray
    radius: np.ndarray
    floor: float


def _ring_spectrum(img: np.ndarray) -> _RingSpectrum:
    """The apodized image's Fourier magnitudes summed per ring, and the noise floor: the mean
    |I| beyond the Nyquist circle (the spectrum's corners), where a properly sampled image holds
    only white noise. One pass of sums makes every curve cost O(n), whatever its filter."""
    n = img.shape[0]
    x = _apodize(img, APODIZATION_PX)
    mag = np.abs(_rfft2(x / (x.std() or 1.0))).ravel()  # a real image: half the plane holds it
    fy, fx = np.fft.fftfreq(n), np.fft.rfftfreq(n)
    k = (np.hypot(fy[:, None], fx[None, :]) / 0.5).ravel()
    weight = np.full((n, fx.size), 2.0)  # columns 1 … n/2 − 1 stand for their conjugates too
    weight[:, 0] = 1.0
    if n % 2 == 0:
        weight[:, -1] = 1.0
    weight = weight.ravel()
    corners = k > 1.05
    floor = float(np.mean(mag[corners])) if corners.any() else 0.0
    inside = (k < 1) & (k > 0)  # the mean (k = 0) carries no resolution
    ring = np.floor(k[inside] * (n // 2)).astype(np.int64)
    w, m, size = weight[inside], mag[inside], n // 2
    count = np.bincount(ring, w, size)
    with np.errstate(invalid="ignore", divide="ignore"):
        radius = np.nan_to_num(np.bincount(ring, w * k[inside], size) / count)
    return _RingSpectrum(
        count=count,
        excess=np.bincount(ring, w * (m - floor), size),
        power=np.bincount(ring, w * m * m, size),
        radius=radius,
        floor=floor,
    )


def decorrelation(
    image: np.ndarray,
    *,
    pixel_size_nm: float,
    n_filters: int = 10,
    min_amplitude: float = 0.05,
) -> DecorrelationResult:
    """Resolution of a single image by decorrelation analysis.

    Descloux, Grußmayer & Radenovic, "Parameter-free image resolution estimation based on
    decorrelation analysis", Nat Methods 16:918 (2019).

    The image, edges apodized, is Fourier transformed (I, Nyquist = 1) and correlated with its
    own phase Iₙ = I/|I| inside a radius r: ``d(r) = Σ_{|k|<r} Re(I·Iₙ*) / (‖I‖·‖Iₙ·1_{|k|<r}‖)``.
    Where signal dominates, adding frequencies raises d; past the last frequency with signal,
    noise only dilutes it: d peaks there. The analysis is repeated on high-pass filtered
    images (I·(1 − G_g)^p, G_g the transfer function of a Gaussian blur of σ = g pixels, g
    log-spaced from 2/r₀ down to 0.15, then refined between the best two), and
    k_c = the highest peak position of amplitude ≥ ``min_amplitude``.

    Two changes to the published algorithm, both measured on simulations with a known answer
    (widefield filaments, Poisson noise; the numbers in :data:`FILTER_ORDER` and below):

    * Re(I·Iₙ*) = |I| has a positive mean even for pure noise, so on dim images every curve
      keeps rising and none peaks (no resolution at 30 photons peak). The noise's mean
      magnitude, read from the spectrum's corners beyond the Nyquist circle, is subtracted:
      noise then adds nothing on average and the curves peak where the signal ends (within
      10 % of the two-image FRC at 30 and 100 photons peak; at 10 photons single fields
      scatter up to 17 %).
    * Each filter is applied :data:`FILTER_ORDER` times, weighting the highest frequencies
      more, so that at high signal the peak reaches the end of the signal (the optical cutoff)
      instead of stopping 12–15 % before it.

    Every curve is evaluated at every ring of the spectrum (cumulative sums over the Fourier
    pixels sorted by radius), so the peak positions carry no sampling error.

    Parameters
    ----------
    image : (Y, X) image, any linear unit (cropped to a centred square of at least 32²).
    pixel_size_nm : pixel size.
    n_filters : high-pass filters per pass (two passes).
    min_amplitude : smallest peak amplitude that counts (also at least :data:`NOISE_PEAK`/n on
        an n² image: pure noise peaks below 4.6/n).

    Returns
    -------
    DecorrelationResult; its ``reason`` says why when no resolution was read (NaN).
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2 or min(img.shape) < 32:
        raise InputError(
            f"decorrelation analysis needs a 2D image of at least 32², got {img.shape}"
        )
    img = _square(img)
    n = img.shape[0]
    rings = _ring_spectrum(img)
    radii = np.linspace(0, 1, n // 2 + 1)  # curve j sums rings < j: pixels strictly inside r_j
    inside = np.concatenate([[0.0], np.cumsum(rings.count)])

    def curve(g: float | None) -> np.ndarray:
        # Re(I·Iₙ*) = |I|, less the noise floor; ‖Iₙ·1_{|k|<r}‖ = √(pixels inside r).
        h = 1.0 if g is None else _high_pass(g, rings.radius)
        csum = np.concatenate([[0.0], np.cumsum(h * rings.excess)])
        norm = np.sqrt(np.sum(h * h * rings.power))
        with np.errstate(invalid="ignore", divide="ignore"):
            d = csum / (norm * np.sqrt(inside))
        return np.nan_to_num(d)

    base = curve(None)
    r0, a0 = _curve_peak(base, radii)
    g_max = 2 / r0 if np.isfinite(r0) and r0 > 0 else n / 2
    gs = np.exp(np.linspace(np.log(g_max), np.log(0.15), n_filters))
    curves, found = [base], []
    for step in range(2):
        peaks = []
        for g in gs:
            d = curve(g)
            if step == 0:
                curves.append(d)
            peaks.append(_curve_peak(d, radii))
        found += peaks
        if step == 0:
            gs = _refine_filters(peaks, gs, n_filters, max(min_amplitude, NOISE_PEAK / n))
    found.append((r0, a0))
    all_peaks = np.array(found, dtype=np.float64)
    least = max(min_amplitude, NOISE_PEAK / n)
    ok = [kc for kc, a in found if np.isfinite(kc) and kc > 0 and a >= least]
    parts = dict(radii=radii, curves=np.array(curves), peaks=all_peaks, noise_floor=rings.floor)
    if not ok:
        return DecorrelationResult(
            float("nan"), float(a0), **parts, reason=_no_peak_reason(all_peaks, least)
        )
    k_c = max(ok)
    return DecorrelationResult(2 * pixel_size_nm / k_c, float(a0), **parts, k_c=float(k_c))


def _high_pass(g: float, k: np.ndarray) -> np.ndarray:
    """(1 − G_g)^p at normalized frequency k: G_g the transfer function of a Gaussian blur of
    σ = g pixels (exp(−2π²g²f²), f = k/2 cycles per pixel), p = :data:`FILTER_ORDER`."""
    return (1 - np.exp(-0.5 * (np.pi * g * k) ** 2)) ** FILTER_ORDER


def _no_peak_reason(peaks: np.ndarray, min_amplitude: float) -> str:
    """One line on why no curve gave a resolution."""
    amp = peaks[:, 1]
    best = float(np.nanmax(amp)) if np.isfinite(amp).any() else float("nan")
    found = f"the highest peak reaches {best:.3f}" if np.isfinite(best) else "no curve peaks"
    return (
        f"none of its curves peaks clearly above the noise ({found}, {min_amplitude:g} needed): "
        "the image holds too little structure above its noise (too dim, too sparse or too flat)"
    )


def _refine_filters(
    peaks: list[tuple[float, float]], gs: np.ndarray, n_filters: int, min_amplitude: float
) -> np.ndarray:
    """Narrow the filter range to between the filter with the highest peak and the one with the
    best balance √(k_c·A) (Descloux et al. 2019, two-step refinement)."""
    valid = [np.isfinite(kc) and a >= min_amplitude for kc, a in peaks]
    kc = np.array([p[0] if v else 0.0 for p, v in zip(peaks, valid, strict=True)])
    amp = np.array([p[1] if v else 0.0 for p, v in zip(peaks, valid, strict=True)])
    i_gm, i_max = int(np.argmax(np.sqrt(kc * amp))), int(np.argmax(kc))
    lo, hi = min(i_gm, i_max), max(i_gm, i_max)
    if lo == 0:
        lo = hi = 0
    elif hi == len(gs) - 1:
        hi = len(gs) - 2
    return np.exp(np.linspace(np.log(gs[lo]), np.log(gs[hi + 1]), n_filters))


# ------------------------------------------------------------------------------ cross-checks
#: Decorrelation and a trusted FRC agree within this factor on Poisson simulations of
#: widefield filaments from 10 to 1000 photons peak (within 1.1×, 1.17× for a few fields at
#: 10 photons); a larger disagreement means the specimen or the noise is unlike that.
AGREEMENT_FACTOR = 1.25
#: A resolution this much finer than the optical cutoff period λ/(2·NA) is impossible for a
#: widefield image (measured values sit at or above it; 10 % leaves room for their scatter).
OPTICS_MARGIN = 0.9
#: Without a trusted FRC, decorrelation beyond this multiple of the optical cutoff is flagged:
#: at 1000 photons it reads within 1.1× of it, at 30 photons 1.3–1.4× (noise hides the finest
#: detail the optics pass, as the FRC also shows), and nothing else confirms that.
COARSE_FACTOR = 1.3


def cross_check(
    *,
    decorrelation: DecorrelationResult | None,
    frc: FRCResult | None = None,
    pixel_size_nm: float,
    optical_cutoff_nm: float | None = None,
) -> tuple[str, ...]:
    """Flag resolutions that cannot be measured or contradict the optics or each other.

    Decorrelation is flagged when it finds no peak (with the reason), peaks at Nyquist, is
    finer than the optical cutoff period λ/(2·NA) (when known), disagrees with an FRC that has
    no doubts of its own by more than a factor 1.25, or, with no such FRC to confirm it, lies
    beyond 1.3× the optical cutoff. An FRC finer than the optical cutoff is flagged too.

    Parameters
    ----------
    decorrelation : decorrelation analysis of the image, or None.
    frc : FRC of the image (single-image, odd/even or two-image), or None.
    pixel_size_nm : pixel size (the Nyquist period is two pixels).
    optical_cutoff_nm : λ/(2·NA) of the microscope, or None when unknown.

    Returns
    -------
    The messages, each also emitted as an :class:`~abbe.errors.AbbeWarning`.
    """
    doubts: list[str] = []
    cutoff = optical_cutoff_nm if optical_cutoff_nm and np.isfinite(optical_cutoff_nm) else None
    optics = f"the optical cutoff ({cutoff:.0f} nm, λ/2NA)" if cutoff else ""
    if frc is not None and cutoff and frc.resolution_nm < OPTICS_MARGIN * cutoff:
        doubts.append(
            f"FRC: {frc.resolution_nm:.0f} nm is finer than {optics} allows: the two images "
            "share noise or were processed (sharpened, deconvolved beyond the data); do not "
            "trust it"
        )
    if decorrelation is not None:
        doubts += _decorrelation_doubts(decorrelation, frc, pixel_size_nm, cutoff, optics)
    for message in doubts:
        warnings.warn(message, AbbeWarning, stacklevel=2)
    return tuple(doubts)


def _decorrelation_doubts(
    dec: DecorrelationResult,
    frc: FRCResult | None,
    pixel_size_nm: float,
    cutoff: float | None,
    optics: str,
) -> list[str]:
    r = dec.resolution_nm
    if not np.isfinite(r):
        why = dec.reason or _no_peak_reason(dec.peaks, 0.05)
        return [
            f"decorrelation: no resolution (withheld): {why}. Use FRC of two acquisitions or "
            "of odd/even frames, or a brighter or larger field"
        ]
    if r <= NYQUIST_MARGIN * 2 * pixel_size_nm:
        return [
            f"decorrelation: {r:.0f} nm is at the Nyquist limit ({2 * pixel_size_nm:.0f} nm, "
            "2 pixels): a bound set by the pixel size or by pixel-scale noise (hot pixels, "
            "fixed pattern), not a measured resolution"
        ]
    if cutoff and r < OPTICS_MARGIN * cutoff:
        return [
            f"decorrelation: {r:.0f} nm is finer than {optics} allows: pixel-scale noise "
            "(fixed pattern, hot pixels) or processing (sharpening) made it up; do not trust it"
        ]
    trusted = frc is not None and not frc.doubts and np.isfinite(frc.resolution_nm)
    if trusted:
        ratio = r / frc.resolution_nm
        if not 1 / AGREEMENT_FACTOR <= ratio <= AGREEMENT_FACTOR:
            return [
                f"decorrelation ({r:.0f} nm) and FRC ({frc.resolution_nm:.0f} nm) disagree by a "
                f"factor {max(ratio, 1 / ratio):.2f}: decorrelation reads coarse on dim or "
                "sparse images and on specimens with little fine structure; prefer the FRC"
            ]
    elif cutoff and r > COARSE_FACTOR * cutoff:
        return [
            f"decorrelation: {r:.0f} nm is {r / cutoff:.2f}× {optics} and no trustworthy FRC "
            "confirms it: noise hides the finest detail the optics pass, or decorrelation "
            "is misled by the specimen (little fine structure). Confirm with "
            "FRC of two acquisitions or of odd/even frames"
        ]
    return []


# ------------------------------------------------------------------------- spectral cutoff
@dataclass(frozen=True)
class CutoffResult:
    """Optical cutoff of a widefield image estimated from where its spectrum meets the noise.

    Attributes
    ----------
    resolution_nm : 1/k_c, the period at the extrapolated support edge (the Abbe limit λ/2NA
        for a widefield image); NaN when it cannot be estimated.
    detected_nm : 1/k at the last frequency where signal is significant (no extrapolation).
    frequency : ring centres (cycles/nm).
    snr : spectral signal-to-noise ratio per ring, P/N − 1.
    noise_floor : N, the mean power of pure-noise Fourier pixels.
    """

    resolution_nm: float
    detected_nm: float
    frequency: np.ndarray = field(repr=False)
    snr: np.ndarray = field(repr=False)
    noise_floor: float = float("nan")


def _incoherent_otf(x: np.ndarray) -> np.ndarray:
    """OTF of an aberration-free circular pupil at k/k_c = x (zero beyond 1)."""
    x = np.clip(x, 0.0, 1.0)
    return (2 / np.pi) * (np.arccos(x) - x * np.sqrt(1 - x * x))


def spectral_cutoff(
    image: np.ndarray,
    *,
    pixel_size_nm: float,
    z: float = 3.0,
    n_candidates: int = 200,
) -> CutoffResult:
    """Estimate a widefield image's optical cutoff by fitting its spectral SNR with the OTF.

    The spectrum's corners beyond the Nyquist circle hold only (white) noise when the optics cut
    off below Nyquist; their mean power is the noise floor N, and each ring's spectral SNR is
    P/N − 1 (standard error ≈ (1 + SNR)/√(n/2) for n Fourier pixels). A widefield image's
    signal spectrum is the object's, roughly a power law A·k^−α, times the squared incoherent OTF
    of the pupil, which reaches zero at k_c. For each candidate k_c, A and α follow from a
    weighted linear fit of log SNR on the significant rings; the k_c whose model best explains
    every ring (χ², including the noise-only rings beyond it) is the estimate. Using the shape of
    the whole decline, not only the last ring above the noise, keeps the estimate near the true
    cutoff at low signal, where the highest frequencies are lost in the noise.

    Parameters
    ----------
    image : (Y, X) widefield image (any linear units; cropped to a centred square).
    pixel_size_nm : pixel size.
    z : significance of a ring's signal, in standard errors.
    n_candidates : k_c values tried between the last significant ring and Nyquist.
    """
    img = _square(np.asarray(image, dtype=np.float64))
    n = img.shape[0]
    if n < 64:
        raise InputError(f"image too small for a spectral cutoff ({n} pixels)")
    w = _window(n, "tukey")
    power = np.abs(np.fft.fft2((img - img.mean()) * w)) ** 2
    f = np.fft.fftfreq(n)
    corners = np.hypot(*np.meshgrid(f, f, indexing="ij")) > 0.5 * 1.05
    noise = float(np.mean(power[corners]))
    ring = _ring_index(n)
    keep = (ring <= n // 2) & (ring > 0)
    size = n // 2 + 1
    count = np.bincount(ring[keep], minlength=size)
    mean_power = np.bincount(ring[keep], power[keep], size) / np.maximum(count, 1)
    snr = mean_power / max(noise, 1e-300) - 1
    se = (1 + np.abs(snr)) * np.sqrt(2 / np.maximum(count, 2))
    freq = np.arange(size) / (n * pixel_size_nm)
    ks = np.arange(max(3, n // 64), size)
    significant = ks[snr[ks] > z * se[ks]]
    if significant.size < 5:
        return CutoffResult(float("nan"), float("nan"), freq, snr, noise)
    detected = freq[significant.max()]
    nyquist = 1 / (2 * pixel_size_nm)
    log_k = np.log(freq[significant])
    weight = (snr[significant] / se[significant]) ** 2
    best_chi, best_kc = np.inf, float("nan")
    for kc in np.linspace(detected, nyquist, n_candidates):
        otf2 = _incoherent_otf(freq[significant] / kc) ** 2
        if np.any(otf2 <= 0):
            continue
        y = np.log(snr[significant]) - np.log(otf2)
        design = np.column_stack([np.ones_like(log_k), log_k])
        sw = np.sqrt(weight)[:, None]
        coef, *_ = np.linalg.lstsq(design * sw, y * sw[:, 0], rcond=None)
        model = np.exp(coef[0] + coef[1] * np.log(freq[ks])) * _incoherent_otf(freq[ks] / kc) ** 2
        chi = float(np.sum(((snr[ks] - model) / se[ks]) ** 2))
        if chi < best_chi:
            best_chi, best_kc = chi, float(kc)
    return CutoffResult(float(1 / best_kc), float(1 / detected), freq, snr, noise)
