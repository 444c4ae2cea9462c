"""``abbe resolution``: how fine is the detail an image really holds?"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer

from abbe.cli.common import check_outputs, out, print_json, reported_warnings
from abbe.errors import InputError


def resolution(
    image: Path = typer.Argument(..., help="Image (YX), or a time series (TYX) split odd/even."),
    second: Path = typer.Argument(None, help="An independent second image of the same field."),
    pixel_size_nm: float = typer.Option(None, "--pixel-size", min=1e-3, help="Pixel size, nm."),
    gain: float = typer.Option(
        None,
        "--gain",
        min=1e-9,
        help="ADU per photoelectron: single-image FRC splits the detected counts, so it needs "
        "shot-noise-limited data (little read noise, offset map subtracted).",
    ),
    offset: float = typer.Option(0.0, "--offset", help="Camera baseline, ADU."),
    threshold: str = typer.Option(
        "1/7", "--threshold", help="FRC threshold: 1/7, half-bit, 3sigma."
    ),
    na: float = typer.Option(
        None, "--na", min=0.01, max=1.7, help="Numerical aperture, to check against the optics."
    ),
    wavelength: float = typer.Option(
        None, "--wavelength", min=100, max=2000, help="Emission wavelength, nm (with --na)."
    ),
    axes: str = typer.Option(None, "--axes", help="Axes of the image(s)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (with the curves)."),
    plot: Path = typer.Option(None, "-o", "--plot", help="Write the curves to this PNG."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing plot."),
    seed: int = typer.Option(0, "--seed", help="Seed of the binomial split."),
) -> None:
    """Resolution in nm by Fourier ring correlation and decorrelation analysis."""
    # Results the checks put in doubt (noise that is not photon noise, a curve reaching the
    # Nyquist limit, disagreement with the optics or with each other) are printed as warnings
    # and listed in the JSON's warnings field.
    from abbe import io, report
    from abbe.metrics import resolution as R

    check_outputs([plot], overwrite=overwrite)
    data, meta = io.read(image, axes=axes)
    px = io.pixel_size(meta, pixel_size_nm, path=image)
    cutoff, cutoff_source = _optical_cutoff(image, meta, na, wavelength)
    notes: list[str] = []
    frc = None
    with reported_warnings(image) as caveats:
        if second is not None:
            other, _ = io.read(second, axes=axes)
            if other.shape != data.shape:
                raise InputError(f"shape {other.shape} differs from {image} ({data.shape})", second)
            first = _plane(data, meta.axes, image)
            frc = R.frc(
                first,
                _plane(other, meta.axes, second),
                pixel_size_nm=px,
                threshold=threshold,
                independent=True,
            )
        elif "T" in meta.axes and data.shape[meta.axes.index("T")] >= 2:
            stack = io.transpose_to(np.asarray(data), meta.axes, "TYX")
            frc = R.frc_time_series(stack, pixel_size_nm=px, threshold=threshold)
            first = stack.mean(axis=0)
        else:
            first = _plane(data, meta.axes, image)
            photons = _photons(first, gain, offset, meta)
            if photons is None:
                notes.append(
                    "single-image FRC needs photon counts: give --gain (ADU per photon) and "
                    "--offset"
                )
            else:
                frc = R.frc_single(photons, pixel_size_nm=px, threshold=threshold, seed=seed)
        dec = R.decorrelation(first, pixel_size_nm=px)
        R.cross_check(decorrelation=dec, frc=frc, pixel_size_nm=px, optical_cutoff_nm=cutoff)
    result = {
        "image": str(image),
        "pixel_size_nm": px,
        "optical_cutoff_nm": cutoff,
        "frc_nm": _finite(frc.resolution_nm) if frc else None,
        "frc_threshold": threshold if frc else None,
        "frc_noise_correlation": _finite(frc.noise_correlation) if frc else None,
        "decorr_nm": _finite(dec.resolution_nm),
        "decorr_a0": _finite(dec.a0),
        "frc_curve": frc.as_dict() if frc else None,
        "decorr_curve": dec.as_dict(),
        "notes": notes,
        "warnings": caveats,
    }
    if plot is not None:
        report.resolution_plot(
            plot,
            frc=frc,
            decorrelation=dec,
            pixel_size_nm=px,
            title=image.name,
            overwrite=overwrite,
        )
    if as_json:
        print_json(result)
        return
    head = f"{image.name}: pixel {px:g} nm"
    if cutoff is not None:
        head += f", optical cutoff {cutoff:.0f} nm ({cutoff_source})"
    out.print(head)
    if frc is not None:
        out.print(f"  FRC ({threshold}): {_frc_text(frc)}")
    dtext = (
        f"{result['decorr_nm']:.1f} nm (A0 {dec.a0:.2f})"
        if result["decorr_nm"]
        else "not measured (see the warning)"
    )
    if result["decorr_nm"] and any(m.startswith("decorrelation") for m in caveats):
        dtext += ", doubtful (see the warning)"
    out.print(f"  decorrelation: {dtext}")
    for n in notes:
        out.print(f"  note: {n}")
    if plot is not None:
        out.print(f"  curves: {plot}")


def _frc_text(frc: Any) -> str:
    """The FRC line: never a bare number the checks put in doubt."""
    if not np.isfinite(frc.resolution_nm):
        return f"not measured: the curve reaches the Nyquist limit ({frc.nyquist_nm:.0f} nm)"
    text = f"{frc.resolution_nm:.1f} nm"
    return f"{text}, doubtful (see the warning)" if frc.doubts else text


def _optical_cutoff(
    image: Path, meta: Any, na: float | None, wavelength: float | None
) -> tuple[float | None, str]:
    """λ/(2·NA) from --na/--wavelength, else from an ``abbe simulate`` params.json beside the
    image (the simulation's own record), else unknown."""
    import json

    if (na is None) != (wavelength is None):
        raise InputError("give --na and --wavelength together (the cutoff is λ/2NA)")
    if na is not None and wavelength is not None:
        return wavelength / (2 * na), "--na/--wavelength"
    params = image.parent / "params.json"
    if meta.extra.get("simulation") == "widefield" and params.is_file():
        try:
            value = json.loads(params.read_text()).get("cutoff_period_nm")
        except (OSError, ValueError, AttributeError):
            value = None
        if isinstance(value, (int, float)) and value > 0:
            return float(value), "params.json"
    return None, ""


def _finite(value: float) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _plane(data: Any, axes: str, path: Path) -> np.ndarray:
    from abbe import io

    return io.plane_yx(data, axes, path=path, needs="resolution takes a 2D image (or TYX series)")


def _photons(image: np.ndarray, gain: float | None, offset: float, meta: Any) -> Any:
    if gain is not None:
        return np.clip((np.asarray(image, dtype=np.float64) - offset) / gain, 0, None)
    if meta.extra.get("units") == "photons":
        return np.clip(image, 0, None)
    return None
