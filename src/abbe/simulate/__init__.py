"""Physically based simulation: optics (PSF, OTF), specimens, cameras and image formation.

Every function that draws random numbers takes a ``seed``; the same seed gives the same numbers.
"""

from abbe.simulate.camera import Camera
from abbe.simulate.psf import (
    airy_fwhm_nm,
    airy_psf,
    analytic_otf,
    born_wolf_psf,
    cutoff_frequency,
    frequency_grid,
    gaussian_psf,
    gaussian_sigma_nm,
    otf,
)
from abbe.simulate.psfmodel import AiryPSF, IntegratedGaussian, PSFModel, PSFValues, crlb
from abbe.simulate.specimens import STRUCTURES, Specimen, filaments, nuclei, puncta
from abbe.simulate.widefield import WidefieldSimulation, make_psf, widefield

__all__ = [
    "STRUCTURES",
    "AiryPSF",
    "Camera",
    "IntegratedGaussian",
    "PSFModel",
    "PSFValues",
    "Specimen",
    "WidefieldSimulation",
    "airy_fwhm_nm",
    "airy_psf",
    "analytic_otf",
    "born_wolf_psf",
    "crlb",
    "cutoff_frequency",
    "filaments",
    "frequency_grid",
    "gaussian_psf",
    "gaussian_sigma_nm",
    "make_psf",
    "nuclei",
    "otf",
    "puncta",
    "widefield",
]
