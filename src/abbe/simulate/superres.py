"""Training pairs for super-resolution: a diffraction-limited image and a high-resolution
image of the same object, and a crappifier that degrades real high-resolution images.

The object is drawn once on a fine grid. The input is its widefield image (PSF from NA and λ,
camera pixels, shot and read noise); the target is the same object blurred by a narrow PSF (a
SIM- or STED-like resolution, ``target_fwhm_nm``) and binned to pixels ``scale`` times smaller,
noise-free. The target is expressed per *input* pixel area and carries the same background and
camera gain, so averaging it over ``scale × scale`` blocks gives a sharper version of the
input's expected image: one affine normalization serves both. Some fields add out-of-focus
light (:func:`with_haze`), broad and therefore the same in input and target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import ndimage
from scipy.signal import fftconvolve

from abbe.errors import InputError
from abbe.simulate import psf as _psf
from abbe.simulate.camera import Camera
from abbe.simulate.specimens import Specimen, make
from abbe.simulate.widefield import widefield


class SRPairConfig(BaseModel):
    """How super-resolution training pairs are simulated (stored with the model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    structures: tuple[Literal["filaments", "puncta", "rings"], ...] = (
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

    @model_validator(mode="after")
    def _check(self) -> SRPairConfig:
        for name in ("photons", "background", "read_noise", "haze_flux", "haze_sigma_nm"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must be a range MIN ≤ MAX of non-negative numbers")
        if self.photons[0] <= 0:
            raise ValueError("photons must be positive")
        if self.input_psf == "gaussian" and self.input_fwhm_nm is None:
            raise ValueError("a Gaussian input PSF needs input_fwhm_nm")
        return self

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
    # Widefield (≈250 nm) → SIM/STED-like 80 nm at half the pixel size.
    "widefield-2x": SRPairConfig(),
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
        spec = make(str(name), fine, pixel_size_nm=fine_px, seed=rng)
        for _ in range(20):  # curved filaments can all miss a small field: draw again
            if spec.density.any():
                break
            spec = make(str(name), fine, pixel_size_nm=fine_px, seed=rng)
        peak = float(ndimage.gaussian_filter(spec.density, 100 / fine_px).max())
        density += spec.density / max(peak, 1e-12) * rng.uniform(0.5, 1.0)
    return Specimen(density, fine_px)


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
    photon_scale = float(sim.object.sum() / max(float(spec.density.sum()), 1e-12))
    target = high_resolution(spec.density, config.target_fwhm_nm, spec.pixel_size_nm, k // s)
    # Per target pixel → per input-pixel area (s² target pixels), same background.
    target = target * photon_scale * s * s + bg
    params = {
        **{key: v for key, v in sim.params.items() if key != "camera"},
        "camera": sim.params["camera"],
        "scale": s,
        "target_pixel_size_nm": config.pixel_size_nm / s,
        "target_fwhm_nm": config.target_fwhm_nm,
        "input_fwhm_nm": config.input_fwhm,
    }
    return SRPair(sim.input, target.astype(np.float32), sim.clean, sim.object, params)


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
