"""``abbe resolution`` and ``abbe verify`` on files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from abbe import io, simulate


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("res")
    from abbe.cli.main import main

    assert (
        main(
            [
                "simulate",
                "widefield",
                "-o",
                str(root / "sim"),
                "--size",
                "256",
                "--photons",
                "200",
                "--background",
                "5",
                "--seed",
                "4",
            ]
        )
        == 0
    )
    return root


def test_resolution_of_a_photon_image_gives_frc_and_decorrelation(cli, sim_dir, tmp_path):
    r = cli("resolution", sim_dir / "sim" / "input.tif", "--json", "-o", tmp_path / "c.png")
    assert r.code == 0, r
    data = json.loads(r.out)
    # The optics allow 243 nm; at 200 photons both measures land within 35 % above it.
    assert 230 < data["frc_nm"] < 330
    assert 230 < data["decorr_nm"] < 330
    # Pure photon counts: the checks find nothing to doubt; the cutoff comes from params.json.
    assert data["warnings"] == [] and "warning" not in r.err
    assert data["optical_cutoff_nm"] == pytest.approx(243.08, abs=0.01)
    assert abs(data["frc_noise_correlation"]) < 0.03
    assert data["frc_curve"]["curve"] and data["decorr_curve"]["curve"]
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_two_independent_images_use_two_image_frc(cli, tmp_path):
    sim = simulate.widefield("puncta", size=128, photons=150, seed=1)
    second = simulate.Camera.ideal().expose(sim.clean, seed=5)
    for name, img in (("a.tif", sim.input), ("b.tif", second)):
        io.write(tmp_path / name, img, io.Meta("YX", pixel_size_nm=100.0))
    r = cli("resolution", tmp_path / "a.tif", tmp_path / "b.tif", "--json")
    assert r.code == 0, r
    assert json.loads(r.out)["frc_nm"] > 0


def test_adu_images_without_a_gain_skip_frc_with_a_note(cli, tmp_path):
    # A camera with 2 ADU per photoelectron and a 100 ADU baseline, otherwise shot-noise limited:
    # converted back with --gain/--offset, the single-image FRC matches the photon image's.
    sim = simulate.widefield("filaments", size=128, photons=200, seed=2)
    adu = (2 * sim.input + 100).astype(np.uint16)
    io.write(tmp_path / "adu.tif", adu, io.Meta("YX", pixel_size_nm=100))
    io.write(
        tmp_path / "ph.tif", sim.input, io.Meta("YX", pixel_size_nm=100, extra={"units": "photons"})
    )
    r = cli("resolution", tmp_path / "adu.tif", "--json")
    data = json.loads(r.out)
    assert data["frc_nm"] is None and "--gain" in data["notes"][0]
    r = cli("resolution", tmp_path / "adu.tif", "--gain", "2", "--offset", "100", "--json")
    in_adu = json.loads(r.out)["frc_nm"]
    in_photons = json.loads(cli("resolution", tmp_path / "ph.tif", "--json").out)["frc_nm"]
    assert in_adu == pytest.approx(in_photons, rel=1e-6) and 230 < in_adu < 400
    assert json.loads(r.out)["warnings"] == []


def _simulate_readme_widefield(root, size: int = 256) -> None:
    """The README's `abbe simulate widefield` command, at 256² to keep the test fast."""
    from abbe.cli.main import main

    args = "--structure filaments --pixel-size 100 --na 1.3 --wavelength 632 --photons 50"
    args += " --background 2 --read-noise 2 --camera ideal --seed 1 -q"
    assert main(["simulate", "widefield", "-o", str(root), "--size", str(size), *args.split()]) == 0


