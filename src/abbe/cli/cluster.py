"""``--cluster`` and ``--resume``: the options of the verbs that predict on a Dask cluster
(restore, segment, localize), and the client they open (:mod:`abbe.predict.distributed`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

CLUSTER_HELP = (
    "Run on a Dask cluster: local (one worker process per core), local:N (N processes, one "
    "thread each) or a scheduler address (tcp://host:8786). One task per file; one image "
    "into a .zarr output: one task per tile. Prints the dashboard link."
)
RESUME_HELP = (
    "Rerun of an interrupted command: skip the outputs (and, with --cluster into a .zarr, the "
    "tiles) that are already finished."
)


def cluster_option() -> Any:
    return typer.Option(None, "--cluster", help=CLUSTER_HELP)


def resume_option() -> Any:
    return typer.Option(False, "--resume", help=RESUME_HELP)


@contextmanager
def cluster_client(spec: str, *, quiet: bool) -> Iterator[Any]:
    """A Dask client for ``--cluster``, its dashboard link printed (on stderr, so stdout stays
    the verb's own). ``ABBE_DASHBOARD=0`` starts a local cluster without a dashboard."""
    from abbe.cli.common import err
    from abbe.predict.distributed import connect, parse_cluster

    parsed = parse_cluster(spec)  # a bad value is a one-line error before any work
    dashboard = os.environ.get("ABBE_DASHBOARD", "1") != "0"

    def announce(line: str) -> None:
        if not quiet:
            err.print(line, markup=False)

    with connect(parsed, dashboard=dashboard, announce=announce) as client:
        yield client
