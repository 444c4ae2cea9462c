"""Localization tables round-trip through abbe CSV, ThunderSTORM CSV and Picasso HDF5 + YAML, and
the third-party files in ../shared read with the right coordinates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abbe.errors import InputError
from abbe.io.tables import read_localizations, write_localizations


@pytest.fixture
def locs():
    rng = np.random.default_rng(0)
    n = 50
    return pd.DataFrame(
        {
            "frame": rng.integers(1, 20, n),
            "x_nm": rng.uniform(0, 6400, n),
            "y_nm": rng.uniform(0, 6400, n),
            "photons": rng.uniform(1000, 5000, n),
            "background": rng.uniform(20, 100, n),
            "sigma_nm": np.full(n, 130.0),
            "uncertainty_nm": rng.uniform(3, 10, n),
            "crlb_x_nm": rng.uniform(3, 10, n),
            "crlb_y_nm": rng.uniform(3, 10, n),
        }
    )


@pytest.mark.parametrize("name", ["l.csv", "l_ts.csv", "l.thunderstorm.csv", "l.hdf5"])
def test_round_trip_keeps_frames_positions_and_photons(tmp_path, locs, name):
    written = write_localizations(tmp_path / name, locs, pixel_size_nm=100, shape=(20, 64, 64))
    back = read_localizations(tmp_path / name)
    assert written[0] == tmp_path / name
    np.testing.assert_array_equal(back["frame"], locs["frame"])
    # Picasso stores float32 pixels: 6400 nm / 100 nm = 64 px, float32 keeps ~1e-5 px.
    np.testing.assert_allclose(back["x_nm"], locs["x_nm"], atol=2e-3)
    np.testing.assert_allclose(back["y_nm"], locs["y_nm"], atol=2e-3)
    np.testing.assert_allclose(back["photons"], locs["photons"], rtol=1e-5)


def test_picasso_pixel_centres_are_at_whole_numbers(tmp_path):
    import h5py

    one = pd.DataFrame({"frame": [1], "x_nm": [50.0], "y_nm": [150.0], "photons": [1.0]})
    write_localizations(tmp_path / "a.hdf5", one, pixel_size_nm=100, shape=(1, 8, 8))
    with h5py.File(tmp_path / "a.hdf5") as fh:
        row = fh["locs"][0]
    # The centre of pixel (0, 1) is 50 nm, 150 nm from the corner: Picasso (x 0, y 1), frame 0.
    assert (row["frame"], row["x"], row["y"]) == (0, 0.0, 1.0)
    assert "Pixelsize: 100.0" in (tmp_path / "a.yaml").read_text()


def test_existing_output_is_kept(tmp_path, locs):
    from abbe.errors import OutputExistsError

    write_localizations(tmp_path / "l.csv", locs)
    with pytest.raises(OutputExistsError):
        write_localizations(tmp_path / "l.csv", locs)


def test_third_party_tables_read_in_nm(shared_data):
    smlm = shared_data / "smlm"
    ts = read_localizations(smlm / "deepstorm_demo1" / "positions_demo1.csv")
    assert ts["frame"].min() == 1 and ts["x_nm"].max() < 6400 and "photons" in ts.columns
    epfl = read_localizations(smlm / "thunderstorm_test" / "tubulins1_00020.csv")
    assert len(epfl) == 49 and (epfl["frame"] == 20).all()
    picasso = read_localizations(smlm / "picasso_samples" / "raw_movie_locs.hdf5")
    # 32 px of 130 nm; the first row sits at x 25.58 px (centre convention) → 3390 nm.
    assert len(picasso) == 2399
    assert picasso["x_nm"].iloc[0] == pytest.approx((25.577694 + 0.5) * 130, abs=1e-3)


def test_bad_tables_give_one_clear_error(tmp_path):
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="no localization columns"):
        read_localizations(tmp_path / "t.csv")
    (tmp_path / "n.csv").write_text("frame,x_nm,y_nm\n1,nan,2\n")
    with pytest.raises(InputError, match="NaN"):
        read_localizations(tmp_path / "n.csv")
    (tmp_path / "x.hdf5").write_text("not hdf5")
    with pytest.raises(InputError, match="Picasso"):
        read_localizations(tmp_path / "x.hdf5", pixel_size_nm=100)
    with pytest.raises(InputError, match="no such file"):
        read_localizations(tmp_path / "missing.csv")
