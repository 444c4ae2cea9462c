"""``abbe simulate``: training and test data with known ground truth."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import numpy as np
import typer

from abbe.cli.command import AbbeTyper
from abbe.cli.common import out, write_json

app = AbbeTyper(
    help="Simulate images with ground truth from physical models.", no_args_is_help=True
)


class StructureName(str, Enum):
    filaments = "filaments"
    puncta = "puncta"
    rings = "rings"
    nuclei = "nuclei"


class SMLMStructure(str, Enum):
    """What ``abbe simulate smlm`` can draw (nuclei and rings are not SMLM samples)."""

    filaments = "filaments"
    puncta = "puncta"


class SRStructure(str, Enum):
    """What super-resolution pairs show."""

    filaments = "filaments"
    puncta = "puncta"
    rings = "rings"


class PSFName(str, Enum):
    airy = "airy"
    gaussian = "gaussian"


class CameraName(str, Enum):
    ideal = "ideal"
    ccd = "ccd"
    scmos = "scmos"
    emccd = "emccd"


@app.command("widefield")
def widefield(
    output: Path = typer.Option(..., "-o", "--output", help="Folder to write into."),
    structure: StructureName = typer.Option(StructureName.filaments, help="Specimen to draw."),
    size: int = typer.Option(256, min=8, max=16384, help="Image edge in pixels."),
    pixel_size: float = typer.Option(100.0, "--pixel-size", min=1e-3, help="Camera pixel, nm."),
    na: float = typer.Option(1.3, "--na", min=0.01, max=1.7, help="Numerical aperture."),
    wavelength: float = typer.Option(632.0, min=100, max=2000, help="Emission wavelength, nm."),
    n_immersion: float = typer.Option(
        1.515, "--n-immersion", min=1.0, max=2.0, help="Refractive index of the immersion medium."
    ),
    psf: PSFName = typer.Option(PSFName.airy, help="airy (from NA and λ) or gaussian."),
    fwhm: float = typer.Option(
        None, "--fwhm", min=1.0, help="FWHM of the Gaussian PSF, nm (default: fit to the Airy)."
    ),
    photons: float = typer.Option(100.0, min=1e-3, help="Peak signal photons above background."),
    background: float = typer.Option(10.0, min=0.0, help="Background photons per pixel."),
    read_noise: float = typer.Option(
        None, "--read-noise", min=0.0, help="Read noise, e⁻ rms (default: the camera's own)."
    ),
    camera: CameraName = typer.Option(
        CameraName.ideal, help="ideal writes photons; others write ADU."
    ),
    oversample: int = typer.Option(4, min=1, max=16, help="Fine-grid pixels per camera pixel."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives the same data."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
) -> None:
    """Widefield fluorescence image: writes input.tif, clean.tif, object.tif and params.json."""
    from abbe import io, simulate

    names = ["input.tif", "clean.tif", "object.tif", "params.json"]
    if structure is StructureName.nuclei:
        names.append("labels.tif")
    outputs = io.OutputSet([output / n for n in names], overwrite=overwrite)
    sim = simulate.widefield(
        structure.value,
        size=size,
        pixel_size_nm=pixel_size,
        na=na,
        wavelength_nm=wavelength,
        n_immersion=n_immersion,
        psf=psf.value,
        fwhm_nm=fwhm,
        photons=photons,
        background=background,
        camera=camera.value,
        read_noise=read_noise,
        oversample=oversample,
        seed=seed,
    )
    recorded = sim.input
    if camera is not CameraName.ideal and sim.params["camera"]["bits"] == 16:
        recorded = recorded.astype(np.uint16)  # what the camera writes
    units = sim.params["units"]["input"]
    meta = io.Meta(axes="YX", pixel_size_nm=pixel_size, extra={"simulation": "widefield"})
    input_meta = meta.replace(extra={**meta.extra, "units": units})
    meta = meta.replace(extra={**meta.extra, "units": "photons"})
    fine = meta.replace(pixel_size_nm=sim.object_pixel_size_nm)
    with outputs as tmp:
        io.write(tmp["input.tif"], recorded, input_meta)
        io.write(tmp["clean.tif"], sim.clean, meta)
        io.write(tmp["object.tif"], sim.object, fine)
        if sim.labels is not None:
            labels_meta = io.Meta("YX", pixel_size_nm=pixel_size, extra={"units": "labels"})
            io.write(tmp["labels.tif"], sim.labels, labels_meta)
        write_json(tmp["params.json"], sim.params, overwrite=False)
    if not quiet:
        units = sim.params["units"]["input"]
        out.print(
            f"wrote {output}/: input.tif ({units}), clean.tif and object.tif (photons), "
            f"params.json; cutoff period {sim.params['cutoff_period_nm']:.0f} nm"
        )


@app.command("superres")
def superres(
    output: Path = typer.Option(..., "-o", "--output", help="Folder to write into."),
    preset: str = typer.Option(
        "widefield-2x", "--preset", help="widefield-2x, widefield-sim or confocal-sted."
    ),
    structure: SRStructure = typer.Option(None, help="One structure (default: the mix)."),
    n: int = typer.Option(1, "-n", "--pairs", min=1, max=10_000, help="Number of pairs."),
    size: int = typer.Option(128, min=16, max=4096, help="Input edge in pixels."),
    photons: float = typer.Option(None, min=1e-3, help="Peak photons (default: drawn per pair)."),
    background: float = typer.Option(None, min=0.0, help="Background photons/px (default: drawn)."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives the same data."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
) -> None:
    """Super-resolution pairs: input/NNN.tif (widefield, photons) and target/NNN.tif (the same
    object at the preset's resolution, scale× the pixels), ready for abbe train dfcan|rcan|…"""
    from abbe import io
    from abbe.errors import InputError
    from abbe.simulate.superres import PRESETS, sr_pair

    if preset not in PRESETS:
        raise InputError(f"unknown --preset {preset!r}; choose one of {', '.join(PRESETS)}")
    update: dict = {"size": size}
    if structure is not None:
        update.update(structures=(structure.value,), mixed_fraction=0.0)
    cfg = type(PRESETS[preset]).model_validate({**PRESETS[preset].model_dump(), **update})
    names = [f"{k:03d}.tif" for k in range(n)]
    paths = [output / "input" / m for m in names] + [output / "target" / m for m in names]
    outputs = io.OutputSet([*paths, output / "params.json"], overwrite=overwrite)
    seeds = np.random.SeedSequence(seed).generate_state(n)
    params = {}
    with outputs as tmp:
        for name, s in zip(names, seeds, strict=True):
            pair = sr_pair(cfg, seed=int(s), photons=photons, background=background)
            meta = io.Meta("YX", pixel_size_nm=cfg.pixel_size_nm, extra={"units": "photons"})
            io.write(tmp[output / "input" / name], pair.input, meta)
            small = meta.replace(pixel_size_nm=cfg.pixel_size_nm / cfg.scale)
            io.write(tmp[output / "target" / name], pair.target, small)
            params[name] = {k: pair.params[k] for k in ("photons", "background", "seed")}
        record = {"preset": preset, **cfg.model_dump(), "pairs": params}
        write_json(tmp["params.json"], record, overwrite=False)
    if not quiet:
        out.print(
            f"wrote {n} pairs to {output}/input and {output}/target ({cfg.input_fwhm:.0f} nm at "
            f"{cfg.pixel_size_nm:g} nm px → {cfg.target_fwhm_nm:g} nm at "
            f"{cfg.pixel_size_nm / cfg.scale:g} nm px), params.json"
        )


@app.command("smlm")
def smlm(
    output: Path = typer.Option(..., "-o", "--output", help="Folder to write into."),
    frames: int = typer.Option(500, "--frames", min=1, max=1_000_000, help="Number of frames."),
    size: int = typer.Option(64, "--size", min=8, max=4096, help="Frame edge in pixels."),
    pixel_size: float = typer.Option(100.0, "--pixel-size", min=1e-3, help="Camera pixel, nm."),
    density: float = typer.Option(
        0.1, "--density", min=0.0, help="Active emitters per µm² per frame."
    ),
    photons: tuple[float, float] = typer.Option(
        (1000.0, 5000.0),
        "--photons",
        metavar="MIN MAX",
        help="Photons per emitter and frame (uniform).",
    ),
    background: tuple[float, float] = typer.Option(
        (20.0, 100.0),
        "--background",
        metavar="MIN MAX",
        help="Background photons per pixel (per frame).",
    ),
    psf_sigma: float = typer.Option(
        130.0, "--psf-sigma-nm", min=1.0, help="σ of the integrated-Gaussian PSF, nm."
    ),
    psf: PSFName = typer.Option(
        PSFName.gaussian, help="gaussian (σ above) or airy (from --na and --wavelength)."
    ),
    na: float = typer.Option(1.4, "--na", min=0.01, max=1.7, help="NA for the Airy PSF."),
    wavelength: float = typer.Option(600.0, min=100, max=2000, help="Emission λ (Airy), nm."),
    camera: CameraName = typer.Option(CameraName.scmos, help="ideal writes photons; others ADU."),
    structure: SMLMStructure = typer.Option(
        None, help="Blinking fluorophores on filaments or puncta (default: random emitters)."
    ),
    seed: int = typer.Option(0, help="Random seed: the same seed gives the same data."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
) -> None:
    """SMLM stack: writes stack.tif, truth.csv (frame, x_nm, y_nm, photons), camera.json,
    params.json. Positions in nm from the upper-left corner of the first pixel; frames from 1."""
    from abbe import io
    from abbe.simulate.smlm import smlm as simulate_smlm

    outputs = io.OutputSet(
        [output / n for n in ("stack.tif", "truth.csv", "camera.json", "params.json")],
        overwrite=overwrite,
    )
    sim = simulate_smlm(
        frames=frames,
        size=size,
        pixel_size_nm=pixel_size,
        density=density,
        photons=photons,
        background=background,
        psf=psf.value,
        psf_sigma_nm=psf_sigma,
        na=na,
        wavelength_nm=wavelength,
        camera=camera.value,
        structure=structure.value if structure else None,
        seed=seed,
    )
    stack = sim.stack
    if camera is not CameraName.ideal and sim.camera.bits == 16:
        stack = stack.astype(np.uint16)
    meta = io.Meta(
        axes="TYX",
        pixel_size_nm=pixel_size,
        extra={"simulation": "smlm", "units": sim.params["units"]["stack"]},
    )
    from abbe.localize.calibration import camera_record

    with outputs as tmp:
        io.write(tmp["stack.tif"], stack, meta)
        sim.truth[["frame", "x_nm", "y_nm", "photons"]].to_csv(
            tmp["truth.csv"], index=False, float_format="%.4f"
        )
        write_json(tmp["camera.json"], camera_record(sim.camera), overwrite=False)
        write_json(tmp["params.json"], sim.params, overwrite=False)
    if not quiet:
        out.print(
            f"wrote {output}/: stack.tif ({len(stack)} frames, {sim.params['units']['stack']}), "
            f"truth.csv ({len(sim.truth)} emitters), camera.json, params.json"
        )


def _register_colour() -> None:
    from abbe.cli.colour import simulate_multicolour, simulate_ssmlm

    app.command("ssmlm")(simulate_ssmlm)
    app.command("multicolour")(simulate_multicolour)


_register_colour()
