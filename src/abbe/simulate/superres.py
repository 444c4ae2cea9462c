"""Training pairs for super-resolution: a diffraction-limited image and a high-resolution
image of the same object, and a crappifier that degrades real high-resolution images.

The object is drawn once on a fine grid. The input is its widefield image (PSF from NA and λ,
camera pixels, shot and read noise); the target is the same object blurred by a narrow PSF (a
SIM- or STED-like resolution, ``target_fwhm_nm``) and binned to pixels ``scale`` times smaller,
noise-free. The target is expressed per *input* pixel area and carries the same background and
camera gain, so averaging it over ``scale × scale`` blocks gives a sharper version of the
input's expected image: one affine normalization serves both. Some fields add out-of-focus
light (:func:`with_haze`), broad and therefore the same in input and target.

The preset ``widefield-2x`` spans what real specimens and microscopes vary, so that a model
learns the optics rather than one simulator's kernel: five structure families (filaments of
20–200 nm width, puncta, rings, membrane-outlined tubes, ER-like meshes) at varied densities;
Gaussian, Airy and defocused Born–Wolf PSFs whose in-focus FWHM is drawn around the nominal
250 nm; 10–1000 photons at the peak; 0–50 background photons; ideal, EMCCD (excess noise) and
sCMOS (per-pixel read noise) cameras. Each of these ranges defaults to "off" in
:class:`SRPairConfig`, so other presets and stored configs keep their narrow family.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import ndimage
from scipy.signal import fftconvolve
from scipy.spatial import Voronoi

from abbe.errors import InputError
from abbe.simulate import psf as _psf
from abbe.simulate.camera import Camera
from abbe.simulate.specimens import Specimen, _splat, filaments, make, puncta, rings
from abbe.simulate.widefield import widefield


class SRPairConfig(BaseModel):
    """How super-resolution training pairs are simulated (stored with the model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    structures: tuple[Literal["filaments", "puncta", "rings", "tubes", "meshes"], ...] = (
        "filaments",
        "puncta",
        "rings",
    )
    size: int = Field(64, ge=16, description="Input field edge in camera pixels.")
    pixel_size_nm: float = Field(100.0, gt=0, description="Input (camera) pixel size.")
    scale: Literal[1, 2, 4] = 2
    input_psf: Literal["airy", "gaussian"] = "airy"
    na: float = Field(1.3, gt=0)
    wavelength_nm: float = Field(632.0, gt=0)
    input_fwhm_nm: float | None = Field(
        None, gt=0, description="Gaussian input PSF FWHM (e.g. a confocal's); airy: from NA, λ."
    )
    target_fwhm_nm: float = Field(80.0, gt=0, description="Resolution of the target.")
    photons: tuple[float, float] = Field(
        (30.0, 1000.0), description="Peak signal photons per input pixel (log-uniform range)."
    )
    background: tuple[float, float] = Field((1.0, 30.0), description="Photons/px (uniform).")
    read_noise: tuple[float, float] = Field((0.0, 2.0), description="Electrons (uniform).")
    mixed_fraction: float = Field(
        0.3, ge=0, le=1, description="Fraction of fields that overlay two structures."
    )
    haze_probability: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Fraction of fields with out-of-focus light: a second specimen outside "
        "the focal plane, seen as a broad blur in input and target alike.",
    )
    haze_flux: tuple[float, float] = Field(
        (0.2, 2.0), description="Out-of-focus flux relative to the in-focus specimen's."
    )
    haze_sigma_nm: tuple[float, float] = Field(
        (300.0, 1000.0), description="σ of the defocus blur of the out-of-focus light."
    )

    filament_width_nm: tuple[float, float] = Field(
        (0.0, 0.0),
        description="Filament width (FWHM of its profile), drawn per field (uniform); 0: "
        "sub-pixel lines.",
    )
    density_factor: tuple[float, float] = Field(
        (1.0, 1.0),
        description="Factor on each structure's default density, per field (log-uniform).",
    )
    psfs: tuple[Literal["airy", "gaussian", "born_wolf"], ...] | None = Field(
        None,
        description="Input PSF kinds drawn per field (uniformly); None: ``input_psf`` only.",
    )
    input_fwhm_range_nm: tuple[float, float] | None = Field(
        None,
        description="In-focus input FWHM drawn per field (uniform), realized by drawing NA "
        "(0.9–1.45) and setting λ to match; None: the fixed NA, λ or ``input_fwhm_nm``.",
    )
    defocus_nm: tuple[float, float] = Field(
        (0.0, 0.0),
        description="|Defocus| of Born–Wolf PSFs (uniform); the scalar paraxial PSF is "
        "symmetric about focus, so ±z give the same image.",
    )
    cameras: tuple[Literal["ideal", "emccd", "scmos"], ...] = Field(
        ("ideal",),
        description="Camera noise drawn per field: ideal (Poisson + read noise), emccd "
        "(Poisson with excess noise factor 2), scmos (per-pixel read-noise map); the input "
        "is converted back to photons.",
    )

    @model_validator(mode="after")
    def _check(self) -> SRPairConfig:
        ranges = ["photons", "background", "read_noise", "haze_flux", "haze_sigma_nm"]
        ranges += ["filament_width_nm", "density_factor", "defocus_nm"]
        if self.input_fwhm_range_nm is not None:
            ranges.append("input_fwhm_range_nm")
        for name in ranges:
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must be a range MIN ≤ MAX of non-negative numbers")
        if self.photons[0] <= 0:
            raise ValueError("photons must be positive")
        if self.input_psf == "gaussian" and self.input_fwhm_nm is None:
            raise ValueError("a Gaussian input PSF needs input_fwhm_nm")
        if self.density_factor[0] <= 0:
            raise ValueError("density_factor must be positive")
        if self.psfs is not None and len(self.psfs) == 0:
            raise ValueError("psfs must name at least one PSF (or be None)")
        if not self.cameras:
            raise ValueError("cameras must name at least one camera")
        return self

    @property
    def varies_optics(self) -> bool:
        """Whether PSFs or cameras are drawn per field (the broad family)."""
        return (
            self.psfs is not None
            or self.input_fwhm_range_nm is not None
            or self.cameras != ("ideal",)
        )

    @property
    def oversample(self) -> int:
        """Fine-grid pixels per camera pixel: at most 25 nm, a multiple of the scale."""
        k = max(self.scale, int(np.ceil(self.pixel_size_nm / 25.0)))
        return int(np.ceil(k / self.scale) * self.scale)

    @property
    def input_fwhm(self) -> float:
        if self.input_fwhm_nm is not None:
            return self.input_fwhm_nm
        return _psf.airy_fwhm_nm(self.na, self.wavelength_nm)


