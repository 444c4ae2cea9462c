"""``abbe train`` and ``abbe restore`` on files, and their errors."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from abbe import io


@pytest.fixture
def pair_folders(tmp_path, filament_pairs):
    noisy, clean = filament_pairs
    for name, stack in (("in", noisy[:4]), ("gt", clean[:4])):
        (tmp_path / name).mkdir()
        for i, img in enumerate(stack):
            io.write(tmp_path / name / f"img{i}.tif", img, io.Meta("YX", pixel_size_nm=100.0))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {"network": {"width": 8}, "training": {"patch_size": 32, "steps_per_epoch": 5}}
        )
    )
    return tmp_path, cfg


def test_train_then_restore_writes_a_restored_tiff_with_the_pixel_size(cli, pair_folders):
    root, cfg = pair_folders
    model = root / "model"
    r = cli(
        "train",
        "care",
        "-i",
        root / "in",
        "-t",
        root / "gt",
        "-o",
        model,
        "--epochs",
        2,
        "--config",
        cfg,
        "-q",
    )
    assert r.code == 0, r
    for name in ("config.yaml", "weights.safetensors", "metrics.json", "history.csv"):
        assert (model / name).exists()
    r = cli(
        "restore",
        root / "in" / "img0.tif",
        root / "in" / "img1.tif",
        "-m",
        model,
        "-o",
        root / "out",
        "--tile",
        "48",
    )
    assert r.code == 0, r
    out, meta = io.read(root / "out" / "img1.tif")
    assert out.shape == (96, 96) and out.dtype == np.float32
    assert meta.pixel_size_nm == pytest.approx(100.0)


def test_restore_streams_ome_zarr_to_ome_zarr(cli, pair_folders, filament_pairs):
    root, cfg = pair_folders
    noisy, _ = filament_pairs
    cli("train", "n2v", "-i", root / "in", "-o", root / "m", "--epochs", 1, "--config", cfg, "-q")
    io.write(root / "big.zarr", np.tile(noisy[0], (3, 3)), io.Meta("YX", pixel_size_nm=65.0))
    r = cli(
        "restore", root / "big.zarr", "-m", root / "m", "-o", root / "big_out.zarr", "--tile", "64"
    )
    assert r.code == 0, r
    lazy, meta = io.read(root / "big_out.zarr", lazy=True)
    assert lazy.shape == (288, 288) and meta.pixel_size_nm == pytest.approx(65.0)
    r = cli("restore", root / "big.zarr", "-m", root / "m", "-o", root / "big.tif")
    assert r.code == 0, r
    np.testing.assert_allclose(lazy.compute(), io.read(root / "big.tif")[0], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("train", "care", "-i", "{root}/in", "-t", "{root}/nothing", "-o", "{root}/m"),
            "file not found",
        ),
        (
            ("train", "care", "-i", "{root}/in", "-t", "{root}/in/img0.tif", "-o", "{root}/m"),
            "4 inputs but 1 targets",
        ),
        (
            (
                "train",
                "care",
                "-i",
                "{root}/in",
                "-t",
                "{root}/gt",
                "-o",
                "{root}/m",
                "--config",
                "{root}/bad.yaml",
            ),
            "setting training.bogus",
        ),
        (("train", "n2v", "-i", "{root}/in", "-o", "{root}/m", "--resume"), "no checkpoint"),
        (
            ("restore", "{root}/in/img0.tif", "-m", "no-such-model", "-o", "{root}/o.tif"),
            "neither a bundled model",
        ),
        (
            ("restore", "{root}/in/img0.tif", "-m", "{root}", "-o", "{root}/o.tif", "--tile", "x"),
            "--tile",
        ),
        (
            (
                "restore",
                "{root}/in/img0.tif",
                "{root}/in/img1.tif",
                "-m",
                "{root}",
                "-o",
                "{root}/o.tif",
            ),
            "output folder",
        ),
    ],
)
def test_errors_are_one_line_with_exit_2(cli, pair_folders, args, message):
    root, _ = pair_folders
    (root / "bad.yaml").write_text("training:\n  bogus: 1\n")
    r = cli(*[a.format(root=root) for a in args])
    assert r.code == 2
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.err


def test_restore_keeps_existing_outputs(cli, pair_folders):
    root, cfg = pair_folders
    cli("train", "n2v", "-i", root / "in", "-o", root / "m", "--epochs", 1, "--config", cfg, "-q")
    target = root / "o.tif"
    target.write_bytes(b"keep me")
    r = cli("restore", root / "in" / "img0.tif", "-m", root / "m", "-o", target)
    assert r.code == 2 and "--overwrite" in r.err
    assert target.read_bytes() == b"keep me"


def test_restore_names_outputs_after_inputs_and_turns_png_into_tiff(tmp_path):
    from pathlib import Path

    from abbe.cli.restore import output_paths

    inputs = [Path("a/x.png"), Path("b/y.tif"), Path("c/z.zarr")]
    assert output_paths(inputs, tmp_path / "out") == [
        tmp_path / "out" / "x.tif",
        tmp_path / "out" / "y.tif",
        tmp_path / "out" / "z.zarr",
    ]
    assert output_paths([Path("x.tif")], tmp_path / "single.tif") == [tmp_path / "single.tif"]
    with pytest.raises(Exception, match="share a file name"):
        output_paths([Path("a/x.tif"), Path("b/x.tif")], tmp_path / "out")


def test_an_existing_zarr_store_is_one_output_not_a_folder(tmp_path):
    """A .zarr store is a folder on disk: a rerun (--resume) must reopen it, not write inside."""
    from pathlib import Path

    from abbe.cli.restore import output_paths

    store = tmp_path / "out.zarr"
    store.mkdir()
    assert output_paths([Path("x.tif")], store) == [store]
