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
EXIT_INTERRUPTED = 130  # the shell's status for a process stopped by Ctrl-C (128 + SIGINT)


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
    where: dict[str, str | os.PathLike[str] | None] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AbbeWarning)
        try:
            yield messages
        finally:
            for w in caught:
                if not issubclass(w.category, AbbeWarning):
                    continue
                own = getattr(w.message, "path", None)
                # A warning about another file than the block's names it in the output too.
                text = str(w.message) if own in (None, str(path)) else f"{own}: {w.message}"
                if text not in messages:
                    messages.append(text)
                    where[text] = path if own in (None, str(path)) else None
    for m in messages:
        warn(m, where[m])


@contextmanager
def abbe_warnings_as_lines() -> Iterator[None]:
    """Print every :class:`~abbe.errors.AbbeWarning` that no :func:`reported_warnings` block
    collects as one ``warning: <file>: <message>`` line, like those the blocks print."""
    import warnings

    def show(message: Any, category: Any, filename: str, lineno: int, file=None, line=None) -> None:
        if issubclass(category, AbbeWarning):
            warn(str(message), getattr(message, "path", None))
        else:
            original(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        original = warnings.showwarning
        warnings.simplefilter("always", AbbeWarning)
        warnings.showwarning = show
        yield


def check_outputs(paths: Iterable[str | os.PathLike[str] | None], *, overwrite: bool) -> None:
    """Refuse, before any reading or training, outputs that already exist.

    Every verb calls this first with every file it will write (``None`` entries are skipped), so
    a refused overwrite costs nothing instead of the minutes the work took.

    Raises
    ------
    OutputExistsError
        For the first path that exists when ``overwrite`` is False, or that is a folder where a
        file is expected.
    """
    from abbe.io import check_writable

    for p in paths:
        if p is not None:
            check_writable(p, overwrite=overwrite)


def check_model_folder(folder: Path, *, resume: bool, overwrite: bool) -> None:
    """Check a training verb's model folder before any work.

    With ``resume`` the folder must hold a checkpoint to continue from; without it, a folder that
    already holds a model or checkpoints is refused unless ``overwrite`` (which clears them).

    Raises
    ------
    InputError
        ``resume`` without a checkpoint, or ``folder`` is a file.
    OutputExistsError
        A model or checkpoints are there and neither ``resume`` nor ``overwrite`` was given.
    """
    from abbe.errors import InputError
    from abbe.restore.model import prepare_output_folder
    from abbe.train.engine import CHECKPOINT_DIR, LAST

    if folder.exists() and not folder.is_dir():
        raise InputError("is a file; give a folder for the model", folder)
    if resume and not (folder / CHECKPOINT_DIR / LAST).exists():
        raise InputError(
            "no checkpoint to resume from; start without --resume", folder / CHECKPOINT_DIR
        )
    prepare_output_folder(folder, resume=resume, overwrite=overwrite)


@contextmanager
def model_folder(folder: Path) -> Iterator[Path]:
    """Create a training verb's model folder; remove it again if this run created it and failed
    before any checkpoint was written (a config or data error leaves no empty folder behind).

    An interrupted run keeps its folder: its checkpoint is what ``--resume`` continues from.
    """
    import shutil

    from abbe.train.engine import CHECKPOINT_DIR, LAST

    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    except BaseException:
        if created and not (folder / CHECKPOINT_DIR / LAST).exists():
            shutil.rmtree(folder, ignore_errors=True)
        raise


def run_guarded(fn: Any, *args: Any, **kwargs: Any) -> int:
    """Call ``fn``; turn abbe's errors and any unexpected failure into one line and exit status 2.

    Set ``ABBE_DEBUG=1`` to see the traceback of an unexpected failure.
    """
    from abbe.cli.command import VerbInterrupted

    try:
        result = fn(*args, **kwargs)
        return int(result or 0)
    except AbbeError as exc:
        fail(str(exc))
    except VerbInterrupted as exc:  # Ctrl-C inside a verb: what was kept, how to go on
        fail(exc.message)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        fail("interrupted; nothing was written")
        return EXIT_INTERRUPTED
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
