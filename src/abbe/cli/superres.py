"""``abbe train dfcan|rcan|resunet|gan``: super-resolution models from simulated pairs, from
the user's low/high-resolution pairs, or from high-resolution images degraded by the crappifier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer

from abbe.cli.common import check_model_folder, model_folder, out
from abbe.errors import InputError
from abbe.models.base import revalidated

_HELP = {
    "dfcan": "DFCAN (Fourier channel attention; Qiao et al. 2021), loss MSE + 0.1·(1 − SSIM).",
    "rcan": "RCAN (residual channel attention; Zhang 2018, Chen 2021), L1 loss.",
    "resunet": "Res-UNet (PSSR; Fang et al. 2021), MSE + SSIM + Fourier loss.",
    "gan": "GAN (pix2pix/DFGAN style): Res-UNet generator against a PatchGAN discriminator.",
}


def train_superres(
    arch: str,
    *,
    output: Path,
    inputs: list[Path] | None,
    targets: list[Path] | None,
    crappify: list[Path] | None,
    preset: str,
    scale: int | None,
    pixel_size: float | None,
    target_fwhm: float | None,
    n_pairs: int,
    max_time: float,
    config_file: Path | None,
    resume: bool,
    overwrite: bool,
    seed: int,
    quiet: bool,
) -> None:
    """Build the config, gather or simulate pairs, train, save."""
    from abbe.restore.superres import SuperResolution
    from abbe.simulate.superres import PRESETS

    check_model_folder(output, resume=resume, overwrite=overwrite)
    if preset not in PRESETS:
        raise InputError(f"unknown --preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if (inputs is None) != (targets is None):
        raise InputError("give both --input and --target (pairs), or neither")
    if inputs is not None and crappify is not None:
        raise InputError("give pairs (--input/--target) or --crappify, not both")
    config = _config(arch, scale, config_file, max_time, seed)
    scale = config.network.scale
    model = SuperResolution(config.updated(name=output.name))
    with model_folder(output):  # a failure before the first checkpoint leaves no folder
        if inputs is None and crappify is None:
            updates: dict[str, Any] = {"scale": scale}
            if pixel_size is not None:
                updates["pixel_size_nm"] = pixel_size
            if target_fwhm is not None:
                updates["target_fwhm_nm"] = target_fwhm
            sim = revalidated(PRESETS[preset], updates)
            if not quiet:
                out.print(
                    f"training {arch.upper()} ×{scale} on {n_pairs} simulated pairs ({preset}: "
                    f"{sim.input_fwhm:.0f} nm at {sim.pixel_size_nm:g} nm px → "
                    f"{sim.target_fwhm_nm:g} nm at {sim.pixel_size_nm / scale:g} nm px), "
                    f"at most {max_time:g} s; checkpoints in {output}/checkpoints"
                )
            model.fit_simulated(sim, n_pairs=n_pairs, work_dir=output, resume=resume, quiet=quiet)
        else:
            xs, ys, provenance, px = _user_pairs(inputs, targets, crappify, scale, seed)
            if px is not None:
                model.config = model.config.updated(pixel_size_nm=px)
            if not quiet:
                out.print(
                    f"training {arch.upper()} ×{scale} on {len(xs)} pairs, at most {max_time:g} s; "
                    f"checkpoints in {output}/checkpoints"
                )
            model.fit(xs, ys, work_dir=output, resume=resume, quiet=quiet, training_data=provenance)
        model.save(output, overwrite=True)
    if not quiet:
        from abbe.cli.train import training_summary

        out.print(
            training_summary(model.metrics, f"use: abbe restore IMAGE -m {output} -o OUT.tif")
        )


def _config(arch: str, scale: int | None, config_file: Path | None, max_time: float, seed: int):
    from abbe.models import folder as mf
    from abbe.restore.superres import SuperResConfig, default_config

    gan = arch == "gan"
    base = default_config("resunet" if gan else arch, scale=scale or 2, gan=gan).model_dump()
    if config_file is not None:
        base = mf.merge_config(base, mf.read_yaml(config_file))
        if scale is not None:
            base["network"]["scale"] = scale
    base["training"] = {**base["training"], "max_time_s": max_time, "max_epochs": 100_000}
    base["training"]["seed"] = seed
    return mf.validate(SuperResConfig, base, config_file or "command-line options")


def _user_pairs(
    inputs: list[Path] | None,
    targets: list[Path] | None,
    crappify: list[Path] | None,
    scale: int,
    seed: int,
) -> tuple[list[np.ndarray], list[np.ndarray], dict[str, Any], float | None]:
    """Read pairs (targets ``scale``× larger), or crappify high-resolution images into pairs."""
    from abbe import io
    from abbe.io import find_images, pair_files

    def read2d(path: Path) -> tuple[np.ndarray, Any]:
        data, meta = io.read(path)
        a = np.asarray(data, dtype=np.float32)
        if a.ndim != 2:
            raise InputError(
                f"super-resolution training takes 2D images; this has axes {meta.axes}", path
            )
        if not np.all(np.isfinite(a)):
            raise InputError("contains NaN or infinite values", path)
        return a, meta

    if crappify is not None:
        from abbe.simulate.superres import crappify as degrade

        files = find_images(crappify, "high-resolution")
        xs, ys = [], []
        rng = np.random.default_rng(seed)
        px = None
        for f in files:
            hi, meta = read2d(f)
            h, w = (hi.shape[0] // scale) * scale, (hi.shape[1] // scale) * scale
            # Several signal levels per image, so the model meets more than one noise level.
            for photons in (30.0, 100.0, 300.0):
                xs.append(degrade(hi, scale, photons=photons, seed=int(rng.integers(2**31))))
                ys.append(hi[:h, :w])
            if meta.pixel_size_nm:
                px = meta.pixel_size_nm * scale
        provenance = {"crappified": [str(f) for f in files][:50], "scale": scale}
        return xs, ys, provenance, px
    assert inputs is not None and targets is not None
    in_files = find_images(inputs, "input")
    pairs = pair_files(
        in_files, find_images(targets, "target"), input_args=inputs, target_args=targets
    )
    xs, ys = [], []
    px = None
    for a, b in pairs:
        x, meta = read2d(a)
        y, _ = read2d(b)
        if y.shape != (x.shape[0] * scale, x.shape[1] * scale):
            raise InputError(
                f"target {y.shape} must be {scale}× the input {x.shape} (same field, "
                f"{scale}× the pixels); give --scale to match",
                b,
            )
        xs.append(x)
        ys.append(y)
        px = px or meta.pixel_size_nm
    provenance = {
        "inputs": [str(a) for a, _ in pairs][:50],
        "targets": [str(b) for _, b in pairs][:50],
    }
    return xs, ys, provenance, px


def register(app: typer.Typer) -> None:
    """Add one ``abbe train <arch>`` command per architecture."""
    for arch in ("dfcan", "rcan", "resunet", "gan"):
        app.command(arch, help=_doc(arch), short_help=_HELP[arch])(_command(arch))


def _doc(arch: str) -> str:
    return (
        f"{_HELP[arch]} Super-resolution ×2 (or --scale) from simulated widefield → "
        "high-resolution pairs (--preset), from your pairs (--input low-res, --target "
        "high-res with scale× the pixels), or from high-resolution images degraded into "
        "inputs (--crappify, PSSR)."
    )


def _command(arch: str):
    def command(
        output: Path = typer.Option(..., "-o", "--output", help="Model folder to create."),
        inputs: list[Path] = typer.Option(
            None, "--input", "-i", help="Low-resolution images: files or folders."
        ),
        targets: list[Path] = typer.Option(
            None, "--target", "-t", help="High-resolution images (scale× the pixels), same names."
        ),
        crappify: list[Path] = typer.Option(
            None, "--crappify", help="High-resolution images to degrade into training inputs."
        ),
        preset: str = typer.Option(
            "widefield-2x",
            "--preset",
            help="Simulated pairs: widefield-2x (250→80 nm), widefield-sim (→120 nm), "
            "confocal-sted (180→60 nm at 50 nm px).",
        ),
        scale: int = typer.Option(None, "--scale", help="Upsampling: 1, 2 or 4 (default 2)."),
        pixel_size: float = typer.Option(
            None, "--pixel-size", min=1.0, help="Input pixel size of the simulated pairs, nm."
        ),
        target_fwhm: float = typer.Option(
            None, "--target-fwhm", min=10.0, help="Resolution of the simulated targets, nm."
        ),
        n_pairs: int = typer.Option(256, "--pairs", min=4, help="Simulated training fields."),
        max_time: float = typer.Option(
            600.0, "--max-time", min=1.0, help="Training time budget in seconds."
        ),
        config: Path = typer.Option(None, "--config", help="YAML with network/loss/training."),
        resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace a model in the folder."),
        seed: int = typer.Option(0, "--seed", help="Random seed."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
    ) -> None:
        train_superres(
            arch,
            output=output,
            inputs=inputs or None,
            targets=targets or None,
            crappify=crappify or None,
            preset=preset,
            scale=scale,
            pixel_size=pixel_size,
            target_fwhm=target_fwhm,
            n_pairs=n_pairs,
            max_time=max_time,
            config_file=config,
            resume=resume,
            overwrite=overwrite,
            seed=seed,
            quiet=quiet,
        )

    return command
