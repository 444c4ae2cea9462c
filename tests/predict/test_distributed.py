"""Prediction on a Dask cluster (issue 24): tiles as tasks equal one process, a killed worker,
--resume, the model loaded once per worker."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pytest

from abbe import io
from abbe.errors import ConfigError, InputError, OutputExistsError
from abbe.predict import distributed as dist

MODEL = "denoise-widefield"


@pytest.fixture(scope="session")
def client():
    """Two worker processes, one thread each, no dashboard, closed at the end of the session.

    Session scope: under pytest-xdist this module's tests may be spread over workers and
    interleaved with others, which would start a module-scoped cluster again and again."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster, set_as_default=False) as c,  # other tests' dask stays in-process
    ):
        yield c


@pytest.fixture(scope="module")
def image_zarr(tmp_path_factory):
    """A 128×112 noisy image as OME-Zarr (Poisson, seed 0)."""
    root = tmp_path_factory.mktemp("dist")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:128, :112]
    clean = 20 + 30 * (np.sin(yy / 7.0) * np.cos(xx / 9.0)) ** 2
    image = rng.poisson(clean).astype(np.float32)
    path = root / "in.zarr"
    io.write(path, image, io.Meta("YX", pixel_size_nm=100.0))
    return path


@pytest.fixture(scope="module")
def one_process(image_zarr):
    """The reference: the same model, tiles of 32, in this process on one thread."""
    from abbe import models

    data, meta = io.read(image_zarr, lazy=True)
    return models.load(MODEL).predict(data, meta.axes, tile=32, threads=1)


def _restore(client, source, target, **kwargs):
    meta = io.read(source, lazy=True)[1]
    ref = dist.model_ref(MODEL)
    return dist.restore_tiles(
        client, ref, source, target, axes=None, meta=meta, tile=32, memory_mb=1024,
        quiet=True, **kwargs,
    )  # fmt: skip


def _level0(path):
    import zarr

    return zarr.open_group(path, mode="r")["0"][:]


def test_parse_cluster_reads_local_n_and_addresses():
    assert dist.parse_cluster("local:3") == dist.ClusterSpec(workers=3)
    assert dist.parse_cluster("local").workers == (os.cpu_count() or 1)
    assert dist.parse_cluster("tcp://host:8786").address == "tcp://host:8786"
    for bad in ("local:0", "local:x", "host:8786", ""):
        with pytest.raises(ConfigError, match="--cluster"):
            dist.parse_cluster(bad)


def test_tiles_as_tasks_equal_one_process_bit_for_bit(client, image_zarr, one_process, tmp_path):
    target = tmp_path / "out.zarr"
    run = _restore(client, image_zarr, target)
    # 128×112 in cores of 32: 4 × 4 tiles (the last column 16 wide), every one a task.
    assert (run.tiles, run.computed, run.skipped) == (16, 16, 0)
    np.testing.assert_array_equal(_level0(target), one_process)
    # The store is a readable OME-Zarr with the input's pixel size; nothing left beside it.
    _, meta = io.read(target)
    assert meta.pixel_size_nm == 100.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]


def test_the_model_is_loaded_once_per_worker(client, image_zarr, tmp_path):
    _restore(client, image_zarr, tmp_path / "a.zarr")
    before = client.run(dist.loads_in_this_process)
    _restore(client, image_zarr, tmp_path / "b.zarr")  # 16 more tasks
    after = client.run(dist.loads_in_this_process)
    # Each worker loaded the model at most once over 32 tasks, and not again for the second run.
    assert all(n <= 1 for n in after.values()), after
    assert after == before


def test_a_killed_worker_leaves_the_output_identical(client, image_zarr, one_process, tmp_path):
    target = tmp_path / "killed.zarr"
    _, manifest = dist.partial_paths(target)
    pids = client.run(os.getpid)
    killed: list[int] = []

    def kill_when_a_quarter_is_done() -> None:
        # The manifest is rewritten after every task (flush_seconds=0): kill one worker
        # process once 4 of the 16 tiles are done, while the others are running.
        while not killed:
            try:
                done = json.loads(manifest.read_text())["done"]
            except (OSError, ValueError, KeyError):
                done = []
            if len(done) >= 4:
                pid = sorted(pids.values())[0]
                os.kill(pid, signal.SIGKILL)
                killed.append(len(done))
            time.sleep(0.005)

    watcher = threading.Thread(target=kill_when_a_quarter_is_done, daemon=True)
    watcher.start()
    run = _restore(client, image_zarr, target, flush_seconds=0.0)
    watcher.join(timeout=5)
    assert killed and killed[0] < 16, "the worker was not killed during the run"
    assert run.computed == 16
    np.testing.assert_array_equal(_level0(target), one_process)
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it for the next tests


