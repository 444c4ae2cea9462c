"""The command line: verbs that work, and every error as one line, exit status 2, no output."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from abbe import io


def test_help_lists_the_verbs(cli):
    result = cli("--help")
    assert result.code == 0
    for verb in ("simulate", "evaluate", "demo"):
        assert verb in result.out


def test_simulate_widefield_writes_input_clean_object_and_params(cli, tmp_path):
    out = tmp_path / "sim"
    result = cli(
        "simulate",
        "widefield",
        "-o",
        out,
        "--size",
        64,
        "--pixel-size",
        80,
        "--photons",
        40,
        "--camera",
        "ideal",
        "--seed",
        3,
    )
    assert result.code == 0, result
    inp, meta = io.read(out / "input.tif")
    clean, _ = io.read(out / "clean.tif")
    obj, obj_meta = io.read(out / "object.tif")
    params = json.loads((out / "params.json").read_text())
    assert inp.shape == clean.shape == (64, 64)
    assert obj.shape == (256, 256)
    assert meta.pixel_size_nm == pytest.approx(80)
    assert obj_meta.pixel_size_nm == pytest.approx(20)
    assert params["psf"] == "airy" and params["units"]["input"] == "photons"
    assert clean.max() == pytest.approx(40 + params["background"], rel=1e-5)


def test_simulate_with_a_real_camera_writes_uint16_adu(cli, tmp_path):
    out = tmp_path / "s"
    assert (
        cli(
            "simulate",
            "widefield",
            "-o",
            out,
            "--size",
            32,
            "--camera",
            "scmos",
            "--structure",
            "nuclei",
        ).code
        == 0
    )
    inp, _ = io.read(out / "input.tif")
    assert inp.dtype == np.uint16
    assert (out / "labels.tif").exists()


def test_evaluate_prints_json_with_the_four_metrics(cli, tmp_path):
    out = tmp_path / "sim"
    cli("simulate", "widefield", "-o", out, "--size", 64)
    result = cli("evaluate", out / "input.tif", "--truth", out / "clean.tif", "--json")
    assert result.code == 0, result
    data = json.loads(result.out)
    assert {"psnr", "ssim", "ms_ssim", "nrmse"} <= set(data)
    assert 5 < data["psnr"] < 60
    table = cli("evaluate", out / "input.tif", "--truth", out / "clean.tif")
    assert "PSNR" in table.out and "MS-SSIM" in table.out


def test_existing_outputs_are_kept_without_overwrite(cli, tmp_path):
    out = tmp_path / "sim"
    assert cli("simulate", "widefield", "-o", out, "--size", 32, "--seed", 1).code == 0
    before = (out / "input.tif").read_bytes()
    again = cli("simulate", "widefield", "-o", out, "--size", 32, "--seed", 2)
    assert again.code == 2
    assert again.err.startswith("error: ") and "--overwrite" in again.err
    assert (out / "input.tif").read_bytes() == before
    assert (
        cli("simulate", "widefield", "-o", out, "--size", 32, "--seed", 2, "--overwrite").code == 0
    )
    assert (out / "input.tif").read_bytes() != before


def _bad_inputs(tmp_path):
    good = tmp_path / "good.tif"
    tifffile.imwrite(good, np.ones((16, 16), np.float32))
    trunc = tmp_path / "trunc.tif"
    tifffile.imwrite(trunc, np.ones((8, 64, 64), np.float32), photometric="minisblack")
    trunc.write_bytes(trunc.read_bytes()[:2000])
    text = tmp_path / "text.tif"
    text.write_text("not an image\n")
    cplx = tmp_path / "complex.tif"
    tifffile.imwrite(cplx, np.ones((16, 16), np.complex64))
    nan = tmp_path / "nan.tif"
    tifffile.imwrite(nan, np.full((16, 16), np.nan, np.float32))
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    small = tmp_path / "small.tif"
    tifffile.imwrite(small, np.ones((8, 8), np.float32))
    return good, {
        "missing": (tmp_path / "missing.tif", "file not found"),
        "truncated": (trunc, "not a readable TIFF"),
        "text": (text, "not a readable TIFF"),
        "complex": (cplx, "unsupported pixel type"),
        "nan": (nan, "NaN"),
        "empty": (empty, "empty"),
        "mismatched pair": (small, "differs from the truth"),
    }


@pytest.mark.parametrize(
    "case", ["missing", "truncated", "text", "complex", "nan", "empty", "mismatched pair"]
)
def test_bad_input_gives_one_line_naming_the_file_and_exit_2(cli, tmp_path, case):
    good, cases = _bad_inputs(tmp_path)
    path, message = cases[case]
    result = cli("evaluate", path, "--truth", good)
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ") and str(path) in lines[0] and message in lines[0]
    assert "Traceback" not in result.err


def test_axes_that_do_not_fit_give_one_line(cli, tmp_path):
    good, _ = _bad_inputs(tmp_path)
    result = cli("evaluate", good, "--truth", good, "--axes", "ZYX")
    assert result.code == 2
    assert "3 letters but the image has 2 dimensions" in result.err


@pytest.mark.parametrize(
    "args",
    [
        ("simulate", "widefield"),  # missing -o
        ("simulate", "widefield", "-o", "x", "--size", "3"),
        ("simulate", "widefield", "-o", "x", "--psf", "bessel"),
        ("frobnicate",),
    ],
)
def test_usage_errors_are_one_line_with_exit_2_and_write_nothing(cli, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    result = cli(*args)
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1 and result.err.startswith("error: ")
    assert list(tmp_path.iterdir()) == []


def test_console_script_is_installed_and_runs():
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("abbe")  # installed beside the interpreter
    assert exe.exists(), "the console script 'abbe' is not installed"
    done = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.startswith("abbe ")
