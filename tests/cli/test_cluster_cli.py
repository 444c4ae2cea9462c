"""abbe restore / segment / localize --cluster: the same outputs as one process; --resume."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abbe import io


@pytest.fixture(scope="session")
def address():
    """A local cluster of two worker processes (one thread each, no dashboard), by address;
    session scope, as in tests/predict/test_distributed.py."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def noisy_dir(tmp_path_factory):
    """Three small noisy images (Poisson, seeds 0–2)."""
    root = tmp_path_factory.mktemp("noisy")
    yy, xx = np.mgrid[:96, :80]
    clean = 20 + 30 * (np.sin(yy / 6.0) * np.cos(xx / 8.0)) ** 2
    for k in range(3):
        image = np.random.default_rng(k).poisson(clean).astype(np.float32)
        io.write(root / f"img{k}.tif", image, io.Meta("YX", pixel_size_nm=100.0))
    return root


def _same_images(a, b, names):
    for name in names:
        np.testing.assert_array_equal(np.asarray(io.read(a / name)[0]), io.read(b / name)[0])


def test_restore_many_files_on_a_cluster_equals_one_process(cli, address, noisy_dir, tmp_path):
    r = cli(
        "restore", noisy_dir, "-m", "denoise-widefield", "-o", tmp_path / "one", "--threads", "1"
    )
    assert r.code == 0, r
    r = cli(
        "restore", noisy_dir, "-m", "denoise-widefield", "-o", tmp_path / "c", "--cluster", address
    )
    assert r.code == 0, r
    assert "cluster: 2 workers" in r.err and f"{noisy_dir / 'img2.tif'} → " in r.out
    _same_images(tmp_path / "one", tmp_path / "c", ["img0.tif", "img1.tif", "img2.tif"])


def test_restore_resume_redoes_only_missing_outputs(cli, address, noisy_dir, tmp_path):
    args = [
        "restore",
        noisy_dir,
        "-m",
        "denoise-widefield",
        "-o",
        tmp_path / "c",
        "--cluster",
        address,
    ]
    assert cli(*args, "-q").code == 0
    kept = tmp_path / "c" / "img0.tif"
    stamp = kept.stat().st_mtime_ns
    (tmp_path / "c" / "img1.tif").unlink()  # as if the run had stopped before it
    r = cli(*args)
    assert r.code == 2 and "--overwrite" in r.err  # a rerun without --resume is refused
    r = cli(*args, "--resume")
    assert r.code == 0, r
    assert "img1.tif" in r.out and "img0.tif" not in r.out
    assert kept.stat().st_mtime_ns == stamp and (tmp_path / "c" / "img1.tif").exists()


def test_restore_into_zarr_on_a_cluster_equals_one_process(cli, address, noisy_dir, tmp_path):
    src = noisy_dir / "img0.tif"
    # --tile 30 is rounded up to the network's multiple (4): cores and output chunks of 32.
    common = ["-m", "denoise-widefield", "--tile", "30"]
    assert cli("restore", src, *common, "-o", tmp_path / "one.zarr", "--threads", "1").code == 0
    r = cli("restore", src, *common, "-o", tmp_path / "c.zarr", "--cluster", address)
    assert r.code == 0, r
    assert "(9 of 9 tiles)" in r.out  # 96×80 in cores of 32: 3 × 3 tasks
    a, b = io.read(tmp_path / "one.zarr")[0], io.read(tmp_path / "c.zarr")[0]
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    import zarr

    assert zarr.open_group(tmp_path / "c.zarr", mode="r")["0"].chunks == (32, 32)


def test_segment_on_a_cluster_gives_the_same_labels(cli, address, tmp_path):
    from abbe.simulate.cells import nuclei_image

    for k in range(2):
        sim = nuclei_image((128, 128), seed=310 + k)
        io.write(tmp_path / "in" / f"n{k}.tif", sim.image, io.Meta("YX"))
    assert cli("segment", tmp_path / "in", "-o", tmp_path / "one", "--threads", "1", "-q").code == 0
    r = cli("segment", tmp_path / "in", "-o", tmp_path / "c", "--cluster", address, "-q")
    assert r.code == 0, r
    for k in range(2):
        a = np.asarray(io.read(tmp_path / "one" / f"n{k}.tif")[0])
        b = np.asarray(io.read(tmp_path / "c" / f"n{k}.tif")[0])
        assert a.max() > 3  # nuclei were found
        np.testing.assert_array_equal(a, b)


def test_segment_one_image_into_zarr_tile_by_tile(cli, address, tmp_path):
    import zarr

    from abbe.simulate.cells import NucleiImageConfig, nuclei_image

    cfg = NucleiImageConfig(radius_px=(10.0, 14.0), coverage=(0.35, 0.35))
    src = tmp_path / "n.tif"
    io.write(src, nuclei_image((208, 208), cfg, seed=5).image, io.Meta("YX", pixel_size_nm=100.0))
    assert cli("segment", src, "-o", tmp_path / "one.tif", "--threads", "1", "-q").code == 0
    args = ["segment", src, "-o", tmp_path / "c.zarr", "--cluster", address, "--tile", "104"]
    r = cli(*args)
    assert r.code == 0, r
    assert "(4 of 4 tiles" in r.out  # 208² in cores of 104: 2 × 2 tasks
    one = np.asarray(io.read(tmp_path / "one.tif")[0])
    labels = zarr.open_group(tmp_path / "c.zarr", mode="r")["0"][:]
    # Equal up to relabelling: each label meets exactly one label of the other image.
    pairs = np.unique(np.stack([one.ravel(), labels.ravel()]), axis=1)
    assert len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))
    assert one.max() > 20 and f"{one.max()} nuclei" in r.out
    attrs = zarr.open_group(tmp_path / "c.zarr", mode="r").attrs["abbe"]
    assert attrs["units"] == "labels" and attrs["nuclei"]["measured"] is True
    r = cli(*args, "--resume")
    assert r.code == 0 and "done before" in r.out, r.out


def test_localize_frame_chunks_on_a_cluster_give_the_same_table(cli, address, tmp_path):
    from abbe.cli.main import main

    sim = tmp_path / "sim"
    assert main(["simulate", "smlm", "-o", str(sim), "--frames", "30", "--seed", "4", "-q"]) == 0
    common = [sim / "stack.tif", "--camera", sim / "camera.json", "--chunk", "10", "-q"]
    assert cli("localize", *common, "-o", tmp_path / "one.csv").code == 0
    r = cli("localize", *common, "-o", tmp_path / "c.csv", "--cluster", address)
    assert r.code == 0, r
    one, clustered = pd.read_csv(tmp_path / "one.csv"), pd.read_csv(tmp_path / "c.csv")
    assert len(one) > 20 and one["frame"].nunique() > 10  # 3 chunks of 10 frames
    pd.testing.assert_frame_equal(one, clustered)


def test_a_bad_cluster_value_is_one_line_before_any_work(cli, noisy_dir, tmp_path):
    r = cli(
        "restore",
        noisy_dir,
        "-m",
        "denoise-widefield",
        "-o",
        tmp_path / "o",
        "--cluster",
        "local:0",
    )
    assert r.code == 2 and r.err.startswith("error: --cluster 'local:0'")
    assert not (tmp_path / "o").exists()
    # Tiles as tasks write no uncertainty map yet: said before a cluster starts.
    r = cli("restore", noisy_dir / "img0.tif", "-m", "denoise-widefield", "-o", tmp_path / "u.zarr",
            "--cluster", "local:2", "--uncertainty")  # fmt: skip
    assert r.code == 2 and "--uncertainty with --cluster" in r.err and "cluster:" not in r.err
