"""What every CLI verb shares: consoles, progress, one-line errors and output paths."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

from abbe.errors import AbbeError, AbbeWarning

T = TypeVar("T")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_ERROR = 2


def fail(message: str) -> None:
    """Print ``error: message`` on one line to stderr."""
    err.print(f"error: {' '.join(str(message).split())}", markup=False)


def warn(message: str, path: str | os.PathLike[str] | None = None) -> None:
    """Print ``warning: [path: ]message`` on one line to stderr."""
    where = f"{path}: " if path is not None else ""
    err.print(f"warning: {where}{' '.join(str(message).split())}", markup=False)


@contextmanager
def reported_warnings(path: str | os.PathLike[str] | None = None) -> Iterator[list[str]]:
    """Collect the :class:`~abbe.errors.AbbeWarning` raised inside the block and print each once.

    The yielded list fills with the messages when the block ends, for the output's ``warnings``
    field (JSON, CSV sidecar, report): a doubtful result is flagged on the console and in the file.
    """
    import warnings

    messages: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AbbeWarning)
        try:
            yield messages
        finally:
            for w in caught:
                if issubclass(w.category, AbbeWarning) and str(w.message) not in messages:
                    messages.append(str(w.message))
    for m in messages:
        warn(m, path)


def run_guarded(fn: Any, *args: Any, **kwargs: Any) -> int:
    """Call ``fn``; turn abbe's errors and any unexpected failure into one line and exit status 2.

    Set ``ABBE_DEBUG=1`` to see the traceback of an unexpected failure.
    """
    try:
        result = fn(*args, **kwargs)
        return int(result or 0)
    except AbbeError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted; outputs were not written (training resumes with --resume)")
        return 130
    except MemoryError:
        fail("out of memory; use a smaller --tile or process fewer files at once")
    except Exception as exc:  # a bug in abbe: still one line, and a way to see more
        if os.environ.get("ABBE_DEBUG"):
            raise
        fail(f"unexpected {type(exc).__name__}: {exc} (set ABBE_DEBUG=1 for the traceback)")
    return EXIT_ERROR


def progress(
    items: Iterable[T], description: str, *, total: int | None = None, quiet: bool = False
) -> Iterator[T]:
    """Iterate with a rich progress bar on stderr (hidden with ``quiet`` or when not a terminal)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    if quiet or not err.is_terminal:
        yield from items
        return
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        yield from bar.track(items, total=total, description=description)


def print_json(data: Any) -> None:
    """Print JSON to stdout (not through rich, so it stays machine-readable)."""
    sys.stdout.write(json.dumps(data, indent=2, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serializable: {type(value).__name__}")


def write_json(path: Path, data: Any, *, overwrite: bool) -> None:
    """Write JSON atomically."""
    from abbe.io import atomic_path

    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
