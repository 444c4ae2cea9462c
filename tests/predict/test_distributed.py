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
