"""``abbe localize``: single-molecule localizations (nm, photons) from an SMLM stack."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import typer

from abbe.cli.common import check_outputs, err, out, progress
from abbe.cli.options import compute, device_option, memory_option, threads_option
from abbe.errors import InputError, Interrupted


def localize(
    stack_path: Path = typer.Argument(..., help="SMLM stack (TYX TIFF or OME-Zarr)."),
    output: Path = typer.Option(
        ..., "-o", "--output", help="Localizations: .csv (abbe), _ts.csv (ThunderSTORM), .hdf5."
    ),
    method: str = typer.Option(
        "fit",
        "--method",
        help="fit (MLE Gaussian fitting), deepstorm (train a Deep-STORM matched to this stack, "
        "then localize), or a model folder from abbe train localizer|deepstorm.",
    ),
    stack_density: float = typer.Option(
        None,
        "--stack-density",
        min=0.01,
        help="deepstorm: typical emitters per µm² per frame (dense data; else read off fits).",
    ),
    train_time: float = typer.Option(
        300.0, "--train-time", min=1.0, help="deepstorm: training time budget, seconds."
    ),
    pixel_size_nm: float = typer.Option(
        None, "--pixel-size", min=1e-3, help="Camera pixel, nm (default: from the file)."
    ),
    psf_sigma_nm: float = typer.Option(
        None, "--psf-sigma-nm", min=1.0, help="PSF σ, nm (default: fitted per emitter)."
    ),
    camera_file: Path = typer.Option(
        None, "--camera", help="Camera file (JSON/YAML: offset, gain, em_gain, qe, read_noise)."
    ),
    offset: float = typer.Option(None, "--offset", help="Camera baseline, ADU."),
    gain: float = typer.Option(None, "--gain", min=1e-9, help="ADU per electron (output)."),
    em_gain: float = typer.Option(None, "--em-gain", min=1.0, help="EM gain (EMCCD)."),
    qe: float = typer.Option(None, "--qe", min=1e-3, max=1.0, help="Quantum efficiency."),
    read_noise: float = typer.Option(None, "--read-noise", min=0.0, help="Read noise, e⁻ rms."),
    min_photons: float = typer.Option(
        None, "--min-photons", min=0.0, help="Detection threshold, photons (default: 6× noise)."
    ),
    max_emitters: int = typer.Option(
        3, "--max-emitters", min=1, max=5, help="Emitters fitted together where spots overlap."
    ),
    render: Path = typer.Option(None, "--render", help="Also write a super-resolved TIFF."),
    render_pixel_nm: float = typer.Option(
        10.0, "--render-pixel", min=0.1, help="Pixel of the render, nm."
    ),
    drift: bool = typer.Option(False, "--drift", help="Correct drift by cross-correlation."),
    axes: str = typer.Option(None, "--axes", help="Axes of the stack, e.g. TYX."),
    memory_mb: float = memory_option(),
    device: str = device_option(),
    threads: int = threads_option(),
    chunk_frames: int = typer.Option(200, "--chunk", min=1, help="Frames per batch."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
) -> None:
    """Detect and fit single emitters; positions in nm from the corner of the first pixel."""
    import pandas as pd

    from abbe import io
    from abbe.io.tables import localization_files, write_localizations
    from abbe.localize import fit
    from abbe.localize.calibration import camera_from_flags, load_camera, looks_offset
    from abbe.localize.render import correct_drift, estimate_drift, render_gaussian

    model_dir = output.with_name(output.name.split(".")[0] + "_deepstorm")
    check_outputs(
        [
            *localization_files(output),
            render,
            model_dir / "config.yaml" if method == "deepstorm" else None,
        ],
        overwrite=overwrite,
    )
    options = compute(device, threads, memory_mb)
    learned = None
    if method not in ("fit", "deepstorm"):
        from abbe.localize.learned import load_model

        if not Path(method).is_dir():
            raise InputError(f"unknown --method {method!r}: use fit, deepstorm or a model folder")
        learned = load_model(method)
    data, meta = io.read(stack_path, axes=axes)
    stack = io.as_tyx(data, meta.axes, path=stack_path, what="localization")
    px = io.pixel_size(meta, pixel_size_nm, path=stack_path)
    if learned is not None and abs(learned.config.pixel_size_nm / px - 1) > 0.02:
        raise InputError(
            f"the {learned.method} model was trained for {learned.config.pixel_size_nm:g} nm "
            f"pixels, the stack has {px:g} nm; train one for this camera "
            f"(abbe train {learned.method} --stack …)",
            stack_path,
        )
    camera = load_camera(camera_file) if camera_file is not None else None
    flags = camera_from_flags(
        offset=offset, gain=gain, em_gain=em_gain, qe=qe, read_noise=read_noise
    )
    camera = camera or flags
    if camera is None and meta.extra.get("units") != "photons" and looks_offset(stack):
        err.print(
            f"warning: {stack_path}: values read as photons, but the data look like camera "
            "output with a baseline; give --camera or --offset/--gain for correct photons",
            markup=False,
        )
    if method == "deepstorm":
        learned = _train_deepstorm(
            stack, px, camera, psf_sigma_nm, stack_density, train_time, model_dir, quiet
        )
    parts = []
    starts = range(0, stack.shape[0], chunk_frames)
    for start in progress(starts, "localizing", total=len(starts), quiet=quiet):
        frames = np.asarray(stack[start : start + chunk_frames], dtype=np.float32)
        if learned is not None:
            locs = learned.predict(frames, camera=camera, **options)
        else:
            locs = fit(
                frames,
                pixel_size_nm=px,
                psf_sigma_nm=psf_sigma_nm,
                camera=camera,
                min_photons=min_photons,
                max_emitters=max_emitters,
            )
        locs["frame"] += start
        parts.append(locs)
    locs = pd.concat(parts, ignore_index=True)
    field_nm = (stack.shape[1] * px, stack.shape[2] * px)
    if drift and len(locs):
        locs = correct_drift(locs, estimate_drift(locs, field_nm=field_nm))
    info = {"pixel_size_nm": px, "psf_sigma_nm": psf_sigma_nm, "source": str(stack_path)}
    written = write_localizations(
        output, locs, pixel_size_nm=px, shape=stack.shape, overwrite=overwrite, info=info
    )
    if render is not None:
        image = render_gaussian(locs, field_nm=field_nm, pixel_size_nm=render_pixel_nm)
        io.write(
            render,
            image,
            io.Meta("YX", pixel_size_nm=render_pixel_nm, extra={"units": "localizations"}),
            overwrite=overwrite,
        )
    if not quiet:
        median = float(np.median(locs["uncertainty_nm"])) if len(locs) else float("nan")
        out.print(
            f"{stack_path} → {', '.join(str(p) for p in written)}: {len(locs)} localizations "
            f"in {stack.shape[0]} frames, median precision {median:.1f} nm"
            + (f"; render {render}" if render is not None else "")
        )


def _train_deepstorm(stack, px, camera, psf_sigma_nm, stack_density, seconds, folder, quiet):
    """A Deep-STORM trained on simulations matched to ``stack``, saved in ``folder``."""
    from abbe.localize.deepstorm import DeepStorm
    from abbe.localize.matching import match_config

    cfg = match_config(
        "deepstorm",
        stack=stack,
        pixel_size_nm=px,
        camera=camera,
        psf_sigma_nm=psf_sigma_nm,
        stack_density=stack_density,
        training={"max_time_s": seconds, "max_epochs": 100_000},
    )
    if not quiet:
        out.print(
            f"training Deep-STORM for {seconds:.0f} s on simulations: PSF σ "
            f"{cfg.psf_sigma_nm:.0f} nm, photons {cfg.photons[0]:.0f}–{cfg.photons[1]:.0f}, "
            f"background {cfg.background[0]:.0f}–{cfg.background[1]:.0f}, "
            f"{cfg.density[0]:g}–{cfg.density[1]:g} emitters/µm²"
        )
    with tempfile.TemporaryDirectory() as work:
        try:
            model = DeepStorm(cfg).fit(work_dir=work, quiet=quiet)
        except Interrupted as exc:
            raise Interrupted(
                f"{exc.message.split(';')[0]}; nothing was written (abbe train deepstorm -o "
                "FOLDER trains a model that --resume can continue)"
            ) from None
    model.save(folder, overwrite=True)
    if not quiet:
        out.print(f"model saved in {folder} (reuse it with --method {folder})")
    return model
