"""``abbe train``: train a model from the user's images; resumable, time-limited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer

from abbe.cli.command import AbbeTyper
from abbe.cli.common import check_model_folder, model_folder, out, reported_warnings
from abbe.errors import InputError
from abbe.train.config import TRAIN_STEPS

app = AbbeTyper(help="Train a model (CARE, Noise2Void, …) on your images.", no_args_is_help=True)


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
        base = mf.merge_config(base, mf.read_yaml(config_file))
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
    from abbe.io import find_images, pair_files, read_images
    from abbe.restore import CARE, N2V

    check_model_folder(output, resume=resume, overwrite=overwrite)
    in_files = find_images(inputs, "input")
    pairs = None
    if targets is not None:
        pairs = pair_files(
            in_files, find_images(targets, "target"), input_args=inputs, target_args=targets
        )
    xs, meta = read_images(in_files, axes)
    ys = read_images([t for _, t in pairs], axes)[0] if pairs else None
    overrides = {"max_time_s": max_time, "max_epochs": epochs, "seed": seed}
    cfg = _build_config(method, config, overrides, meta.axes, meta.pixel_size_nm)
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
    with model_folder(output):
        run = {
            "axes": meta.axes,
            "work_dir": output,
            "resume": resume,
            "quiet": quiet,
            "training_data": provenance,
        }
        model = CARE(cfg).fit(xs, ys, **run) if method == "care" else N2V(cfg).fit(xs, **run)
        model.save(output, overwrite=True)
    if not quiet:
        out.print(training_summary(model.metrics, f"model in {output}/"))


def training_summary(metrics: dict[str, Any], then: str) -> str:
    """One line on how training went, and what to do next."""
    m = metrics
    return (
        f"done: {m['steps']} steps in {m['training_seconds']:.0f} s "
        f"(stopped by {m['stopped_by']}), validation loss {m['val_loss']:.5g}; {then}"
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


_STACK = typer.Option(
    None, "--stack", help="Your SMLM stack: PSF σ, photons and background are read off it."
)
_PX = typer.Option(None, "--pixel-size", min=1e-3, help="Camera pixel, nm (default: --stack).")
_SIGMA = typer.Option(None, "--psf-sigma-nm", min=1.0, help="PSF σ, nm.")
# (0, 0) and (-1, -1) only mean "not given": the help says where the values then come from.
_PHOTONS = typer.Option(
    (0.0, 0.0),
    "--photons",
    metavar="MIN MAX",
    show_default=False,
    help="Photons per emitter (default: read off --stack).",
)
_BACKGROUND = typer.Option(
    (-1.0, -1.0),
    "--background",
    metavar="MIN MAX",
    show_default=False,
    help="Background photons per pixel (default: read off --stack).",
)
_STACK_DENSITY = typer.Option(
    None,
    "--stack-density",
    min=0.01,
    help="Typical emitters per µm² per frame in --stack, overriding what is read off its "
    "fluctuations: photons are then read from the frames' total signal.",
)
_CAMERA = typer.Option(None, "--camera", help="Camera file (JSON/YAML).")
_STRUCTURED = typer.Option(
    0.0,
    "--structured",
    min=0.0,
    max=1.0,
    help="Fraction of training frames with molecules on filaments (dense structures).",
)
_SMLM_TIME = typer.Option(
    None,
    "--max-time",
    min=1.0,
    help="Also stop after this many seconds (the model then depends on the machine's load).",
)
_SMLM_SEED = typer.Option(0, "--seed", help="Random seed of the simulations.")
_SMLM_STEPS = typer.Option(
    TRAIN_STEPS,
    "--steps",
    min=1,
    help="Training batches (rounded up to whole epochs): the same seed gives the same model "
    "on a busy or an idle machine.",
)


@app.command("localizer")
def localizer(
    stack: Path = _STACK,
    output: Path = _OUTPUT,
    pixel_size_nm: float = _PX,
    psf_sigma_nm: float = _SIGMA,
    photons: tuple[float, float] = _PHOTONS,
    background: tuple[float, float] = _BACKGROUND,
    density: float = typer.Option(
        None,
        "--density",
        min=0.01,
        help="Highest emitters per µm² per frame to train for (default: twice --stack's "
        "density where it is dense, else 2).",
    ),
    stack_density: float = _STACK_DENSITY,
    camera_file: Path = _CAMERA,
    structured: float = _STRUCTURED,
    max_time: float = _SMLM_TIME,
    steps: int | None = _SMLM_STEPS,
    resume: bool = _RESUME,
    overwrite: bool = _OVERWRITE,
    seed: int = _SMLM_SEED,
    quiet: bool = _QUIET,
) -> None:
    """Learned localization for dense SMLM: a U-Net trained on simulations matched to your
    camera, PSF, brightness and density (DECODE-style per-pixel head)."""
    from abbe.localize.learned import Localizer

    check_model_folder(output, resume=resume, overwrite=overwrite)
    config, caveats = _smlm_config(
        "localizer",
        stack=stack,
        pixel_size_nm=pixel_size_nm,
        psf_sigma_nm=psf_sigma_nm,
        photons=photons,
        background=background,
        density=(0.0, density) if density else None,
        sparse_density=(0.0, 2.0),
        stack_density=stack_density,
        camera_file=camera_file,
        structured=structured,
        max_time=max_time,
        steps=steps,
        seed=seed,
        quiet=quiet,
        extra={},
    )
    _train_smlm(Localizer(config), output, resume, overwrite, quiet, caveats)


@app.command("deepstorm")
def deepstorm(
    stack: Path = _STACK,
    output: Path = _OUTPUT,
    pixel_size_nm: float = _PX,
    psf_sigma_nm: float = _SIGMA,
    photons: tuple[float, float] = _PHOTONS,
    background: tuple[float, float] = _BACKGROUND,
    density: tuple[float, float] = typer.Option(
        (0.0, 0.0),
        "--density",
        metavar="MIN MAX",
        show_default=False,
        help="Emitters per µm² per frame to train for (default: 0.2× to 2× --stack's density "
        "where it is dense, else 1 to 8).",
    ),
    stack_density: float = _STACK_DENSITY,
    camera_file: Path = _CAMERA,
    upsampling: int = typer.Option(
        4, "--upsampling", min=1, max=8, help="Output pixels per camera pixel."
    ),
    structured: float = _STRUCTURED,
    max_time: float = _SMLM_TIME,
    steps: int | None = _SMLM_STEPS,
    resume: bool = _RESUME,
    overwrite: bool = _OVERWRITE,
    seed: int = _SMLM_SEED,
    quiet: bool = _QUIET,
) -> None:
    """Deep-STORM (Nehme 2018): dense SMLM frames to an upsampled emitter density, trained on
    simulations matched to your camera, PSF, brightness and density."""
    from abbe.localize.deepstorm import DeepStorm

    given = density != (0.0, 0.0)
    if given and (density[0] < 0 or density[1] <= density[0]):
        raise InputError(f"--density needs 0 ≤ MIN < MAX, got {density[0]:g} {density[1]:g}")
    check_model_folder(output, resume=resume, overwrite=overwrite)
    config, caveats = _smlm_config(
        "deepstorm",
        stack=stack,
        pixel_size_nm=pixel_size_nm,
        psf_sigma_nm=psf_sigma_nm,
        photons=photons,
        background=background,
        density=density if given else None,
        sparse_density=(1.0, 8.0),
        stack_density=stack_density,
        camera_file=camera_file,
        structured=structured,
        max_time=max_time,
        steps=steps,
        seed=seed,
        quiet=quiet,
        extra={"upsampling": upsampling},
    )
    _train_smlm(DeepStorm(config), output, resume, overwrite, quiet, caveats)


def _smlm_config(
    kind: str,
    *,
    stack: Path | None,
    pixel_size_nm: float | None,
    psf_sigma_nm: float | None,
    photons: tuple[float, float],
    background: tuple[float, float],
    density: tuple[float, float] | None,
    sparse_density: tuple[float, float],
    stack_density: float | None,
    camera_file: Path | None,
    structured: float,
    max_time: float | None,
    steps: int,
    seed: int,
    quiet: bool,
    extra: dict[str, Any],
) -> tuple[Any, list[str]]:
    """The training config of a learned SMLM model: settings given, the rest from --stack; and
    the warnings about the stack (camera ADU read as photons without --camera), printed now."""
    from abbe import io
    from abbe.localize.calibration import load_camera
    from abbe.localize.checks import check_photon_units
    from abbe.localize.matching import match_config, steps_training

    frames = None
    # A doubtful camera file (abbe calibrate's warnings) and ADU read as photons are both
    # recorded in the model's metrics.json.
    with reported_warnings(stack if stack is not None else camera_file) as caveats:
        camera = load_camera(camera_file) if camera_file is not None else None
        if stack is not None:
            data, meta = io.read(stack)
            pixel_size_nm = io.pixel_size(meta, pixel_size_nm, path=stack)
            frames = np.asarray(data) if data.ndim == 3 else np.asarray(data)[None]
            # The same check as abbe localize: photons and background off ADU would be wrong.
            check_photon_units(
                frames, camera=camera, units=meta.extra.get("units"), remedy="give --camera"
            )
    if pixel_size_nm is None:
        raise InputError("give --stack or --pixel-size (and the PSF, photons, background)")
    config = match_config(
        kind,
        stack=frames,
        pixel_size_nm=pixel_size_nm,
        camera=camera,
        psf_sigma_nm=psf_sigma_nm,
        photons=photons if photons[1] > 0 else None,
        background=background if background[1] >= 0 else None,
        stack_density=stack_density,
        density=density,
        sparse_density=sparse_density,
        structured=structured,
        training={**steps_training(steps, seed), "max_time_s": max_time},
        **extra,
    )
    if stack is not None and not quiet:
        read = estimated_density(frames, pixel_size_nm, camera, stack_density)
        out.print(
            f"{stack.name}: PSF σ {config.psf_sigma_nm:.0f} nm, photons "
            f"{config.photons[0]:.0f}–{config.photons[1]:.0f}, background "
            f"{config.background[0]:.0f}–{config.background[1]:.0f}{read}; training "
            f"{config.training.max_epochs * config.training.steps_per_epoch} steps for "
            f"{config.density[0]:g}–{config.density[1]:g} emitters/µm²"
        )
    return config, caveats


def estimated_density(
    frames: np.ndarray | None, pixel_size_nm: float, camera, stack_density: float | None
) -> str:
    """``", N emitters/µm² per frame (read off its fluctuations)"`` for the summary line, or
    the density given; empty where it cannot be read."""
    from abbe.localize.fluctuation import stack_conditions
    from abbe.localize.matching import MATCH_FRAMES

    if stack_density:
        return f", {stack_density:g} emitters/µm² per frame (given)"
    if frames is None or len(frames) < 30:
        return ""
    try:
        read = stack_conditions(frames[:MATCH_FRAMES], pixel_size_nm=pixel_size_nm, camera=camera)
    except InputError:
        return ""
    return f", {read.density_per_um2:.1f} emitters/µm² per frame (read off its fluctuations)"


def _train_smlm(
    model, output: Path, resume: bool, overwrite: bool, quiet: bool, caveats: list[str]
) -> None:
    """Train and save ``model``; ``caveats`` (warnings about its training data) and those of
    its training (a weak model) go into its metrics.json under ``warnings``."""
    with model_folder(output):
        with reported_warnings(output) as found:
            model.fit(work_dir=output, resume=resume, quiet=quiet)
        model.metrics["warnings"] = list(dict.fromkeys([*caveats, *found]))
        model.save(output, overwrite=True)
    if not quiet:
        out.print(
            f"trained {output} in {model.metrics['training_seconds']:.0f} s "
            f"({model.metrics['steps']} steps, validation loss {model.metrics['val_loss']:.4f}, "
            f"detection threshold {model.config.threshold:g})"
        )


@app.command("segment")
def segment(
    images: Path = typer.Option(
        None, "--images", help="Folder of images (TIFF/PNG) to train on, with --labels."
    ),
    labels: Path = typer.Option(
        None, "--labels", help="Folder of label images, same file names as --images."
    ),
    output: Path = _OUTPUT,
    start_from: str = typer.Option(
        None, "--from", help="Fine-tune this model (bundled name or folder) instead of new."
    ),
    max_time: float = typer.Option(
        600.0, "--max-time", min=1.0, help="Training time budget in seconds."
    ),
    steps: int = typer.Option(
        None,
        "--steps",
        min=1,
        help="Train this many batches instead of a time budget (rounded up to whole epochs "
        "of 50): the same seed then gives the same model on a busy or an idle machine.",
    ),
    resume: bool = _RESUME,
    overwrite: bool = _OVERWRITE,
    seed: int = _SMLM_SEED,
    quiet: bool = _QUIET,
) -> None:
    """Nuclei segmentation (U-Net + watershed): trained on simulated nuclei, mixed with your
    image/label pairs when given; --from fine-tunes a model such as nuclei-fluo."""
    from abbe.io import read_label_pairs
    from abbe.segment import Segmenter, SegmenterConfig

    if (images is None) != (labels is None):
        raise InputError("give both --images and --labels, or neither (simulations only)")
    check_model_folder(output, resume=resume, overwrite=overwrite)
    pairs = read_label_pairs(images, labels) if images is not None else None
    if start_from is not None:
        model = Segmenter.load(start_from)
        base = model.config
    else:
        base = SegmenterConfig()
        model = None
    per_epoch = base.training.steps_per_epoch
    budget = (
        {"max_time_s": None, "max_epochs": -(-steps // per_epoch)}
        if steps
        else {"max_time_s": max_time, "max_epochs": 100_000}
    )
    config = base.updated(
        **{
            "name": output.name,
            "training": {**budget, "seed": seed},
            "real_fraction": 0.5 if pairs else 0.0,
            "training_data": {
                "simulated": "abbe.simulate.cells.nuclei_image",
                "pairs": str(images) if images is not None else None,
                "from": start_from,
            },
        }
    )
    seg = Segmenter(config, network=model.network if model is not None else None)
    with model_folder(output):
        seg.fit(work_dir=output, pairs=pairs, resume=resume, quiet=quiet)
        seg.save(output, overwrite=True)
    if not quiet:
        out.print(
            f"trained {output} in {seg.metrics['training_seconds']:.0f} s "
            f"({seg.metrics['steps']} steps, validation loss {seg.metrics['val_loss']:.4f})"
        )


def _register_more() -> None:
    from abbe.cli.classify import train_classify
    from abbe.cli.colour import train_spectral
    from abbe.cli.superres import register

    register(app)
    app.command("classify")(train_classify)
    app.command("spectral")(train_spectral)


_register_more()
