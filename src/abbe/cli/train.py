"""``abbe train``: train a model from the user's images; resumable, time-limited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer

from abbe.cli.common import out
from abbe.errors import InputError

app = typer.Typer(help="Train a model (CARE, Noise2Void, …) on your images.", no_args_is_help=True)

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".zarr")


def collect_images(paths: list[Path], role: str) -> list[Path]:
    """Expand folders into their image files (sorted); check that every file exists."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir() and p.suffix.lower() != ".zarr":
            found = sorted(f for f in p.iterdir() if f.name.lower().endswith(IMAGE_SUFFIXES))
            if not found:
                raise InputError(f"no images (.tif, .png, .zarr) in this {role} folder", p)
            files += found
        elif not p.exists():
            raise InputError("file not found", p)
        else:
            files.append(p)
    return files


def match_pairs(
    inputs: list[Path], targets: list[Path], in_args: list[Path], target_args: list[Path]
) -> list[tuple[Path, Path]]:
    """Pair inputs and targets by file name (folders) or by order (lists of files)."""
    if all(p.is_dir() for p in in_args + target_args):
        by_name = {t.name: t for t in targets}
        missing = [i for i in inputs if i.name not in by_name]
        if missing:
            raise InputError(f"no target with the same name in {target_args[0]}", missing[0])
        return [(i, by_name[i.name]) for i in inputs]
    if len(inputs) != len(targets):
        raise InputError(f"{len(inputs)} inputs but {len(targets)} targets; give one per input")
    return list(zip(inputs, targets, strict=True))


def _read_all(files: list[Path], axes: str | None) -> tuple[list[np.ndarray], Any]:
    from abbe import io

    arrays, metas = [], []
    for f in files:
        data, meta = io.read(f, axes=axes)
        arrays.append(np.asarray(data, dtype=np.float32))
        metas.append(meta)
    first = metas[0].axes
    for f, m in zip(files, metas, strict=True):
        if m.axes != first:
            raise InputError(f"has axes {m.axes} but {files[0].name} has {first}; give --axes", f)
    return arrays, metas[0]


def _build_config(
    method: str,
    config_file: Path | None,
    overrides: dict[str, Any],
    axes: str,
    pixel_size: float | None,
) -> Any:
    from abbe.models import folder as mf
    from abbe.restore import RestorationConfig, default_n2v_config

    base = (default_n2v_config() if method == "n2v" else RestorationConfig()).model_dump()
    if config_file is not None:
        user = mf.read_yaml(config_file)
        for key, value in user.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                base[key] = {**base[key], **value}
            else:
                base[key] = value
    training = {k: v for k, v in overrides.items() if v is not None}
    base["training"] = {**base["training"], **training}
    base["method"] = method
    spatial = "ZYX" if "Z" in axes and base.get("axes") == "ZYX" else base.get("axes", "YX")
    base["axes"] = spatial
    if pixel_size is not None:
        base["pixel_size_nm"] = pixel_size
    return mf.validate(RestorationConfig, base, config_file or "command-line options")