#: Named pair settings for the reviewed transforms.
PRESETS: dict[str, SRPairConfig] = {
    # Widefield (≈250 nm, 210–300 nm across PSFs and optics) → SIM/STED-like 80 nm at half
    # the pixel size; the broad family of the bundled sr-widefield-2x.
    "widefield-2x": SRPairConfig(
        structures=("filaments", "puncta", "rings", "tubes", "meshes"),
        filament_width_nm=(20.0, 200.0),
        density_factor=(0.3, 3.0),
        psfs=("gaussian", "airy", "born_wolf"),
        input_fwhm_range_nm=(210.0, 300.0),
        defocus_nm=(0.0, 600.0),
        photons=(10.0, 1000.0),
        background=(0.0, 50.0),
        read_noise=(0.0, 3.0),
        cameras=("ideal", "emccd", "scmos"),
    ),
    # Widefield → linear SIM (≈ half the widefield FWHM), the DFCAN/BioSR transform.
    "widefield-sim": SRPairConfig(target_fwhm_nm=120.0),
    # Confocal (≈180 nm) at 50 nm pixels → STED-like 60 nm at 25 nm pixels.
    "confocal-sted": SRPairConfig(
        pixel_size_nm=50.0, input_psf="gaussian", input_fwhm_nm=180.0, target_fwhm_nm=60.0
    ),
}


