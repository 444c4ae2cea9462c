"""``abbe localize``: single-molecule localizations (nm, photons) from an SMLM stack."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import typer

from abbe.cli.cluster import cluster_option, resume_option
from abbe.cli.common import check_outputs, out, progress, reported_warnings, write_json
from abbe.cli.options import compute, device_option, memory_option, threads_option
from abbe.errors import InputError, Interrupted
from abbe.train.config import LOCALIZE_STEPS


def localize(
    stack_path: Path = typer.Argument(..., help="SMLM stack (TYX TIFF or OME-Zarr)."),
    output: Path = typer.Option(
        ...,
        "-o",
        "--output",
        help="Localizations: .csv (abbe), _ts.csv (ThunderSTORM), .hdf5; doubts about them "
        "(also printed) in NAME.warnings.json.",
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
        help="deepstorm: typical emitters per µm² per frame, overriding what is read off the "
        "stack's fluctuations (with the photons and background).",
    ),
    train_steps: int = typer.Option(
        LOCALIZE_STEPS,
        "--train-steps",
        min=1,
        help="deepstorm: training batches (the same seed gives the same model on any load).",
    ),
    train_time: float = typer.Option(
        None,
        "--train-time",
        min=1.0,
        help="deepstorm: also stop training after this many seconds (results then depend on "
        "the machine's load).",
    ),
    seed: int = typer.Option(0, "--seed", help="deepstorm: seed of the training."),
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
    threshold: float = typer.Option(
        None,
        "--threshold",
        min=1e-6,
        help="Learned models: detection threshold, emitters per peak (default: the model's, "
        "calibrated after training); lower finds more.",
    ),
    max_emitters: int = typer.Option(
        3, "--max-emitters", min=1, max=5, help="Emitters fitted together where spots overlap."
    ),
    spectral: Path = typer.Option(
        None,
        "--spectral",
        help="sSMLM: a dyes.yaml (dyes, and where the spectral region lies: region_x0, "
        "offset_x_px, reference_nm, dispersion_nm_per_px, range_nm). Localizes in the spatial "
        "region and adds dye, centroid_nm, centroid_crlb_nm (and p_<dye> with --model).",
    ),
    spectral_model: Path = typer.Option(
        None,
        "--model",
        help="With --spectral: a spectral model folder (abbe train spectral) for calibrated "
        "dye probabilities; default the classical nearest-centroid dye.",
    ),
    render: Path = typer.Option(
        None, "--render", help="Also write a super-resolved TIFF (RGB by dye with --spectral)."
    ),
    render_pixel_nm: float = typer.Option(
        10.0, "--render-pixel", min=0.1, help="Pixel of the render, nm."
    ),
    drift: bool = typer.Option(False, "--drift", help="Correct drift by cross-correlation."),
    axes: str = typer.Option(None, "--axes", help="Axes of the stack, e.g. TYX."),
    memory_mb: float = memory_option(),
    device: str = device_option(),
    threads: int = threads_option(),
    chunk_frames: int = typer.Option(
        200, "--chunk", min=1, help="Frames per batch (per task with --cluster)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    cluster: str = cluster_option(),
    resume: bool = resume_option(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
) -> None:
    """Detect and fit single emitters; positions in nm from the corner of the first pixel."""
    import pandas as pd

    from abbe import io
    from abbe.io.tables import localization_files, write_localizations
    from abbe.localize.calibration import camera_from_flags, load_camera
    from abbe.localize.checks import check_localizations, check_photon_units
    from abbe.localize.render import correct_drift, estimate_drift, render_gaussian

    model_dir = output.with_name(output.name.split(".")[0] + "_deepstorm")
    if cluster is not None:
        from abbe.predict.distributed import parse_cluster

        parse_cluster(cluster)  # a bad value is a one-line error before any work
    if resume and all(p.exists() for p in localization_files(output)):
        if not quiet:
            out.print(f"{output} is finished already (--resume); nothing to do")
        return
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
    if threshold is not None and method == "fit":
        raise InputError("--threshold is for learned models; fitting takes --min-photons")
    setup, colour_model = _spectral_inputs(spectral, spectral_model, output)
    if setup is not None and cluster is not None:
        raise InputError("--spectral runs in one process for now: leave out --cluster", spectral)
    data, meta = io.read(stack_path, axes=axes)
    stack = io.as_tyx(data, meta.axes, path=stack_path, what="localization")
    px = io.pixel_size(meta, pixel_size_nm, path=stack_path)
    whole = stack
    if setup is not None:
        stack = _spatial_region(stack, setup, stack_path)
    if learned is not None and abs(learned.config.pixel_size_nm / px - 1) > 0.02:
        raise InputError(
            f"the {learned.method} model was trained for {learned.config.pixel_size_nm:g} nm "
            f"pixels, the stack has {px:g} nm; train one for this camera "
            f"(abbe train {learned.method} --stack …)",
            stack_path,
        )
    flags = camera_from_flags(
        offset=offset, gain=gain, em_gain=em_gain, qe=qe, read_noise=read_noise
    )
    # Said before the work (which may train a model for minutes), not after it; a doubtful
    # camera file's warnings (abbe calibrate's) go into this output's warnings too.
    with reported_warnings(stack_path) as early:
        camera = load_camera(camera_file) if camera_file is not None else None
        camera = camera or flags
        whole_camera = camera
        if setup is not None and camera is not None:
            camera = _region_camera(camera, setup.spectrometer.region_x0)
        check_photon_units(
            stack,
            camera=camera,
            units=meta.extra.get("units"),
            remedy="give --camera or --offset/--gain",
        )
    with reported_warnings(stack_path) as caveats:
        if method == "deepstorm":
            learned = _train_deepstorm(
                stack,
                px,
                camera,
                psf_sigma_nm,
                stack_density,
                (train_steps, train_time, seed),
                model_dir,
                quiet,
            )
        elif learned is not None:
            _model_caveats(learned, method)
        starts = list(range(0, stack.shape[0], chunk_frames))
        settings = {
            "pixel_size_nm": px,
            "psf_sigma_nm": psf_sigma_nm,
            "camera": camera,
            "min_photons": min_photons,
            "max_emitters": max_emitters,
            "threshold": threshold,
            "options": options,
        }
        if cluster is not None:
            source = model_dir if method == "deepstorm" else (None if learned is None else method)
            parts = _localize_on_cluster(
                cluster, stack_path, axes, starts, chunk_frames, source, settings, quiet
            )
        else:
            parts = [
                localize_frames(
                    np.asarray(stack[start : start + chunk_frames], dtype=np.float32),
                    start,
                    learned,
                    settings,
                )
                for start in progress(starts, "localizing", total=len(starts), quiet=quiet)
            ]
        if setup is not None:
            parts = [
                _coloured(
                    part,
                    whole,
                    start,
                    chunk_frames,
                    whole_camera,
                    setup,
                    colour_model,
                    px,
                    psf_sigma_nm,
                    options,
                )
                for start, part in zip(starts, parts, strict=True)
            ]
        locs = pd.concat(parts, ignore_index=True)
        read = (learned.metrics.get("stack_conditions") or {}) if method == "deepstorm" else {}
        if read.get("density_source") == "fluctuations" and read.get("stack_density"):
            from abbe.localize.matching import check_found_density

            # Localize, measure, compare with what the stack's blinking said.
            check_found_density(
                locs, shape=stack.shape, pixel_size_nm=px, expected=read["stack_density"]
            )
        check_localizations(
            locs,
            shape=stack.shape,
            pixel_size_nm=px,
            **_check_options(learned, threshold, psf_sigma_nm),
        )
    caveats = [*early, *caveats]
    field_nm = (stack.shape[1] * px, stack.shape[2] * px)
    if drift and len(locs):
        locs = correct_drift(locs, estimate_drift(locs, field_nm=field_nm))
    info = {
        "pixel_size_nm": px,
        "psf_sigma_nm": psf_sigma_nm,
        "source": str(stack_path),
        "warnings": caveats,
    }
    written = write_localizations(
        output, locs, pixel_size_nm=px, shape=stack.shape, overwrite=overwrite, info=info
    )
    written += _write_caveats(output, stack_path, caveats)
    if render is not None and setup is not None:
        from abbe.localize.spectral import DYE_COLOURS, render_by_colour

        names = colour_model.dyes if colour_model is not None else setup.names
        image = render_by_colour(locs, names, field_nm=field_nm, pixel_size_nm=render_pixel_nm)
        colours = {n: DYE_COLOURS[k % len(DYE_COLOURS)] for k, n in enumerate(names)}
        extra = {"units": "RGB 0-1, channels red, green, blue", "dye_colours": colours}
        io.write(
            render,
            image,
            io.Meta("CYX", pixel_size_nm=render_pixel_nm, extra=extra),
            overwrite=overwrite,
        )
    elif render is not None:
        image = render_gaussian(locs, field_nm=field_nm, pixel_size_nm=render_pixel_nm)
        io.write(
            render,
            image,
            io.Meta("YX", pixel_size_nm=render_pixel_nm, extra={"units": "localizations"}),
            overwrite=overwrite,
        )
    if not quiet:
        precision = (
            f", median precision {np.median(locs['uncertainty_nm']):.1f} nm" if len(locs) else ""
        )
        colour = ""
        if setup is not None and len(locs):
            counts = locs["dye"].value_counts()
            colour = "; " + ", ".join(f"{k} {v}" for k, v in counts.items())
        out.print(
            f"{stack_path} → {', '.join(str(p) for p in written)}: {len(locs)} localizations "
            f"in {stack.shape[0]} frame{'s' if stack.shape[0] != 1 else ''}{precision}{colour}"
            + (f"; render {render}" if render is not None else "")
        )


def localize_frames(frames: np.ndarray, start: int, learned: Any, settings: dict) -> Any:
    """Localizations of ``frames`` (the stack's frames from ``start``), frame numbers counted
    from the stack's first frame: one chunk's work, in this process or on a worker."""
    from abbe.localize import fit

    if learned is not None:
        locs = learned.predict(
            frames,
            camera=settings["camera"],
            threshold=settings["threshold"],
            **settings["options"],
        )
    else:
        locs = fit(
            frames,
            pixel_size_nm=settings["pixel_size_nm"],
            psf_sigma_nm=settings["psf_sigma_nm"],
            camera=settings["camera"],
            min_photons=settings["min_photons"],
            max_emitters=settings["max_emitters"],
        )
    locs["frame"] += start
    return locs


def _localize_chunk_task(
    ref: Any, stack_path: Path, axes: str | None, start: int, count: int, settings: dict
) -> Any:
    """On a worker: read frames ``start … start + count`` and localize them."""
    from abbe import io
    from abbe.predict.distributed import captured, worker_model

    def work() -> Any:
        data, meta = io.read(stack_path, axes=axes, lazy=True)
        stack = io.as_tyx(data, meta.axes, path=stack_path, what="localization")
        part = stack[start : start + count]
        frames = np.asarray(part.compute() if hasattr(part, "compute") else part, np.float32)
        learned = worker_model(ref) if ref is not None else None
        # One thread per task: workers are processes with one thread each.
        return localize_frames(
            frames, start, learned, {**settings, "options": {**settings["options"], "threads": 1}}
        )

    return captured(work)


def _localize_on_cluster(
    cluster: str,
    stack_path: Path,
    axes: str | None,
    starts: list[int],
    count: int,
    model: Path | str | None,
    settings: dict,
    quiet: bool,
) -> list[Any]:
    """Frame chunks as tasks; the tables come back in frame order. Each task's warnings are
    raised again here (inside the caller's block, so they reach the output's warnings)."""
    from abbe.cli.cluster import cluster_client
    from abbe.predict import distributed as dist

    ref = None
    if model is not None:
        ref = dist.model_ref(model, loader="abbe.localize.learned:load_model")
    with cluster_client(cluster, quiet=quiet) as client:
        calls = [
            (_localize_chunk_task, (ref, stack_path, axes, start, count, settings), {})
            for start in starts
        ]
        results = dist.run_tasks(client, calls, description="localizing", quiet=quiet)
    return [dist.replay(r) for r in results]


def _spectral_inputs(spectral: Path | None, model_path: Path | None, output: Path):
    """The dyes file's setup and the spectral model (checked against each other), or Nones."""
    if spectral is None:
        if model_path is not None:
            raise InputError("--model is for colour: give --spectral dyes.yaml too", model_path)
        return None, None
    name = output.name.lower()
    if not name.endswith(".csv") or name.endswith((".thunderstorm.csv", "_ts.csv")):
        # ThunderSTORM's and Picasso's tables have no place for dye and centroid columns.
        raise InputError(
            "--spectral writes dye and centroid columns, which only abbe's CSV holds; "
            "name the output NAME.csv",
            output,
        )
    from abbe.simulate.spectral import load_setup

    setup = load_setup(spectral)
    model = None
    if model_path is not None:
        from abbe import models
        from abbe.localize.spectral_model import SpectralClassifier

        model = models.load(model_path)
        if not isinstance(model, SpectralClassifier):
            raise InputError(
                f"holds a {model.config.method} model, not a spectral one (abbe train spectral)",
                model_path,
            )
        model.check_setup(setup, spectral)
    return setup, model


def _spatial_region(stack, setup, path: Path):
    """The spatial image: the columns before the spectral region."""
    x0 = setup.spectrometer.region_x0
    if stack.shape[2] <= x0:
        raise InputError(
            f"the frames are {stack.shape[2]} columns wide, but the dyes file puts the "
            f"spectral region at column {x0}; check spectral.region_x0",
            path,
        )
    return stack[:, :, :x0]


def _region_camera(camera, columns: int):
    """The camera of the first ``columns`` columns (per-pixel maps cut to them)."""
    import dataclasses

    def cut(value):
        return value[..., :columns] if isinstance(value, np.ndarray) and value.ndim == 2 else value

    return dataclasses.replace(
        camera,
        offset=cut(camera.offset),
        read_noise=cut(camera.read_noise),
        gain_map=cut(camera.gain_map),
    )


def _with_colour(locs, frames, camera, setup, model, px, psf_sigma_nm, options):
    """``locs`` (frames from 1 within ``frames``) with the colour columns added."""
    import pandas as pd

    from abbe.localize.spectral import spectral_columns

    frames = np.asarray(frames, dtype=np.float32)
    photons = camera.to_photons(frames) if camera is not None else frames
    if psf_sigma_nm is not None:
        sigma_px = psf_sigma_nm / px
    elif "sigma_nm" in locs.columns and len(locs):
        sigma_px = float(np.nanmedian(locs["sigma_nm"])) / px
    else:
        sigma_px = 1.3
    compute = {k: v for k, v in options.items() if k in ("device", "threads")}
    cols = spectral_columns(
        photons, locs, setup, pixel_size_nm=px, sigma_px=sigma_px, model=model, **compute
    )
    return pd.concat([locs, cols], axis=1)


def _coloured(locs, whole, start, count, camera, setup, model, px, psf_sigma_nm, options):
    """One chunk's localizations (frames counted from the stack's first) with the colour
    columns, read from frames ``start … start + count`` of the whole camera frame."""
    locs = locs.assign(frame=locs["frame"] - start)
    frames = whole[start : start + count]
    locs = _with_colour(locs, frames, camera, setup, model, px, psf_sigma_nm, options)
    locs["frame"] += start
    return locs


def _check_options(learned, threshold: float | None, psf_sigma_nm: float | None) -> dict:
    """How :func:`abbe.localize.checks.check_localizations` judges this method's result."""
    if learned is None:
        return {
            "sigma_fitted": psf_sigma_nm is None,
            "density_remedy": "for dense SMLM use --method deepstorm",
            "empty_hint": "no spot rose above the detection threshold; check the camera "
            "(--camera, --offset/--gain) and lower --min-photons",
        }
    cfg = learned.config
    used = threshold or cfg.threshold
    return {
        "sigma_fitted": False,
        # Trained up to density[1]; half as much again is still near the model's range.
        "density_limit": 1.5 * cfg.density[1],
        "density_remedy": f"the model was trained up to {cfg.density[1]:g} per µm²: train one "
        f"for this density (abbe train {learned.method} --stack … --density …)",
        "empty_hint": f"the detection threshold {used:g} admits no peak; lower --threshold, "
        "train the model longer, or check that it was trained for this data "
        f"(abbe train {learned.method} --stack …)",
    }


def _model_caveats(learned, name: str) -> None:
    """Warn again, where a model is used, what its training found doubtful (metrics.json)."""
    import warnings

    from abbe.errors import AbbeWarning

    for message in learned.metrics.get("warnings") or []:
        warnings.warn(f"model {name}: {message}", AbbeWarning, stacklevel=2)


def _caveats_path(output: Path) -> Path:
    """The sidecar of a localization table: ``locs.csv`` → ``locs.warnings.json``."""
    return output.with_name(output.name.split(".")[0] + ".warnings.json")


def _write_caveats(output: Path, source: Path, caveats: list[str]) -> list[Path]:
    """Write the warnings beside the table (a table has no place for them); remove a sidecar
    left by an earlier run over the same output, which no longer applies."""
    path = _caveats_path(output)
    if not caveats:
        path.unlink(missing_ok=True)
        return []
    write_json(path, {"source": str(source), "warnings": caveats}, overwrite=True)
    return [path]


def _train_deepstorm(stack, px, camera, psf_sigma_nm, stack_density, budget, folder, quiet):
    """A Deep-STORM trained on simulations matched to ``stack`` (only the camera needs to be
    known: density, photons and background are read off the stack), saved in ``folder``.
    ``budget`` is (steps, seconds or None, seed)."""
    from abbe.localize.deepstorm import DeepStorm
    from abbe.localize.matching import match_stack

    steps, seconds, seed = budget
    cfg, found = match_stack(
        "deepstorm",
        stack,
        pixel_size_nm=px,
        camera=camera,
        psf_sigma_nm=psf_sigma_nm,
        stack_density=stack_density,
        steps=steps,
        seed=seed,
    )
    if seconds:
        cfg = cfg.updated(training={"max_time_s": seconds})
    if not quiet:
        out.print(_conditions_line(found))
        out.print(
            f"training Deep-STORM for {cfg.training.max_epochs * cfg.training.steps_per_epoch} "
            f"steps (seed {seed}) on simulations: PSF σ {cfg.psf_sigma_nm:.0f} nm, photons "
            f"{cfg.photons[0]:.0f}–{cfg.photons[1]:.0f}, background "
            f"{cfg.background[0]:.0f}–{cfg.background[1]:.0f}, "
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
    model.metrics["stack_conditions"] = found
    model.save(folder, overwrite=True)
    if not quiet:
        out.print(f"model saved in {folder} (reuse it with --method {folder})")
    return model


def _conditions_line(found: dict) -> str:
    """What the stack holds, as read (or given): one line before training."""
    density = found.get("stack_density")
    source = found.get("density_source")
    where = "given" if source == "given" else "read off its fluctuations"
    dens = f"{density:.1f} emitters/µm² per frame ({where}), " if density else ""
    photons = 0.5 * (found["photons"][0] + found["photons"][1])
    background = (found["background"][0] + found["background"][1] - 1.0) / 2
    return (
        f"stack: {dens}about {photons:.0f} photons per emitter, background "
        f"{background:.1f} photons/px, PSF σ {found['psf_sigma_nm']:.0f} nm"
    )
