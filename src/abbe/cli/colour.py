"""Colour verbs: ``abbe simulate ssmlm|multicolour`` and ``abbe train spectral``."""

from __future__ import annotations

from pathlib import Path

import typer

from abbe.cli.common import out, reported_warnings, write_json

_DYES_HELP = (
    "dyes.yaml: dyes (bundled names AF647, CF660C, CF680, DY634, or {name, csv}) and the "
    "spectral region (region_x0, offset_x_px, reference_nm, dispersion_nm_per_px, range_nm)."
)


def simulate_ssmlm(
    output: Path = typer.Option(..., "-o", "--output", help="Folder to write into."),
    dyes: Path = typer.Option(
        None, "--dyes", help=_DYES_HELP + " Default: AF647, CF660C, CF680 at 5 nm/px."
    ),
    frames: int = typer.Option(200, "--frames", min=1, max=1_000_000, help="Frames."),
    size: int = typer.Option(32, "--size", min=8, max=4096, help="Spatial region edge, px."),
    pixel_size: float = typer.Option(100.0, "--pixel-size", min=1e-3, help="Camera pixel, nm."),
    emitters: float = typer.Option(2.0, "--emitters", min=0.0, help="Mean emitters per frame."),
    photons: tuple[float, float] = typer.Option(
        (1000.0, 3000.0), "--photons", metavar="MIN MAX", help="Spatial photons per emitter."
    ),
    spectral_photons: tuple[float, float] = typer.Option(
        (200.0, 1000.0), "--spectral-photons", metavar="MIN MAX", help="Spectral photons."
    ),
    background: tuple[float, float] = typer.Option(
        (5.0, 10.0), "--background", metavar="MIN MAX", help="Background photons per pixel."
    ),
    psf_sigma: float = typer.Option(130.0, "--psf-sigma-nm", min=1.0, help="PSF σ, nm."),
    camera: str = typer.Option("ideal", "--camera", help="ideal (photons), ccd, scmos, emccd."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives the same data."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
) -> None:
    """Spectroscopic SMLM frames (spatial + dispersed spectral region): writes stack.tif,
    truth.csv (frame, x_nm, y_nm, photons, spectral_photons, dye, centroid_nm), dyes.yaml,
    camera.json, params.json."""
    import yaml

    from abbe import io
    from abbe.localize.calibration import camera_record
    from abbe.simulate.spectral import default_setup, load_setup, spectral_smlm

    names = ("stack.tif", "truth.csv", "dyes.yaml", "camera.json", "params.json")
    outputs = io.OutputSet([output / n for n in names], overwrite=overwrite)
    setup = load_setup(dyes) if dyes is not None else default_setup(spatial_width=size)
    sim = spectral_smlm(
        setup,
        frames=frames,
        size=(size, size),
        pixel_size_nm=pixel_size,
        emitters_per_frame=emitters,
        photons=photons,
        spectral_photons=spectral_photons,
        background=background,
        psf_sigma_nm=psf_sigma,
        camera=camera,
        seed=seed,
    )
    dyes_file = {
        "dyes": [
            d.name if dyes is None else {"name": d.name, "csv": str(Path(dyes).resolve())}
            for d in setup.dyes
        ]
        if dyes is not None
        else setup.names,
        "spectral": setup.spectrometer.describe(),
    }
    if dyes is not None:
        # Keep the user's dyes list as written (bundled names stay names).
        dyes_file["dyes"] = yaml.safe_load(Path(dyes).read_text())["dyes"]
    meta = io.Meta(axes="TYX", pixel_size_nm=pixel_size, extra={"simulation": "ssmlm"})
    with outputs as tmp:
        io.write(tmp["stack.tif"], sim.stack, meta)
        sim.truth.to_csv(tmp["truth.csv"], index=False, float_format="%.4f")
        tmp["dyes.yaml"].write_text(yaml.safe_dump(dyes_file, sort_keys=False))
        write_json(tmp["camera.json"], camera_record(sim.camera), overwrite=False)
        write_json(tmp["params.json"], sim.params, overwrite=False)
    if not quiet:
        out.print(
            f"wrote {output}/: stack.tif ({frames} frames {sim.stack.shape[1]}×"
            f"{sim.stack.shape[2]}, spectral region from column "
            f"{setup.spectrometer.region_x0}), truth.csv ({len(sim.truth)} emitters), dyes.yaml"
        )


def simulate_multicolour(
    output: Path = typer.Option(..., "-o", "--output", help="Folder to write into."),
    size: int = typer.Option(128, "--size", min=16, max=8192, help="Image edge, px."),
    peak_photons: float = typer.Option(500.0, "--photons", min=1.0, help="Peak photons."),
    background: float = typer.Option(10.0, "--background", min=0.0, help="Photons per pixel."),
    crosstalk: float = typer.Option(
        0.2, "--crosstalk", min=0.0, max=1.0, help="Bleed-through to neighbouring channels."
    ),
    seed: int = typer.Option(0, help="Random seed: the same seed gives the same data."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
) -> None:
    """Three-colour widefield (filaments, puncta, nuclei) with bleed-through: writes
    channels.tif (CYX), truth.tif (each label in its own channel), matrix.csv, params.json."""
    import numpy as np

    from abbe import io
    from abbe.simulate.spectral import multicolour

    names = ("channels.tif", "truth.tif", "matrix.csv", "params.json")
    outputs = io.OutputSet([output / n for n in names], overwrite=overwrite)
    d = np.abs(np.subtract.outer(np.arange(3), np.arange(3)))
    matrix = np.where(d == 0, 1.0, np.where(d == 1, crosstalk, crosstalk / 4))
    sim = multicolour(
        matrix=matrix, size=size, peak_photons=peak_photons, background=background, seed=seed
    )
    meta = io.Meta(axes="CYX", pixel_size_nm=100.0, extra={"simulation": "multicolour"})
    with outputs as tmp:
        io.write(tmp["channels.tif"], sim.image, meta)
        io.write(tmp["truth.tif"], sim.truth, meta)
        tmp["matrix.csv"].write_text(
            "\n".join(",".join(f"{v:g}" for v in row) for row in sim.matrix) + "\n"
        )
        write_json(tmp["params.json"], sim.params, overwrite=False)
    if not quiet:
        out.print(f"wrote {output}/: channels.tif, truth.tif, matrix.csv, params.json")


def train_spectral(
    dyes: Path = typer.Option(..., "--dyes", help=_DYES_HELP),
    output: Path = typer.Option(..., "-o", "--output", help="Model folder to write."),
    steps: int = typer.Option(3000, "--steps", min=1, help="Training batches (64 crops)."),
    photons: tuple[float, float] = typer.Option(
        (100.0, 1500.0), "--photons", metavar="MIN MAX", help="Spectral photons to train for."
    ),
    background: tuple[float, float] = typer.Option(
        (1.0, 10.0), "--background", metavar="MIN MAX", help="Spectral background, ph/px."
    ),
    pixel_size: float = typer.Option(100.0, "--pixel-size", min=1e-3, help="Camera pixel, nm."),
    psf_sigma: float = typer.Option(130.0, "--psf-sigma-nm", min=1.0, help="PSF σ, nm."),
    reject_below: float = typer.Option(
        0.5, "--reject-below", min=0.0, max=1.0, help="Top probability under it: unassigned."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed (the same seed, the same model)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing model."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
) -> None:
    """sSMLM dye classifier: a small ResNet trained on simulated spectral crops of your dyes
    and grating, then calibrated (temperature scaling); use it with abbe localize --spectral
    DYES --model FOLDER."""
    from abbe.cli.common import check_model_folder
    from abbe.localize.spectral_model import train_for
    from abbe.simulate.spectral import load_setup

    check_model_folder(output, resume=False, overwrite=overwrite)
    setup = load_setup(dyes)
    with reported_warnings(dyes) as caveats:
        model = train_for(
            setup,
            steps=steps,
            seed=seed,
            quiet=quiet,
            photons=photons,
            background=background,
            pixel_size_nm=pixel_size,
            psf_sigma_nm=psf_sigma,
            reject_below=reject_below,
        )
    model.metrics["warnings"] = caveats
    model.save(output, overwrite=overwrite)
    if not quiet:
        cal = model.metrics["calibration"]
        out.print(
            f"trained {output} in {model.metrics['training_seconds']:.0f} s ({steps} steps): "
            f"held-out balanced accuracy {cal['balanced_accuracy']:.3f}, ECE "
            f"{cal['ece_before']:.3f} → {cal['ece_after']:.3f} (temperature "
            f"{cal['temperature']:.3g})"
        )