@dataclass(frozen=True, eq=False)
class SRPair:
    """One simulated pair.

    Attributes
    ----------
    input : (Y, X) float32 noisy widefield image (photons; background included).
    target : (Y·s, X·s) float32 noise-free high-resolution image, per input-pixel area.
    expected_input : (Y, X) float32 noise-free widefield image.
    object : (Y·k, X·k) float32 object on the fine grid (k = oversample).
    params : the simulation's parameters.
    """

    input: np.ndarray
    target: np.ndarray
    expected_input: np.ndarray
    object: np.ndarray
    params: dict[str, Any]


def _draw(values: tuple[float, float], rng: np.random.Generator, log: bool = False) -> float:
    lo, hi = values
    if hi <= lo:
        return float(lo)
    if log:
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return float(rng.uniform(lo, hi))


def draw_specimen(config: SRPairConfig, rng: np.random.Generator) -> Specimen:
    """A random specimen for one field: one structure, or two overlaid."""
    k = config.oversample
    fine = (config.size * k, config.size * k)
    fine_px = config.pixel_size_nm / k
    n = 2 if (len(config.structures) > 1 and rng.random() < config.mixed_fraction) else 1
    names = rng.choice(config.structures, size=n, replace=False)
    density = np.zeros(fine, np.float32)
    for name in names:
        spec = _structure(str(name), fine, fine_px, config, rng)
        for _ in range(20):  # curved filaments can all miss a small field: draw again
            if spec.density.any():
                break
            spec = _structure(str(name), fine, fine_px, config, rng)
        peak = float(ndimage.gaussian_filter(spec.density, 100 / fine_px).max())
        density += spec.density / max(peak, 1e-12) * rng.uniform(0.5, 1.0)
    return Specimen(density, fine_px)


def _structure(
    name: str,
    shape: tuple[int, int],
    pixel_size_nm: float,
    config: SRPairConfig,
    rng: np.random.Generator,
) -> Specimen:
    """One structure family drawn with the config's density and width ranges.

    With both ranges at their defaults (1, 1) and (0, 0) nothing extra is drawn, so narrow
    configs keep the specimens of earlier versions."""
    varied = config.density_factor != (1.0, 1.0)
    factor = _draw(config.density_factor, rng, log=True) if varied else 1.0
    if name == "filaments":
        area = shape[0] * shape[1] * (pixel_size_nm / 1e3) ** 2
        count = max(1, round(max(3, round(area / 40)) * factor)) if varied else None
        spec = filaments(shape, pixel_size_nm=pixel_size_nm, n=count, seed=rng)
        if config.filament_width_nm != (0.0, 0.0):
            spec = _widen(spec, _draw(config.filament_width_nm, rng))
        return spec
    if name == "puncta":
        return puncta(shape, pixel_size_nm=pixel_size_nm, density_per_um2=0.3 * factor, seed=rng)
    if name == "rings":
        return rings(shape, pixel_size_nm=pixel_size_nm, density_per_um2=0.5 * factor, seed=rng)
    if name == "tubes":
        return tubes(shape, pixel_size_nm=pixel_size_nm, density_per_um2=0.1 * factor, seed=rng)
    if name == "meshes":
        return meshes(shape, pixel_size_nm=pixel_size_nm, density_per_um2=0.6 * factor, seed=rng)
    return make(name, shape, pixel_size_nm=pixel_size_nm, seed=rng)


def _widen(spec: Specimen, width_nm: float) -> Specimen:
    """Give sub-pixel lines a cross-section of FWHM ``width_nm`` (flux kept)."""
    sigma = width_nm / _psf.FWHM_PER_SIGMA / spec.pixel_size_nm
    if sigma < 0.3:  # narrower than the fine grid resolves: leave the line as drawn
        return spec
    wide = ndimage.gaussian_filter(spec.density.astype(np.float64), sigma, mode="constant")
    return Specimen(wide.astype(np.float32), spec.pixel_size_nm)


