"""Candidate detection for single-molecule localization, with thresholds in photons.

Frames (in photo-electrons) are band-pass filtered by a difference of Gaussians: a Gaussian
matched to the PSF minus a wider one that follows the local background. For a point emitter of
``N`` photo-electrons and a Gaussian PSF of σ, the matched filter's peak is ``N/(4πσ²)`` and the
background filter's (σ_b) is ``N/(2π(σ² + σ_b²))``, so a threshold in photons maps exactly onto
the filtered image. Candidates are local maxima above the threshold.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

BACKGROUND_SIGMA_FACTOR = 3.0


def dog_gain(sigma_px: float) -> float:
    """Peak of the difference-of-Gaussians response per photo-electron of a point emitter."""
    sb = BACKGROUND_SIGMA_FACTOR * sigma_px
    return 1 / (4 * math.pi * sigma_px**2) - 1 / (2 * math.pi * (sigma_px**2 + sb**2))


def band_pass(frames: np.ndarray, sigma_px: float) -> np.ndarray:
    """Difference-of-Gaussians filter of each (Y, X) frame of a (T, Y, X) stack."""
    f = np.asarray(frames, dtype=np.float32)
    s = (0, sigma_px, sigma_px)
    sb = (0, BACKGROUND_SIGMA_FACTOR * sigma_px, BACKGROUND_SIGMA_FACTOR * sigma_px)
    return ndimage.gaussian_filter(f, s, mode="nearest") - ndimage.gaussian_filter(
        f, sb, mode="nearest"
    )


def noise_threshold(filtered: np.ndarray, snr: float) -> float:
    """``snr`` times the robust (MAD) noise level of the filtered stack."""
    sample = filtered[:: max(1, filtered.shape[0] // 64)]
    mad = float(np.median(np.abs(sample - np.median(sample))))
    return snr * 1.4826 * mad


def detect(
    frames: np.ndarray,
    *,
    sigma_px: float,
    min_photons: float | None = None,
    snr: float = 6.0,
    min_distance_px: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local maxima of the band-passed frames that stand above the threshold.

    Parameters
    ----------
    frames : (T, Y, X) in photo-electrons.
    sigma_px : PSF σ in pixels.
    min_photons : detect emitters of at least this many photo-electrons (threshold on the
        filtered peak); None: ``snr`` times the filtered noise.
    min_distance_px : half-size of the local-maximum neighbourhood.

    Returns
    -------
    (t, y, x) integer indices of the candidates, sorted by frame.
    """
    filtered = band_pass(frames, sigma_px)
    threshold = threshold_for(filtered, sigma_px, min_photons, snr)
    return find_peaks(filtered, threshold, min_distance_px)


def threshold_for(
    filtered: np.ndarray, sigma_px: float, min_photons: float | None, snr: float
) -> float:
    """The detection threshold on the band-passed stack: from photons, else from the noise."""
    if min_photons is None:
        return noise_threshold(filtered, snr)
    return min_photons * dog_gain(sigma_px)


def find_peaks(
    filtered: np.ndarray, threshold: float, min_distance_px: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t, y, x) of the local maxima of a band-passed (T, Y, X) stack above ``threshold``.

    Max pooling in torch uses all cores; its padding never wins a maximum, which gives the
    same maxima as a filter that repeats the edge pixels.
    """
    import torch
    import torch.nn.functional as F

    d = min_distance_px
    key = torch.from_numpy(np.ascontiguousarray(filtered, dtype=np.float32))[:, None]
    pooled = F.max_pool2d(key, 2 * d + 1, stride=1, padding=d)
    peaks = (key == pooled) & (key > threshold)
    t, y, x = (a.numpy() for a in torch.nonzero(peaks[:, 0], as_tuple=True))
    return t, y, x