def _train(
    method: str,
    inputs: list[Path],
    targets: list[Path] | None,
    output: Path,
    max_time: float | None,
    epochs: int | None,
    config: Path | None,
    axes: str | None,
    resume: bool,
    overwrite: bool,
    seed: int | None,
    quiet: bool,
) -> None:
    from abbe.restore import CARE, N2V
    from abbe.restore.model import prepare_output_folder

    in_files = collect_images(inputs, "input")
    pairs = None
    if targets is not None:
        pairs = match_pairs(in_files, collect_images(targets, "target"), inputs, targets)
    xs, meta = _read_all(in_files, axes)
    ys = _read_all([t for _, t in pairs], axes)[0] if pairs else None
    overrides = {"max_time_s": max_time, "max_epochs": epochs, "seed": seed}
    cfg = _build_config(method, config, overrides, meta.axes, meta.pixel_size_nm)
    prepare_output_folder(output, resume=resume, overwrite=overwrite)
    output.mkdir(parents=True, exist_ok=True)
    provenance = {
        "inputs": [str(f) for f in in_files][:50],
        "targets": [str(t) for _, t in pairs][:50] if pairs else None,
        "axes": meta.axes,
        "pixel_size_nm": meta.pixel_size_nm,
    }
    if not quiet:
        kind = "pairs" if pairs else "noisy images"
        budget = f", at most {max_time:g} s" if max_time else ""
        out.print(
            f"training {method.upper()} on {len(in_files)} {kind} ({meta.axes}){budget}; "
            f"checkpoints in {output}/checkpoints"
        )
    if method == "care":
        model = CARE(cfg).fit(
            xs,
            ys,
            axes=meta.axes,
            work_dir=output,
            resume=resume,
            quiet=quiet,
            training_data=provenance,
        )
    else:
        model = N2V(cfg).fit(
            xs,
            axes=meta.axes,
            work_dir=output,
            resume=resume,
            quiet=quiet,
            training_data=provenance,
        )
    model.save(output, overwrite=True)
    if not quiet:
        m = model.metrics
        out.print(
            f"done: {m['steps']} steps in {m['training_seconds']:.0f} s "
            f"(stopped by {m['stopped_by']}), validation loss {m['val_loss']:.5g}; "
            f"model in {output}/"
        )


_INPUT = typer.Option(..., "--input", "-i", help="Noisy images: files or folders.")
_OUTPUT = typer.Option(..., "-o", "--output", help="Model folder to create.")
_MAX_TIME = typer.Option(None, "--max-time", min=1.0, help="Training time budget in seconds.")
_EPOCHS = typer.Option(None, "--epochs", min=1, help="Most epochs (each = steps_per_epoch).")
_CONFIG = typer.Option(None, "--config", help="YAML with network/training/normalization.")
_AXES = typer.Option(None, "--axes", help="Axes of the images, e.g. YX, SYX, ZYX.")
_RESUME = typer.Option(False, "--resume", help="Continue from the last checkpoint.")
_OVERWRITE = typer.Option(False, "--overwrite", help="Replace a model already in the folder.")
_SEED = typer.Option(None, "--seed", help="Random seed (default from the config: 0).")
_QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar or summary.")


@app.command("care")
def care(
    inputs: list[Path] = _INPUT,
    targets: list[Path] = typer.Option(
        ..., "--target", "-t", help="Clean images: files or folders (same names)."
    ),
    output: Path = _OUTPUT,
    max_time: float = _MAX_TIME,
    epochs: int = _EPOCHS,
    config: Path = _CONFIG,
    axes: str = _AXES,
    resume: bool = _RESUME,
    overwrite: bool = _OVERWRITE,
    seed: int = _SEED,
    quiet: bool = _QUIET,
) -> None:
    """CARE: supervised restoration from pairs of noisy/blurred and clean images."""
    _train(
        "care",
        inputs,
        targets,
        output,
        max_time,
        epochs,
        config,
        axes,
        resume,
        overwrite,
        seed,
        quiet,
    )


@app.command("n2v")
def n2v(
    inputs: list[Path] = _INPUT,
    output: Path = _OUTPUT,
    max_time: float = _MAX_TIME,
    epochs: int = _EPOCHS,
    config: Path = _CONFIG,
    axes: str = _AXES,
    resume: bool = _RESUME,
    overwrite: bool = _OVERWRITE,
    seed: int = _SEED,
    quiet: bool = _QUIET,
) -> None:
    """Noise2Void (N2V2): self-supervised denoising from noisy images alone."""
    _train(
        "n2v", inputs, None, output, max_time, epochs, config, axes, resume, overwrite, seed, quiet
    )