def test_resolution_flags_read_noise_and_never_prints_finer_than_nyquist(cli, tmp_path):
    # Issue #28 (2): on the README's simulation `abbe resolution sim/input.tif` printed
    # "finer than the Nyquist limit (2 pixels)" and decorrelation 363 nm, without a doubt.
    _simulate_readme_widefield(tmp_path / "sim")
    image = tmp_path / "sim" / "input.tif"
    r = cli("resolution", image, "--json")
    assert r.code == 0, r
    data = json.loads(r.out)
    # The FRC number is withheld and every reason is in the JSON and on stderr.
    assert data["frc_nm"] is None and data["frc_noise_correlation"] > 0.25
    text = " ".join(data["warnings"])
    assert "not pure photon (Poisson) noise" in text and "a.tif b.tif" in text
    assert "odd/even" in text and "Nyquist limit (200 nm" in text
    # Decorrelation (issue #21): it read 363 nm here, 1.49× the optics, and was flagged; it now
    # reads what two acquisitions would, the FRC expectation with the read noise (313 nm).
    from abbe import io
    from abbe.metrics.resolution import expected_frc

    clean, _ = io.read(tmp_path / "sim" / "clean.tif")
    expected = expected_frc(clean, pixel_size_nm=100, variance=clean + 4.0).resolution_nm
    assert data["decorr_nm"] == pytest.approx(expected, rel=0.10)
    assert not any(m.startswith("decorrelation:") for m in data["warnings"])
    assert r.err.count("warning: ") == len(data["warnings"]) == 2
    r = cli("resolution", image)
    assert "finer than the Nyquist" not in r.out and "not measured" in r.out
    assert "warning: " in r.err


@pytest.mark.parametrize("camera, gain", [("scmos", 2.0), ("emccd", 100 / 45)])
def test_resolution_flags_camera_noise_after_gain_and_offset(cli, tmp_path, camera, gain):
    # ADU from a camera converted with its true gain and offset: the counts are photoelectrons,
    # but read noise, sCMOS pixel offsets and EMCCD excess noise are not Poisson.
    sim = simulate.widefield("filaments", size=128, photons=200, background=5, camera=camera)
    io.write(tmp_path / "adu.tif", sim.input, io.Meta("YX", pixel_size_nm=100))
    r = cli("resolution", tmp_path / "adu.tif", "--gain", gain, "--offset", 100, "--json")
    assert r.code == 0, r
    data = json.loads(r.out)
    assert data["frc_noise_correlation"] > 0.2
    assert any("not pure photon (Poisson) noise" in m for m in data["warnings"])
    assert "warning: " in r.err


def test_resolution_checks_against_the_optics_given_on_the_command_line(cli, sim_dir):
    # The simulation's optics give a 243 nm cutoff; a claimed NA of 0.3 gives 1053 nm, which
    # both measured resolutions beat: that contradiction is flagged, not printed as fact.
    image = sim_dir / "sim" / "input.tif"
    r = cli("resolution", image, "--na", 0.3, "--wavelength", 632, "--json")
    data = json.loads(r.out)
    assert data["optical_cutoff_nm"] == pytest.approx(632 / 0.6)
    assert any("FRC:" in m and "finer than the optical cutoff" in m for m in data["warnings"])
    assert any("decorrelation:" in m and "finer than" in m for m in data["warnings"])
    r = cli("resolution", image, "--na", 1.3)
    assert r.code == 2 and "--wavelength" in r.err


def test_resolution_needs_a_pixel_size(cli, tmp_path):
    io.write(tmp_path / "x.tif", np.random.default_rng(0).random((64, 64)).astype(np.float32))
    r = cli("resolution", tmp_path / "x.tif")
    assert r.code == 2 and "--pixel-size" in r.err


def test_verify_writes_error_map_panel_and_report(cli, sim_dir, tmp_path):
    root = sim_dir / "sim"
    r = cli("restore", root / "input.tif", "-m", "denoise-widefield", "-o", tmp_path / "r.tif")
    assert r.code == 0, r
    r = cli(
        "verify",
        tmp_path / "r.tif",
        "--input",
        root / "input.tif",
        "--truth",
        root / "clean.tif",
        "-o",
        tmp_path / "report",
    )
    assert r.code == 0, r
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["error_map"]["rsp"] > 0.9
    assert report["metrics"]["psnr"] > 30
    emap, meta = io.read(tmp_path / "report" / "error_map.tif")
    assert emap.shape == (256, 256) and meta.pixel_size_nm == pytest.approx(100)
    assert (tmp_path / "report" / "verify.png").exists()


def test_verify_with_different_grids_needs_pixel_sizes(cli, tmp_path):
    io.write(tmp_path / "big.tif", np.ones((100, 100), np.float32))
    io.write(tmp_path / "small.tif", np.ones((20, 20), np.float32))
    r = cli("verify", tmp_path / "big.tif", "--input", tmp_path / "small.tif", "-o", tmp_path / "o")
    assert r.code == 2 and "pixel size unknown" in r.err