def tubes(
    shape: tuple[int, int],
    *,
    pixel_size_nm: float,
    density_per_um2: float = 0.1,
    length_nm: tuple[float, float] = (800.0, 5000.0),
    radius_nm: tuple[float, float] = (100.0, 250.0),
    seed: int | np.random.Generator | None = 0,
) -> Specimen:
    """Mitochondria-like tubes labelled on their membrane: short curved tubes of 200–500 nm
    diameter whose projection is two bright edges around a dimmer lumen.

    Each tube is a worm-like centre line (:func:`~abbe.simulate.specimens.filaments`); the
    membrane is the set of points at the tube's radius from it, with the 1/√(r² − d²)
    brightening of a projected cylinder wall approximated by a Gaussian shell plus a faint
    (10–40 %) fill.

    Parameters
    ----------
    density_per_um2 : mean number of tubes per µm² (Poisson).
    length_nm, radius_nm : ranges of tube length and radius (uniform).
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    area = shape[0] * shape[1] * (pixel_size_nm / 1e3) ** 2
    count = max(1, int(rng.poisson(density_per_um2 * area)))
    density = np.zeros(shape, np.float64)
    for _ in range(count):
        line = filaments(
            shape,
            pixel_size_nm=pixel_size_nm,
            n=1,
            length_nm=length_nm,
            persistence_nm=3000.0,
            seed=rng,
        ).density
        if not line.any():
            continue
        r = rng.uniform(*radius_nm)
        d = ndimage.distance_transform_edt(line <= 0) * pixel_size_nm
        shell = np.exp(-0.5 * ((d - r) / 25.0) ** 2)
        fill = rng.uniform(0.1, 0.4) * (d < r)
        density += (shell + fill) * np.exp(rng.normal(0, 0.25))
    return Specimen(density.astype(np.float32), pixel_size_nm)


def meshes(
    shape: tuple[int, int],
    *,
    pixel_size_nm: float,
    density_per_um2: float = 0.6,
    keep: tuple[float, float] = (0.5, 1.0),
    seed: int | np.random.Generator | None = 0,
) -> Specimen:
    """ER-like meshes: the edges of a random polygon network (Voronoi cells of Poisson
    points, ``density_per_um2`` per µm²), each edge kept with a probability drawn from
    ``keep`` so that some polygons are open, drawn as sub-pixel lines (one unit per nm)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    h, w = shape
    area = h * w * (pixel_size_nm / 1e3) ** 2
    count = max(4, int(rng.poisson(density_per_um2 * area)))
    # Seeds beyond the field too, so that cells at the edge are closed like inner ones.
    points = rng.uniform(-0.2, 1.2, (int(count * 1.96), 2)) * (h, w)
    density = np.zeros(shape, np.float64)
    vor = Voronoi(points)
    p_keep = rng.uniform(*keep)
    ds = 0.5  # two samples per fine pixel
    for a, b in vor.ridge_vertices:
        if a < 0 or b < 0 or rng.random() > p_keep:
            continue
        p0, p1 = vor.vertices[a], vor.vertices[b]
        length = float(np.hypot(*(p1 - p0)))
        if length > 4 * max(h, w):
            continue
        m = max(2, int(length / ds))
        t = np.linspace(0, 1, m)
        weight = np.full(m, length * pixel_size_nm / m)
        _splat(density, p0[0] + t * (p1[0] - p0[0]), p0[1] + t * (p1[1] - p0[1]), weight)
    return Specimen(density.astype(np.float32), pixel_size_nm)


@dataclass(frozen=True)
class Optics:
    """The input PSF of one field: ``kind``, the in-focus FWHM it was drawn for, and NA, λ and
    defocus where the kind uses them."""

    kind: str
    fwhm_nm: float
    na: float
    wavelength_nm: float
    defocus_nm: float = 0.0