@app.command("localizer")
def localizer(
    stack: Path = typer.Option(
        None, "--stack", help="Your SMLM stack: PSF σ, photons and background are read off it."
    ),
    output: Path = _OUTPUT,
    pixel_size_nm: float = typer.Option(
        None, "--pixel-size", min=1e-3, help="Camera pixel, nm (default: from --stack)."
    ),
    psf_sigma_nm: float = typer.Option(None, "--psf-sigma-nm", min=1.0, help="PSF σ, nm."),
    photons: tuple[float, float] = typer.Option(
        (0.0, 0.0), "--photons", help="MIN MAX photons per emitter (default: from --stack)."
    ),
    background: tuple[float, float] = typer.Option(
        (-1.0, -1.0), "--background", help="MIN MAX background photons/px (default: --stack)."
    ),
    density: float = typer.Option(
        2.0, "--density", min=0.01, help="Highest emitters per µm² per frame to train for."
    ),
    stack_density: float = typer.Option(
        None,
        "--stack-density",
        min=0.01,
        help="Typical emitters per µm² per frame in --stack (dense data): photons are then "
        "read from the frames' total signal.",
    ),
    camera_file: Path = typer.Option(None, "--camera", help="Camera file (JSON/YAML)."),
    structured: float = typer.Option(
        0.0,
        "--structured",
        min=0.0,
        max=1.0,
        help="Fraction of training frames with molecules on filaments (dense structures).",
    ),
    max_time: float = typer.Option(
        600.0, "--max-time", min=1.0, help="Training time budget in seconds."
    ),
    resume: bool = _RESUME,
    overwrite: bool = _OVERWRITE,
    seed: int = typer.Option(0, "--seed", help="Random seed of the simulations."),
    quiet: bool = _QUIET,
) -> None:
    """Learned localization for dense SMLM: a U-Net trained on simulations matched to your
    camera, PSF, brightness and density (DECODE-style per-pixel head)."""
    from abbe import io
    from abbe.localize.calibration import camera_record, load_camera
    from abbe.localize.learned import Localizer, LocalizerConfig, estimate_conditions

    if (output / "config.json").exists() and not (overwrite or resume):
        raise InputError("a model is already in this folder; pass --overwrite", output)
    camera = load_camera(camera_file) if camera_file is not None else None
    settings: dict[str, Any] = {}
    if stack is not None:
        data, meta = io.read(stack)
        pixel_size_nm = pixel_size_nm or meta.pixel_size_nm
        if pixel_size_nm is None:
            raise InputError("pixel size unknown: give --pixel-size NM", stack)
        frames = np.asarray(data) if data.ndim == 3 else np.asarray(data)[None]
        settings = estimate_conditions(
            frames, pixel_size_nm=pixel_size_nm, camera=camera, density=stack_density
        )
        if not quiet:
            out.print(
                f"{stack.name}: PSF σ {settings['psf_sigma_nm']:.0f} nm, photons "
                f"{settings['photons'][0]:.0f}–{settings['photons'][1]:.0f}, background "
                f"{settings['background'][0]:.0f}–{settings['background'][1]:.0f} "
                f"({settings['spots']} spots)"
            )
    if pixel_size_nm is None:
        raise InputError("give --stack or --pixel-size (and the PSF, photons, background)")
    sigma = psf_sigma_nm or settings.get("psf_sigma_nm")
    ph = photons if photons[1] > 0 else settings.get("photons")
    bg = background if background[1] >= 0 else settings.get("background")
    if sigma is None or ph is None or bg is None:
        raise InputError("give --stack, or --psf-sigma-nm, --photons and --background")
    record = camera_record(camera) if camera is not None else {"kind": "ideal"}
    base = LocalizerConfig()
    cfg = LocalizerConfig(
        pixel_size_nm=pixel_size_nm,
        psf_sigma_nm=sigma,
        photons=tuple(ph),
        background=tuple(bg),
        density=(0.0, density),
        camera=record,
        structured=structured,
        training=base.training.model_copy(
            update={"max_time_s": max_time, "max_epochs": 100_000, "seed": seed}
        ),
    )
    model = Localizer(cfg).fit(work_dir=output, resume=resume, quiet=quiet)
    model.save(output, overwrite=True)
    if not quiet:
        out.print(
            f"trained {output} in {model.metrics['training_seconds']:.0f} s "
            f"({model.metrics['steps']} steps, validation loss {model.metrics['val_loss']:.4f})"
        )
