"""The verify pipeline: how far to trust a restored or super-resolved image.

One call gathers what abbe can say about a result: its SQUIRREL error map against the data it
was computed from (:func:`abbe.trust.error_map`), the resolution of both by decorrelation
analysis, the scores and FRC against a ground truth where one exists (simulations), and the
coverage of an uncertainty map. ``abbe verify`` writes it as ``report.json`` and a figure
(:func:`abbe.report.verify_figure`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from abbe.errors import AbbeWarning, InputError
from abbe.metrics.image import ImageScores, evaluate
from abbe.metrics.resolution import DecorrelationResult, FRCResult, decorrelation, frc
from abbe.trust.error_map import ErrorMap, error_map
from abbe.trust.uncertainty import empirical_coverage, laplace_half_width

#: Central interval whose coverage of the truth is reported.
COVERAGE = 0.9
#: Coverage of that interval in one image that counts as calibrated (issue 21: 80–97 %).
COVERAGE_BAND = (0.80, 0.97)


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify` found; ``to_dict()`` is the content of ``report.json``.

    Attributes
    ----------
    result : (Y, X) the result checked.
    pixel_size_nm : the result's pixel size (1 when unknown on the reference's grid: then
        resolutions are in pixels).
    decorrelation : decorrelation analysis of the result.
    reference : (Y, X) the data the result was computed from, or None.
    reference_pixel_size_nm : its pixel size, or None without a reference.
    reference_decorrelation : decorrelation analysis of the reference, or None.
    error_map : SQUIRREL error map of the result against the reference, or None.
    truth : (Y, X) ground truth on the result's grid, or None.
    scores : PSNR, SSIM, MS-SSIM and NRMSE against the truth, or None; its ``normalization``
        says whether they were computed raw or normalized (:func:`abbe.metrics.evaluate`).
    frc : Fourier ring correlation of the result with the truth, or None.
    uncertainty : (Y, X) the result's uncertainty map (Laplace standard deviations), or None.
    coverage_90 : fraction of this image's pixels whose truth lies in the 90 % interval, or
        None.
    coverage_90_by_uncertainty : the same in the lower and upper halves of the uncertainty map
        (mostly flat background, mostly structure), or None.
    pixel_size_known : False when no pixel size was given on a shared grid: sizes are then
        1 and resolutions are in pixels.
    units, reference_units : intensity units of the result and the reference, when known
        (the uncertainty map is in the result's, the error map in the reference's).
    """

    result: np.ndarray = field(repr=False)
    pixel_size_nm: float
    decorrelation: DecorrelationResult = field(repr=False)
    reference: np.ndarray | None = field(default=None, repr=False)
    reference_pixel_size_nm: float | None = None
    reference_decorrelation: DecorrelationResult | None = field(default=None, repr=False)
    error_map: ErrorMap | None = None
    truth: np.ndarray | None = field(default=None, repr=False)
    scores: ImageScores | None = None
    frc: FRCResult | None = field(default=None, repr=False)
    uncertainty: np.ndarray | None = field(default=None, repr=False)
    coverage_90: float | None = None
    coverage_90_by_uncertainty: tuple[float, float] | None = None
    pixel_size_known: bool = True
    units: str | None = None
    reference_units: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The scores as plain JSON values (``report.json`` without the file names)."""
        # An unknown pixel size is written as null, never as a made-up 1 nm: the distances
        # below are then in pixels, which ``length_unit`` says.
        known = self.pixel_size_known
        d: dict[str, Any] = {
            "output_pixel_size_nm": self.pixel_size_nm if known else None,
            "input_pixel_size_nm": self.reference_pixel_size_nm if known else None,
            "length_unit": "nm" if known else "px",
        }
        if self.error_map is not None:
            d["error_map"] = self.error_map.summary()
        res: dict[str, float | None] = {"output_decorr_nm": _finite(self.decorrelation)}
        if self.reference_decorrelation is not None:
            res["input_decorr_nm"] = _finite(self.reference_decorrelation)
        if self.frc is not None:
            res["frc_against_truth_nm"] = _finite(self.frc)
        d["resolution"] = res
        if self.scores is not None:
            d["metrics"] = self.scores.as_dict()
        if self.uncertainty is not None:
            d["uncertainty"] = {"median_sd": float(np.median(self.uncertainty))}
            if self.coverage_90 is not None:
                lo, hi = COVERAGE_BAND
                d["uncertainty"].update(
                    coverage_90=self.coverage_90,
                    coverage_90_low_uncertainty=self.coverage_90_by_uncertainty[0],
                    coverage_90_high_uncertainty=self.coverage_90_by_uncertainty[1],
                    coverage_90_band=[lo, hi],
                    calibrated=bool(lo <= self.coverage_90 <= hi),
                )
        return d


def verify(
    result: np.ndarray,
    *,
    reference: np.ndarray | None = None,
    truth: np.ndarray | None = None,
    uncertainty: np.ndarray | None = None,
    pixel_size_nm: float | None = None,
    reference_pixel_size_nm: float | None = None,
    normalize: bool | None = None,
    units: str | None = None,
    reference_units: str | None = None,
    truth_units: str | None = None,
) -> VerifyReport:
    """Error map, resolution, scores and uncertainty coverage of a restored image.

    Error map: Culley et al., Nat Methods 15:263 (2018). Decorrelation: Descloux et al.,
    Nat Methods 16:918 (2019). FRC: Nieuwenhuizen et al., Nat Methods 10:557 (2013).

    Parameters
    ----------
    result : (Y, X) the restored or super-resolved image.
    reference : (Y, X) the data it was computed from, on the same grid or a whole multiple
        of the result's pixel; enables the error map.
    truth : (Y, X) ground truth on the result's grid (simulations); enables the scores, the
        FRC and the uncertainty's coverage.
    uncertainty : (Y, X) the result's uncertainty map, Laplace standard deviations √2·b as
        abbe's models write them.
    pixel_size_nm, reference_pixel_size_nm : pixel sizes; when one is missing it is taken
        from the other on the same grid (see :func:`grid_pixel_sizes`).
    normalize : how the scores against the truth treat intensities, as in
        :func:`abbe.metrics.evaluate` (and ``abbe evaluate``): None normalizes exactly when the
        result and the truth are not on one scale, with an :class:`~abbe.errors.AbbeWarning`;
        True always; False never.
    units, reference_units, truth_units : intensity units of the result, the reference and
        the truth (file metadata), when known; result and truth in different units count as
        different scales. They label the figure's colour bars.

    Returns
    -------
    VerifyReport with the maps and the scores.

    Raises
    ------
    InputError
        If an image is not 2D, shapes differ from the result's, or a pixel size is needed
        and unknown.
    """
    out = _plane(result, "result")
    ref = _plane(reference, "reference") if reference is not None else None
    gt = _plane(truth, "truth") if truth is not None else None
    unc = _plane(uncertainty, "uncertainty") if uncertainty is not None else None
    for name, arr in (("truth", gt), ("uncertainty", unc)):
        if arr is not None and arr.shape != out.shape:
            raise InputError(f"{name} shape {arr.shape} differs from the result's {out.shape}")
    known = pixel_size_nm is not None or (ref is not None and reference_pixel_size_nm is not None)
    if ref is None:
        out_px, in_px = (pixel_size_nm if pixel_size_nm is not None else 1.0), None
    else:
        out_px, in_px = grid_pixel_sizes(
            out.shape,
            ref.shape,
            pixel_size_nm=pixel_size_nm,
            reference_pixel_size_nm=reference_pixel_size_nm,
        )
        if out_px is None:
            raise InputError("pixel size of the result unknown: give pixel_size_nm")
        if in_px is None:
            raise InputError("pixel size of the reference unknown: give reference_pixel_size_nm")
    if not known:
        warnings.warn(
            "pixel size unknown: resolutions and distances are in pixels, not nm; give the "
            "pixel size (--output-pixel-size, or pixel_size_nm)",
            AbbeWarning,
            stacklevel=2,
        )
    emap = dec_in = None
    if ref is not None:
        emap = error_map(out, ref, output_pixel_size_nm=out_px, reference_pixel_size_nm=in_px)
        dec_in = _decorrelation(ref, in_px, "input")
    scores = ring = coverage = by_level = None
    if gt is not None:
        scores = evaluate(out, gt, normalize=normalize, units=units, truth_units=truth_units)
        ring = frc(out, gt, pixel_size_nm=out_px)
        if unc is not None:
            coverage, by_level = image_coverage(gt, out, unc)
            _warn_if_miscalibrated(coverage)
    return VerifyReport(
        result=out,
        pixel_size_nm=out_px,
        decorrelation=_decorrelation(out, out_px, "result"),
        reference=ref,
        reference_pixel_size_nm=in_px,
        reference_decorrelation=dec_in,
        error_map=emap,
        truth=gt,
        scores=scores,
        frc=ring,
        uncertainty=unc,
        coverage_90=coverage,
        coverage_90_by_uncertainty=by_level,
        pixel_size_known=known,
        units=units,
        reference_units=reference_units,
    )


def image_coverage(
    truth: np.ndarray, result: np.ndarray, sd: np.ndarray
) -> tuple[float, tuple[float, float]]:
    """Coverage of the 90 % interval in one image, overall and in the lower and upper halves
    of its uncertainty map.

    Parameters
    ----------
    truth, result : (Y, X) ground truth and restored image.
    sd : (Y, X) Laplace standard deviations √2·b, as abbe's models write them.

    Returns
    -------
    ``(coverage, (coverage where sd ≤ its median, coverage where sd > its median))``.
    """
    # The map holds Laplace standard deviations √2·b; the 90 % interval is ±b·ln 10.
    half = laplace_half_width(sd / np.sqrt(2.0), COVERAGE)
    inside = np.abs(truth - result) <= half
    low = sd <= np.median(sd)
    # A constant map has no upper half: report its coverage for both.
    upper = float(np.mean(inside[~low])) if (~low).any() else float(np.mean(inside))
    return empirical_coverage(truth, result, half), (float(np.mean(inside[low])), upper)


def _warn_if_miscalibrated(coverage: float) -> None:
    lo, hi = COVERAGE_BAND
    if lo <= coverage <= hi:
        return
    how = "over-confident: the map is too small" if coverage < lo else "too cautious"
    warnings.warn(
        f"the 90 % uncertainty interval covers {100 * coverage:.1f} % of this image's pixels "
        f"(calibrated: {100 * lo:.0f}–{100 * hi:.0f} %); the uncertainty is {how} here. "
        "Train the model with pairs like this image (abbe train care calibrates on its "
        "validation images), or do not read the map as a 90 % interval here",
        AbbeWarning,
        stacklevel=3,
    )


def grid_pixel_sizes(
    result_shape: Sequence[int],
    reference_shape: Sequence[int],
    *,
    pixel_size_nm: float | None = None,
    reference_pixel_size_nm: float | None = None,
) -> tuple[float | None, float | None]:
    """Pixel sizes of a result and its reference, one taken from the other on the same grid.

    Parameters
    ----------
    result_shape, reference_shape : the two images' shapes.
    pixel_size_nm, reference_pixel_size_nm : the sizes known, or None.

    Returns
    -------
    ``(result, reference)`` pixel sizes; both 1.0 when neither is known on the same grid
    (resolutions are then in pixels); None where a size is unknown and cannot be inferred.
    """
    out_px, in_px = pixel_size_nm, reference_pixel_size_nm
    same = tuple(result_shape) == tuple(reference_shape)
    if out_px is None and in_px is None and same:
        return 1.0, 1.0
    if out_px is None:
        return (in_px, in_px) if same else (None, in_px)
    if in_px is None:
        return (out_px, None) if not same else (out_px, out_px)
    return float(out_px), float(in_px)


def _plane(image: Any, name: str) -> np.ndarray:
    arr = np.asarray(image, dtype=np.float64)
    if arr.ndim != 2:
        raise InputError(f"verify takes 2D images; the {name} has shape {arr.shape}")
    return arr


def _finite(res: DecorrelationResult | FRCResult) -> float | None:
    return float(res.resolution_nm) if np.isfinite(res.resolution_nm) else None


def _decorrelation(image: np.ndarray, pixel_size_nm: float, which: str) -> DecorrelationResult:
    """Decorrelation analysis of one image; where it reads no resolution, a warning says why."""
    dec = decorrelation(image, pixel_size_nm=pixel_size_nm)
    if not np.isfinite(dec.resolution_nm):
        warnings.warn(
            f"decorrelation of the {which}: no resolution (withheld): {dec.reason}",
            AbbeWarning,
            stacklevel=3,
        )
    return dec