def draw_optics(config: SRPairConfig, rng: np.random.Generator) -> Optics:
    """The input PSF of one field: kind from ``psfs``; FWHM from ``input_fwhm_range_nm``
    (NA drawn in 0.9–1.45, λ set so that the Airy FWHM 0.5145·λ/NA matches, kept in
    450–750 nm); defocus from ``defocus_nm`` for Born–Wolf PSFs."""
    kinds = config.psfs if config.psfs is not None else (config.input_psf,)
    kind = str(kinds[int(rng.integers(len(kinds)))])
    if config.input_fwhm_range_nm is None:
        fwhm = config.input_fwhm
        na, wavelength = config.na, config.wavelength_nm
    else:
        fwhm = _draw(config.input_fwhm_range_nm, rng)
        per_na = fwhm / (2 * 1.616340 / (2 * np.pi))  # λ/NA giving this Airy FWHM
        lo, hi = max(0.9, 450.0 / per_na), min(1.45, 750.0 / per_na)
        na = float(rng.uniform(lo, hi)) if hi > lo else float(np.clip(1.3, 0.5, 1.45))
        wavelength = float(per_na * na)
    defocus = _draw(config.defocus_nm, rng) if kind == "born_wolf" else 0.0
    return Optics(kind, float(fwhm), float(na), float(wavelength), float(defocus))


def psf_kernel(optics: Optics, pixel_size_nm: float) -> np.ndarray:
    """The 2D kernel (unit sum) of ``optics`` on a grid of ``pixel_size_nm``."""
    if optics.kind == "gaussian":
        return _psf.gaussian_psf(fwhm_nm=optics.fwhm_nm, pixel_size_nm=pixel_size_nm)
    if optics.kind == "airy":
        return _psf.airy_psf(
            na=optics.na,
            wavelength_nm=optics.wavelength_nm,
            pixel_size_nm=pixel_size_nm,
            oversample=3,
        )
    if optics.kind == "born_wolf":
        dz = optics.defocus_nm
        stack = _psf.born_wolf_psf(
            n_z=3 if dz > 0 else 1,
            na=optics.na,
            wavelength_nm=optics.wavelength_nm,
            pixel_size_nm=pixel_size_nm,
            z_step_nm=max(dz, 1.0),
            oversample=3,
        )
        plane = stack[0].astype(np.float64)  # the plane at −dz (or focus)
        return (plane / plane.sum()).astype(np.float32)
    raise InputError(f"unknown PSF {optics.kind!r}; choose airy, gaussian or born_wolf")


def draw_camera(config: SRPairConfig, read_noise: float, rng: np.random.Generator) -> Camera:
    """The camera of one field, from ``cameras``; ``read_noise`` in electrons referred to
    the input (for an EMCCD, the output read noise divided by its EM gain of 100)."""
    kind = str(config.cameras[int(rng.integers(len(config.cameras)))])
    if kind == "emccd":
        return Camera.emccd(read_noise=read_noise * 100.0, bits=None)
    if kind == "scmos":
        shape = (config.size, config.size)
        seed = int(rng.integers(2**31))
        return Camera.scmos(shape, read_noise=max(read_noise, 0.3), bits=None, seed=seed)
    return Camera.ideal(read_noise=read_noise)


