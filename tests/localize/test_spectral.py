"""Spectroscopic SMLM, classical: the spectral centroid, its CRLB, dye assignment."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from abbe.errors import AbbeWarning, InputError
from abbe.localize.spectral import (
    assign_nearest,
    centroid_crlb,
    reference_centroids,
    shift_crlb,
    spectral_centroid,
    spectral_columns,
)
from abbe.simulate.spectral import (
    default_setup,
    load_dye,
    load_setup,
    simulate_crops,
    spectral_smlm,
)

SIGMA = 1.3


def test_centroid_recovers_the_dye_centroid_within_its_crlb():
    # Arrange: 2000 CF660C spectra of 1000 photons over 2 photons/px of background.
    setup = default_setup()
    n = 2000
    sim = simulate_crops(
        setup, n, photons=(1000, 1000), background=(2, 2), dye=np.ones(n, int), seed=4
    )
    # Act
    est = spectral_centroid(sim.crops, sim.wavelengths, sigma_px=SIGMA, row_centre=sim.row_centre)
    crlb = centroid_crlb(
        setup, sim.dye, sim.frac, np.full(n, 1000.0), np.full(n, 2.0), sigma_px=SIGMA
    ).mean()
    err = est.centroid_nm - sim.centroid_nm
    # Assert: unbiased within 4 standard errors plus 0.3 nm (the localization error moves the
    # spectrum by 0.1 px = 0.5 nm rms, symmetric), and the spread within 0.8–1.3× the bound.
    assert abs(err.mean()) < 4 * crlb / np.sqrt(n) + 0.3
    assert 0.8 * crlb < err.std() < 1.3 * crlb


def test_centroid_crlb_without_background_is_the_spectral_spread_over_sqrt_n():
    # Independent: the variance of the mean wavelength of N photons drawn from the spectrum
    # (blurred by the PSF along x: σ_λ² + (σ_psf·dispersion)² + pixel width²/12).
    setup = default_setup()
    dye = load_dye("AF647")
    grid = np.arange(640.0, 800.0, 0.1) + 0.05
    w = np.interp(grid, dye.wavelength_nm, dye.intensity)
    w /= w.sum()
    var = np.sum(w * grid**2) - np.sum(w * grid) ** 2
    disp = setup.spectrometer.dispersion_nm_per_px
    expected = np.sqrt((var + (SIGMA * disp) ** 2 + disp**2 / 12) / 500.0)
    got = centroid_crlb(
        setup, np.array([0]), np.array([0.5]), np.array([500.0]), np.array([1e-6]), sigma_px=SIGMA
    )
    assert got[0] == pytest.approx(expected, rel=0.03)
    # Knowing the spectrum's shape can only help.
    assert (
        shift_crlb(
            setup,
            np.array([0]),
            np.array([0.5]),
            np.array([500.0]),
            np.array([1e-6]),
            sigma_px=SIGMA,
        )[0]
        < got[0]
    )


def test_bright_well_separated_dyes_are_all_assigned_right():
    # AF647 and CF680 centroids lie 33 nm apart; 5000 photons give ~1 nm precision.
    setup = default_setup()
    n = 600
    dye = np.repeat([0, 2], n // 2)
    sim = simulate_crops(setup, n, photons=(5000, 5000), background=(1, 1), dye=dye, seed=5)
    est = spectral_centroid(sim.crops, sim.wavelengths, sigma_px=SIGMA, row_centre=sim.row_centre)
    assigned = assign_nearest(est.centroid_nm, reference_centroids(setup, sigma_px=SIGMA))
    assert np.mean(assigned == dye) >= 0.995


def test_spectral_columns_from_a_stack_and_a_warning_for_cut_spectra():
    sim = spectral_smlm(frames=20, spectral_photons=(3000, 3000), background=(2, 2), seed=2)
    truth = sim.truth
    px = 100.0
    cols = spectral_columns(sim.stack, truth, sim.setup, pixel_size_nm=px, sigma_px=SIGMA)
    assert list(cols.columns[:3]) == ["dye", "centroid_nm", "centroid_crlb_nm"]
    assert np.mean(cols["dye"].to_numpy() == truth["dye"].to_numpy()) >= 0.95
    # A localization at the frame's top edge: its crop runs outside the frame.
    edge = pd.DataFrame({"frame": [1], "x_nm": [1500.0], "y_nm": [50.0]})
    with pytest.warns(AbbeWarning, match="outside the spectral region"):
        spectral_columns(sim.stack, edge, sim.setup, pixel_size_nm=px, sigma_px=SIGMA)


def test_dyes_file_with_an_unknown_dye_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "dyes.yaml"
    path.write_text(
        "dyes: [AF647, NOPE]\nspectral: {region_x0: 32, offset_x_px: 32, reference_nm: 640,"
        " dispersion_nm_per_px: 5}\n"
    )
    with pytest.raises(InputError, match="unknown dye 'NOPE'") as info:
        load_setup(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_no_warning_for_spectra_inside_the_region():
    sim = spectral_smlm(frames=10, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AbbeWarning)
        spectral_columns(sim.stack, sim.truth, sim.setup, pixel_size_nm=100.0, sigma_px=SIGMA)


def test_the_readme_dyes_block_is_a_valid_dyes_file():
    # README's Colour section shows a dyes.yaml (fenced ``yml``; the ``yaml`` block is the
    # training configuration that tests/test_readme.py checks).
    import re
    from pathlib import Path

    import yaml

    from abbe.simulate.spectral import setup_from_dict

    readme = Path(__file__).resolve().parents[2] / "README.md"
    (block,) = re.findall(r"^```yml\n(.*?)^```", readme.read_text(), flags=re.M | re.S)
    setup = setup_from_dict(yaml.safe_load(block))
    assert setup.names == ["AF647", "CF660C", "CF680"]
    assert setup.spectrometer.crop_width == 39  # 160 nm at 5 nm/px, 3 px margins
