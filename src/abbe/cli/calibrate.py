"""``abbe calibrate``: a camera file for ``--camera``, its gain read off the stack's own noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from abbe.cli.common import check_outputs, out, print_json, reported_warnings, write_json
from abbe.errors import InputError


def calibrate(
    stack_path: Path = typer.Argument(..., help="Raw SMLM stack in ADU (TYX, ≥ 10 frames)."),
    output: Path = typer.Option(..., "-o", "--output", help="Camera file to write (.json)."),
    offset: float = typer.Option(
        ..., "--offset", help="Camera baseline, ADU (datasheet, or the mean of dark frames)."
    ),
    em_gain: float = typer.Option(
        1.0,
        "--em-gain",
        min=1.0,
        help="EM gain of an EMCCD as set on the camera (1: CCD or sCMOS). Above 1 the "
        "register's excess noise (F² = 2) is taken into account.",
    ),
    qe: float = typer.Option(1.0, "--qe", min=1e-3, max=1.0, help="Quantum efficiency."),
    read_noise: float = typer.Option(
        0.0,
        "--read-noise",
        min=0.0,
        help="Read noise, e⁻ rms at the output (datasheet, or dark frames); taken out of the "
        "noise before the gain is read.",
    ),
    pixel_size_nm: float = typer.Option(
        None, "--pixel-size", min=1e-3, help="Camera pixel, nm (default: from the file)."
    ),
    axes: str = typer.Option(None, "--axes", help="Axes of the stack, e.g. TYX."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing file."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
) -> None:
    """A camera file for --camera: gain by photon transfer on the stack itself.

    The gain comes from the shot noise of the frames' finest detail, which emitters do not
    reach at any density, checked against the noise of the dimmest pixels over time; a gain
    that cannot be checked is warned about, on the console and in the file's "warnings". Also
    prints the PSF σ read off the stack's power spectrum (give --pixel-size if the file
    has none). Use the file with ``abbe localize --camera`` and ``abbe train localizer|deepstorm``.
    """
    from abbe import io
    from abbe.localize.calibration import (
        camera_by_photon_transfer,
        camera_record,
        psf_sigma_from_spectrum,
    )

    if output.suffix.lower() != ".json":
        raise InputError("the camera file is written as JSON: name it *.json", output)
    check_outputs([output], overwrite=overwrite)
    data, meta = io.read(stack_path, axes=axes)
    stack = io.as_tyx(data, meta.axes, path=stack_path, what="localization")
    # The first 200 frames are enough for each pixel's variance.
    frames = np.asarray(stack[: min(len(stack), 200)], dtype=np.float32)
    if not np.isfinite(frames).all():
        raise InputError("the stack holds NaN or infinite values", stack_path)
    with reported_warnings(stack_path) as caveats:
        try:
            camera = camera_by_photon_transfer(
                frames, offset=offset, em_gain=em_gain, qe=qe, read_noise=read_noise
            )
        except InputError as exc:
            raise InputError(exc.args[0], stack_path) from exc
    transfer = camera.extra["photon_transfer"]
    record = {**camera_record(camera), "photon_transfer": transfer, "warnings": caveats}
    adu_per_electron = camera.gain * camera.em_gain
    px = pixel_size_nm or meta.pixel_size_nm
    sigma = None
    if px is not None and min(frames.shape[1:]) >= 16:
        sigma = psf_sigma_from_spectrum(frames - offset, px)
    write_json(output, record, overwrite=overwrite)
    if as_json:
        print_json({**record, "adu_per_photoelectron": adu_per_electron, "psf_sigma_nm": sigma})
    elif not quiet:
        em = (
            f" (gain {record['gain']:.4f} ADU/e⁻ behind EM gain {em_gain:g})" if em_gain > 1 else ""
        )
        psf = f"; PSF σ ≈ {sigma:.0f} nm from the power spectrum" if sigma else ""
        out.print(
            f"{stack_path}: {adu_per_electron:.3f} ADU per photo-electron by photon transfer on "
            f"the {transfer['method']}{em}{psf} → {output} (use with --camera)"
        )