def sr_pair(
    config: SRPairConfig,
    *,
    seed: int = 0,
    specimen: Specimen | None = None,
    photons: float | None = None,
    background: float | None = None,
    read_noise: float | None = None,
) -> SRPair:
    """Simulate one input/target pair.

    Parameters
    ----------
    config : pair settings (optics, sampling, ranges of signal and noise).
    seed : one seed for the specimen, signal level and noise.
    specimen : draw this object instead of a random one (on the config's fine grid).
    photons, background, read_noise : fix these instead of drawing them from the ranges.
    """
    rng = np.random.default_rng(seed)
    k, s = config.oversample, config.scale
    spec = specimen if specimen is not None else draw_specimen(config, rng)
    fine = (config.size * k, config.size * k)
    if spec.density.shape != fine:
        raise InputError(f"specimen grid {spec.density.shape} must be {fine} (size × oversample)")
    # Drawn only when enabled, so fields without haze keep the numbers of earlier versions.
    if config.haze_probability > 0 and rng.random() < config.haze_probability:
        spec = with_haze(spec, config, rng)
    peak = photons if photons is not None else _draw(config.photons, rng, log=True)
    bg = background if background is not None else _draw(config.background, rng)
    rn = read_noise if read_noise is not None else _draw(config.read_noise, rng)
    if config.varies_optics:
        image, clean, photon_scale, params = _broad_image(spec, config, peak, bg, rn, rng)
    else:
        sim = widefield(
            spec,
            size=config.size,
            pixel_size_nm=config.pixel_size_nm,
            na=config.na,
            wavelength_nm=config.wavelength_nm,
            psf=config.input_psf,
            fwhm_nm=config.input_fwhm_nm,
            photons=peak,
            background=bg,
            camera=Camera.ideal(read_noise=rn),
            oversample=k,
            seed=int(rng.integers(2**31)),
        )
        image, clean = sim.input, sim.clean
        photon_scale = float(sim.object.sum() / max(float(spec.density.sum()), 1e-12))
        params = {
            **{key: v for key, v in sim.params.items() if key != "camera"},
            "camera": sim.params["camera"],
            "input_fwhm_nm": config.input_fwhm,
        }
    target = high_resolution(spec.density, config.target_fwhm_nm, spec.pixel_size_nm, k // s)
    # Per target pixel → per input-pixel area (s² target pixels), same background.
    target = target * photon_scale * s * s + bg
    params.setdefault("seed", seed)  # the broad path draws everything from this one seed
    params.update(
        {
            "scale": s,
            "target_pixel_size_nm": config.pixel_size_nm / s,
            "target_fwhm_nm": config.target_fwhm_nm,
        }
    )
    return SRPair(image, target.astype(np.float32), clean, spec.density * photon_scale, params)


def _broad_image(
    spec: Specimen,
    config: SRPairConfig,
    peak: float,
    background: float,
    read_noise: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, float, dict[str, Any]]:
    """The input of the broad family: a PSF and a camera drawn per field.

    Returns the recorded image converted back to photons, the noise-free image (photons),
    the factor from specimen density to photons, and the field's parameters."""
    k = config.oversample
    optics = draw_optics(config, rng)
    camera = draw_camera(config, read_noise, rng)
    kernel = psf_kernel(optics, spec.pixel_size_nm)
    # The field is all the specimen there is (zero outside), as in widefield() with a Specimen.
    blurred = np.clip(fftconvolve(spec.density.astype(np.float64), kernel, mode="same"), 0, None)
    n = config.size
    binned = blurred.reshape(n, k, n, k).sum(axis=(1, 3))
    top = float(binned.max())
    if top <= 0:
        raise InputError("the specimen is empty in this field; change the seed or the size")
    scale = peak / top
    clean = (binned * scale + background).astype(np.float32)
    recorded = camera.expose(clean, seed=rng)
    image = camera.to_photons(recorded)
    params = {
        "modality": "widefield",
        "size": [n, n],
        "pixel_size_nm": config.pixel_size_nm,
        "oversample": k,
        "object_pixel_size_nm": spec.pixel_size_nm,
        "psf": optics.kind,
        "na": optics.na,
        "wavelength_nm": optics.wavelength_nm,
        "defocus_nm": optics.defocus_nm,
        "input_fwhm_nm": optics.fwhm_nm,
        "photons": peak,
        "background": background,
        "read_noise_e": read_noise,
        "camera": camera.describe(),
        "units": {"input": "photons", "clean": "photons", "object": "photons"},
    }
    return image, clean, scale, params


def with_haze(spec: Specimen, config: SRPairConfig, rng: np.random.Generator) -> Specimen:
    """The specimen plus out-of-focus light: another random specimen, blurred by a defocus σ
    drawn from ``haze_sigma_nm``, carrying ``haze_flux`` × the in-focus flux.

    Out-of-focus light is broad, so a widefield input and a high-resolution target see it
    alike: the pair teaches a model to sharpen what is in focus and to pass the haze through
    unchanged rather than erase it (a network trained on flat backgrounds removes haze it
    never saw, which error maps against the input then flag as a loss of content)."""
    other = draw_specimen(config, rng).density.astype(np.float64)
    sigma_px = _draw(config.haze_sigma_nm, rng) / spec.pixel_size_nm
    blurred = ndimage.gaussian_filter(other, sigma_px, mode="reflect")
    flux = _draw(config.haze_flux, rng) * float(spec.density.sum())
    haze = blurred * flux / max(float(blurred.sum()), 1e-12)
    return Specimen((spec.density + haze).astype(np.float32), spec.pixel_size_nm, spec.labels)


def high_resolution(
    density: np.ndarray, fwhm_nm: float, pixel_size_nm: float, bin_factor: int
) -> np.ndarray:
    """The object seen at resolution ``fwhm_nm`` (Gaussian PSF), binned by ``bin_factor``."""
    kernel = _psf.gaussian_psf(fwhm_nm=fwhm_nm, pixel_size_nm=pixel_size_nm)
    blurred = np.clip(fftconvolve(density, kernel, mode="same"), 0, None)
    h, w = blurred.shape
    b = bin_factor
    return blurred.reshape(h // b, b, w // b, b).sum(axis=(1, 3))


def simulate_pairs(
    config: SRPairConfig, n: int, *, seed: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``n`` pairs (inputs, targets) drawn with seeds derived from ``seed``."""
    seeds = np.random.SeedSequence(seed).generate_state(n)
    xs, ys = [], []
    for s in seeds:
        pair = sr_pair(config, seed=int(s))
        xs.append(pair.input)
        ys.append(pair.target)
    return xs, ys


def crappify(
    image: np.ndarray,
    scale: int,
    *,
    blur_fwhm_px: float = 2.0,
    photons: float = 100.0,
    background: float = 5.0,
    read_noise: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """Degrade a real high-resolution image into a plausible low-resolution input (PSSR).

    The image is blurred (Gaussian, FWHM ``blur_fwhm_px`` of the high-resolution pixels, the
    resolution lost), averaged over ``scale × scale`` blocks, scaled so its brightest pixel
    gets ``photons`` above ``background``, and given Poisson and Gaussian read noise. The result
    is in photons; train with the original as target (a model normalizes both alike).

    Fang et al., "Deep learning-based point-scanning super-resolution imaging", Nat Methods
    18:406 (2021).
    """
    a = np.asarray(image, dtype=np.float64)
    if a.ndim != 2:
        raise InputError(f"crappify takes a 2D image; got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise InputError("the image contains NaN or infinite values")
    h, w = (a.shape[0] // scale) * scale, (a.shape[1] // scale) * scale
    if h < 8 or w < 8:
        raise InputError(f"image {a.shape} is too small to downsample by {scale}")
    a = a[:h, :w]
    a = a - np.percentile(a, 1)
    sigma = blur_fwhm_px / _psf.FWHM_PER_SIGMA
    blurred = np.clip(ndimage.gaussian_filter(a, sigma), 0, None)
    small = blurred.reshape(h // scale, scale, w // scale, scale).mean(axis=(1, 3))
    peak = small.max()
    if peak <= 0:
        raise InputError("the image is empty (no signal above its 1st percentile)")
    expected = small / peak * photons + background
    rng = np.random.default_rng(seed)
    noisy = rng.poisson(expected) + rng.normal(0, read_noise, expected.shape)
    return noisy.astype(np.float32)
