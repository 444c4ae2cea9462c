"""Widefield image formation: fine-grid object → PSF → pixel binning → camera.

The object is drawn on a grid ``oversample`` times finer than the camera, blurred there by the PSF
sampled at the fine pixel size, summed over each camera pixel, scaled so that the brightest pixel
receives ``photons`` expected photons above ``background``, and recorded by a camera model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.signal import fftconvolve

from abbe.errors import InputError
from abbe.simulate import psf as _psf
from abbe.simulate.camera import Camera
from abbe.simulate.specimens import Specimen, make


@dataclass(frozen=True, eq=False)
class WidefieldSimulation:
    """A simulated widefield acquisition with its ground truth.

    Attributes
    ----------
    input : (Y, X) float32 recorded image, in photons for an ideal camera, else in ADU.
    clean : (Y, X) float32 noise-free expected photons per pixel (signal + background), same grid.
    object : (Y·k, X·k) float32 photons emitted into the objective per fine pixel (k = oversample);
        summing ``object`` blurred by the PSF over each camera pixel gives ``clean - background``.
    labels : (Y, X) int32 instance labels on the camera grid (nuclei), or None.
    params : every parameter of the simulation, JSON-serializable.
    expected_input : (Y, X) float32 noise-free image in the input's units: ``clean`` through the
        camera's average gain and offset (an sCMOS's per-pixel variations are fixed-pattern noise,
        left out); equal to ``clean`` for an ideal camera. The target of a restoration.
    """

    input: np.ndarray
    clean: np.ndarray
    object: np.ndarray
    labels: np.ndarray | None
    params: dict[str, Any] = field(default_factory=dict)
    expected_input: np.ndarray | None = None

    @property
    def pixel_size_nm(self) -> float:
        return float(self.params["pixel_size_nm"])

    @property
    def object_pixel_size_nm(self) -> float:
        return float(self.params["pixel_size_nm"]) / int(self.params["oversample"])


def make_psf(
    kind: str,
    *,
    pixel_size_nm: float,
    na: float,
    wavelength_nm: float,
    n_immersion: float = 1.515,
    fwhm_nm: float | None = None,
) -> tuple[np.ndarray, float]:
    """Build a 2D PSF by name and return it with its FWHM in nm.

    ``airy`` uses NA and wavelength; ``gaussian`` uses ``fwhm_nm`` or, when omitted, the Gaussian
    that best fits the Airy pattern of the same optics (σ = 0.21·λ/NA).
    """
    if kind == "airy":
        if fwhm_nm is not None:
            raise InputError("--fwhm applies to the Gaussian PSF; the Airy PSF follows NA and λ")
        kernel = _psf.airy_psf(
            na=na,
            wavelength_nm=wavelength_nm,
            pixel_size_nm=pixel_size_nm,
            n_immersion=n_immersion,
            oversample=3,
        )
        return kernel, _psf.airy_fwhm_nm(na, wavelength_nm)
    if kind == "gaussian":
        fwhm = fwhm_nm or _psf.FWHM_PER_SIGMA * _psf.gaussian_sigma_nm(na, wavelength_nm)
        return _psf.gaussian_psf(fwhm_nm=fwhm, pixel_size_nm=pixel_size_nm), fwhm
    raise InputError(f"unknown PSF {kind!r}; choose airy or gaussian")


def widefield(
    structure: str | Specimen = "filaments",
    *,
    size: int | tuple[int, int] = 256,
    pixel_size_nm: float = 100.0,
    na: float = 1.3,
    wavelength_nm: float = 632.0,
    n_immersion: float = 1.515,
    psf: str = "airy",
    fwhm_nm: float | None = None,
    photons: float = 100.0,
    background: float = 10.0,
    camera: str | Camera = "ideal",
    read_noise: float | None = None,
    oversample: int = 4,
    seed: int = 0,
    specimen_options: dict[str, Any] | None = None,
) -> WidefieldSimulation:
    """Simulate a widefield fluorescence image with its noise-free image and object.

    Parameters
    ----------
    structure : ``filaments``, ``puncta``, ``nuclei``, or a :class:`Specimen` drawn on a grid of
        pixel size ``pixel_size_nm / oversample`` covering the field (no margin).
    size : image edge (or (Y, X)) in camera pixels.
    pixel_size_nm : camera pixel size in the sample plane.
    na, wavelength_nm, n_immersion : optics; the defaults put the cutoff period
        λ/(2·NA) at 243 nm, resolvable at 100 nm pixels.
    psf : ``airy`` (from NA and λ) or ``gaussian`` (``fwhm_nm``, or the best fit to the Airy PSF).
    photons : expected signal photons at the brightest pixel, above background.
    background : expected background photons per pixel (autofluorescence, out-of-focus light).
    camera : a :class:`Camera` or a preset name (``ideal``: output in photons).
    read_noise : read noise in electrons for a preset camera (replaces its default).
    oversample : fine-grid pixels per camera pixel edge.
    seed : one seed for the specimen, sensor maps and noise.
    specimen_options : keyword arguments for the specimen generator.

    Returns
    -------
    WidefieldSimulation
    """
    shape = (size, size) if isinstance(size, int) else tuple(size)
    if min(shape) < 8:
        raise InputError(f"image size must be at least 8 pixels, got {shape}")
    if photons <= 0 or background < 0:
        raise InputError("photons must be positive and background non-negative")
    if oversample < 1:
        raise InputError(f"oversample must be at least 1, got {oversample}")
    specimen_seed, camera_seed, noise_seed = np.random.SeedSequence(seed).spawn(3)
    fine_px = pixel_size_nm / oversample
    kernel, fwhm = make_psf(
        psf,
        pixel_size_nm=fine_px,
        na=na,
        wavelength_nm=wavelength_nm,
        n_immersion=n_immersion,
        fwhm_nm=fwhm_nm,
    )
    # Structures outside the field still blur into it: draw a margin of two PSF widths.
    margin = math.ceil(2 * max(fwhm, wavelength_nm / na) / pixel_size_nm) + 1
    if isinstance(structure, Specimen):
        spec = _pad_specimen(structure, shape, oversample, margin)
        name = "custom"
    else:
        big = ((shape[0] + 2 * margin) * oversample, (shape[1] + 2 * margin) * oversample)
        spec = make(
            structure,
            big,
            pixel_size_nm=fine_px,
            seed=np.random.default_rng(specimen_seed),
            **(specimen_options or {}),
        )
        name = structure
    blurred = fftconvolve(spec.density, kernel, mode="same")
    crop = slice(margin * oversample, -margin * oversample)
    fine = np.clip(blurred[crop, crop], 0, None)
    binned = fine.reshape(shape[0], oversample, shape[1], oversample).sum(axis=(1, 3))
    peak = binned.max()
    if peak <= 0:
        raise InputError("the specimen is empty in this field; change the seed or the size")
    scale = photons / peak
    clean = (binned * scale + background).astype(np.float32)
    obj = (spec.density[crop, crop] * scale).astype(np.float32)
    labels = None
    if spec.labels is not None:
        centre = oversample // 2
        labels = spec.labels[crop, crop][centre::oversample, centre::oversample].copy()
    cam = (
        camera
        if isinstance(camera, Camera)
        else Camera.from_name(
            camera, shape, read_noise=read_noise, seed=int(camera_seed.generate_state(1)[0])
        )
    )
    recorded = cam.expose(clean, seed=np.random.default_rng(noise_seed))
    params = {
        "modality": "widefield",
        "structure": name,
        "size": list(shape),
        "pixel_size_nm": pixel_size_nm,
        "oversample": oversample,
        "object_pixel_size_nm": fine_px,
        "na": na,
        "wavelength_nm": wavelength_nm,
        "n_immersion": n_immersion,
        "psf": psf,
        "psf_fwhm_nm": fwhm,
        "cutoff_period_nm": 1 / _psf.cutoff_frequency(na, wavelength_nm),
        "photons": photons,
        "background": background,
        "camera": cam.describe(),
        "seed": seed,
        "specimen_options": specimen_options or {},
        "units": {"input": cam.describe()["units"], "clean": "photons", "object": "photons"},
    }
    expected = np.asarray(cam.nominal(clean), dtype=np.float32)
    return WidefieldSimulation(recorded, clean, obj, labels, params, expected)


def _pad_specimen(spec: Specimen, shape: tuple[int, int], oversample: int, margin: int) -> Specimen:
    expected = (shape[0] * oversample, shape[1] * oversample)
    if spec.density.shape != expected:
        raise InputError(
            f"specimen grid {spec.density.shape} does not match the field {expected} "
            f"(size × oversample)"
        )
    pad = margin * oversample
    labels = None if spec.labels is None else np.pad(spec.labels, pad)
    return Specimen(np.pad(spec.density, pad), spec.pixel_size_nm, labels)