def test_resume_skips_finished_tiles_and_gives_the_same_output(
    client, image_zarr, one_process, tmp_path, monkeypatch
):
    import abbe.io.zarr as zarr_io

    target = tmp_path / "r.zarr"
    work, manifest = dist.partial_paths(target)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    # An interrupted first run: 6 tiles written, then stopped before the store was finished.
    monkeypatch.setattr(zarr_io, "finish_ome_zarr", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _restore(client, image_zarr, target, only=range(6))
    monkeypatch.undo()
    assert work.exists() and sorted(json.loads(manifest.read_text())["done"]) == list(range(6))
    # Rerun without --resume: refused, naming the way on.
    with pytest.raises(OutputExistsError, match="--resume"):
        _restore(client, image_zarr, target)
    # With another tile size the manifest does not fit: refused too.
    meta = io.read(image_zarr, lazy=True)[1]
    with pytest.raises(InputError, match="different run"):
        dist.restore_tiles(
            client, dist.model_ref(MODEL), image_zarr, target, axes=None, meta=meta, tile=64,
            memory_mb=1024, quiet=True, resume=True,
        )  # fmt: skip
    run = _restore(client, image_zarr, target, resume=True)
    assert (run.computed, run.skipped) == (10, 6)
    np.testing.assert_array_equal(_level0(target), one_process)
    assert not work.exists() and not manifest.exists()
    # A finished output with --resume: nothing to do; without it: refused.
    assert _restore(client, image_zarr, target, resume=True).computed == 0
    with pytest.raises(OutputExistsError, match="--overwrite"):
        _restore(client, image_zarr, target)


# ----------------------------------------------------------------------------- segmentation
@pytest.fixture(scope="module")
def nuclei_tif(tmp_path_factory):
    """300² simulated nuclei (seed 5, radius 10–14 px, 35 % covered): measured 18 px across,
    zoomed ×1.2 to the bundled model's size, 114 nuclei, many cut by borders of 104² tiles."""
    from abbe.simulate.cells import NucleiImageConfig, nuclei_image

    cfg = NucleiImageConfig(radius_px=(10.0, 14.0), coverage=(0.35, 0.35))
    path = tmp_path_factory.mktemp("seg") / "nuclei.tif"
    io.write(path, nuclei_image((300, 300), cfg, seed=5).image, io.Meta("YX", pixel_size_nm=100.0))
    return path


@pytest.fixture(scope="module")
def nuclei_one_process(nuclei_tif):
    """The reference: the bundled segmenter on the whole image in this process, one thread."""
    from abbe.segment import Segmenter

    return Segmenter.load("nuclei-fluo").predict(np.asarray(io.read(nuclei_tif)[0]), threads=1)


def _segment(client, source, target, **kwargs):
    ref = dist.model_ref("nuclei-fluo", loader="abbe.segment:Segmenter.load")
    return dist.segment_tiles(
        client, ref, source, target, axes=None, meta=io.Meta("YX", pixel_size_nm=100.0),
        tile=104, quiet=True, **kwargs,
    )  # fmt: skip


def _same_up_to_relabelling(a, b):
    """Each label of ``a`` (background included) meets exactly one label of ``b`` and vice
    versa (checked strictly in tests/predict/test_labels.py)."""
    pairs = np.unique(np.stack([np.ravel(a), np.ravel(b)]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


def test_segment_tiles_equal_one_process_up_to_relabelling(
    client, nuclei_tif, nuclei_one_process, tmp_path
):
    import zarr

    target = tmp_path / "labels.zarr"
    run = _segment(client, nuclei_tif, target)
    # 300² in cores of 104: 3 × 3 tasks; pieces of nuclei cut by the borders were joined.
    assert (run.tiles, run.computed, run.skipped) == (9, 9, 0) and run.merged > 20
    out = zarr.open_group(target, mode="r")["0"]
    assert out.dtype == np.uint32 and out.chunks == (104, 104)
    labels = out[:]
    one = nuclei_one_process
    assert one.max() > 50 and run.nuclei == one.max() == labels.max()
    assert _same_up_to_relabelling(one, labels)
    # Nuclei over a tile corner (in all four tiles around it) are in the reference: each is
    # one label there, hence here (the comparison above is one-to-one).
    corners = [(y, x) for y in (104, 208) for x in (104, 208)]
    over = [
        k for y, x in corners
        for k in set(one[y - 1 : y + 1, x - 1 : x + 1].ravel()) - {0}
        if all(one[y + dy, x + dx] == k for dy in (-1, 0) for dx in (-1, 0))
    ]  # fmt: skip
    assert over, "no nucleus covers a tile corner in this image"
    for k in over:
        assert len(np.unique(labels[one == k])) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.zarr"]
    _, meta = io.read(target)
    assert meta.pixel_size_nm == 100.0


def test_segment_tiles_resume_after_a_stop_and_a_killed_worker(
    client, nuclei_tif, nuclei_one_process, tmp_path
):
    target = tmp_path / "r.zarr"
    work, manifest = dist.partial_paths(target)
    # A first run stopped after 4 of the 9 tiles: the store and manifest stay for --resume.
    first = _segment(client, nuclei_tif, target, only=range(4))
    assert first.nuclei is None and work.exists() and not target.exists()
    with pytest.raises(OutputExistsError, match="--resume"):
        _segment(client, nuclei_tif, target)
    # The rerun with --resume loses a worker (SIGKILL) once 6 tiles are done.
    pids = client.run(os.getpid)
    killed: list[int] = []

    def kill_at_six() -> None:
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            try:
                done = json.loads(manifest.read_text())["done"]
            except (OSError, ValueError, KeyError):
                done = []
            if len(done) >= 6:
                os.kill(sorted(pids.values())[0], signal.SIGKILL)
                killed.append(len(done))
            time.sleep(0.005)

    watcher = threading.Thread(target=kill_at_six, daemon=True)
    watcher.start()
    run = _segment(client, nuclei_tif, target, resume=True, flush_seconds=0.0)
    watcher.join(timeout=5)
    assert (run.computed, run.skipped) == (5, 4)
    assert killed and killed[0] < 9, "the worker was not killed during the run"
    assert _same_up_to_relabelling(nuclei_one_process, np.asarray(io.read(target)[0]))
    assert not work.exists() and not manifest.exists()
    client.wait_for_workers(2, timeout=60)