@pytest.fixture(scope="module")
def adu_dir(tmp_path_factory):
    """Issue 28's pair, scaled down: an sCMOS simulation (ADU) restored, its truth in photons."""
    from abbe.cli.main import main

    root = tmp_path_factory.mktemp("units")
    sim = root / "sim"
    args = ["simulate", "widefield", "-o", sim, "--size", "64", "--camera", "scmos", "--seed", "1"]
    assert main([str(a) for a in args]) == 0
    restore = ["restore", sim / "input.tif", "-m", "denoise-widefield", "-o", root / "r.tif"]
    assert main([str(a) for a in restore]) == 0
    return root


SCORES = ("psnr", "ssim", "ms_ssim", "nrmse")


def test_evaluate_and_verify_agree_on_an_adu_result_against_a_photon_truth(cli, adu_dir, tmp_path):
    # Issue 28, finding 7: evaluate printed PSNR −14.5 for such a pair without a word, while
    # verify normalized silently (SSIM 0.967 against 0.989). Now one rule, stated and warned.
    result, truth = adu_dir / "r.tif", adu_dir / "sim" / "clean.tif"
    ev = cli("evaluate", result, "--truth", truth, "--json")
    assert ev.code == 0, ev
    scores = json.loads(ev.out)
    assert scores["normalization"] == "percentile-affine"
    assert len(scores["warnings"]) == 1 and "in ADU and the truth in photons" in ev.err
    assert ev.err.startswith(f"warning: {result}: ") and "--no-normalize" in ev.err
    v = cli(
        "verify",
        result,
        "--input",
        adu_dir / "sim" / "input.tif",
        "--truth",
        truth,
        "-o",
        tmp_path / "rep",
    )
    assert v.code == 0, v
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    # Same pair, same rule: the same numbers to rounding, the same normalization, the warning.
    for key in SCORES:
        assert report["metrics"][key] == pytest.approx(scores[key], rel=1e-9)
    assert report["metrics"]["normalization"] == "percentile-affine"
    assert scores["warnings"][0] in report["warnings"]
    assert "(normalized)" in v.out


def test_raw_scores_on_request_agree_too_and_say_how_to_compare(cli, adu_dir, tmp_path):
    result, truth = adu_dir / "r.tif", adu_dir / "sim" / "clean.tif"
    ev = cli("evaluate", result, "--truth", truth, "--json", "--no-normalize")
    scores = json.loads(ev.out)
    # ADU ≈ 1.6·photons + 100 against a truth spanning about 100 photons: PSNR below 0 dB.
    assert scores["normalization"] == "none" and scores["psnr"] < 0
    assert "use --normalize" in ev.err
    v = cli(
        "verify",
        result,
        "--input",
        adu_dir / "sim" / "input.tif",
        "--truth",
        truth,
        "--no-normalize",
        "-o",
        tmp_path / "rep",
    )
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["metrics"]["psnr"] == pytest.approx(scores["psnr"], rel=1e-9)
    assert report["metrics"]["normalization"] == "none" and "(raw)" in v.out


def test_a_photon_pair_on_one_scale_is_scored_raw_by_both_without_a_warning(cli, tmp_path):
    sim = simulate.widefield("filaments", size=64, photons=100, seed=2)
    meta = io.Meta("YX", pixel_size_nm=100.0, extra={"units": "photons"})
    io.write(tmp_path / "in.tif", sim.input, meta)
    io.write(tmp_path / "gt.tif", sim.clean, meta)
    ev = cli("evaluate", tmp_path / "in.tif", "--truth", tmp_path / "gt.tif", "--json")
    scores = json.loads(ev.out)
    assert scores["normalization"] == "none" and scores["warnings"] == [] and ev.err == ""
    v = cli(
        "verify",
        tmp_path / "in.tif",
        "--input",
        tmp_path / "in.tif",
        "--truth",
        tmp_path / "gt.tif",
        "-o",
        tmp_path / "rep",
    )
    assert v.code == 0, v
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["metrics"]["ssim"] == pytest.approx(scores["ssim"], rel=1e-9)
    assert report["metrics"]["normalization"] == "none" and "(raw)" in v.out
