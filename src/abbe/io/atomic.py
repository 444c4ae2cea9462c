"""Atomic writes: outputs appear whole or not at all, and existing files are kept unless asked."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from abbe.errors import OutputExistsError


def _default_mode() -> int:
    """Permissions a new file gets here (0o666 minus the umask); some writers create 0o600."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _default_mode()


def check_writable(path: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """Raise :class:`OutputExistsError` if ``path`` exists and ``overwrite`` is False."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise OutputExistsError("already exists; pass --overwrite to replace it", p)
    if p.exists() and p.is_dir() and not _looks_like_store(p):
        raise OutputExistsError("is a folder; give a file name", p)
    return p


def _looks_like_store(p: Path) -> bool:
    return p.suffix.lower() == ".zarr"


def temp_sibling(path: Path) -> Path:
    """A unique temporary name beside ``path`` (same filesystem, so the final rename is atomic).

    The original suffix is kept last so that libraries choosing a format by suffix still work.
    """
    return path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:8]}{path.suffix}")


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        p.unlink(missing_ok=True)


def commit(tmp: Path, final: Path) -> None:
    """Move a finished temporary file or folder onto its final name."""
    if tmp.is_dir() and final.exists():
        # os.replace cannot replace a non-empty folder: move the old one aside first.
        old = temp_sibling(final)
        final.rename(old)
        tmp.rename(final)
        _remove(old)
    else:
        if final.is_dir():
            _remove(final)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, final)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it replaces ``path``, on error it is removed.

    Examples
    --------
    >>> with atomic_path("out.tif", overwrite=False) as tmp:  # doctest: +SKIP
    ...     tifffile.imwrite(tmp, data)
    """
    final = check_writable(path, overwrite=overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(final)
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    commit(tmp, final)


class OutputSet:
    """Outputs that appear together: all are written to temporary names, renamed at the end.

    Every final name is checked before any work starts, so a refused overwrite costs nothing.

    Examples
    --------
    >>> with OutputSet(["a.tif", "b.json"], overwrite=False) as tmp:  # doctest: +SKIP
    ...     write_a(tmp["a.tif"]); write_b(tmp["b.json"])
    """

    def __init__(self, paths: list[str | os.PathLike[str]], *, overwrite: bool) -> None:
        self.finals = [check_writable(p, overwrite=overwrite) for p in paths]
        self.temps: dict[str, Path] = {}

    def __enter__(self) -> dict[str, Path]:
        for f in self.finals:
            f.parent.mkdir(parents=True, exist_ok=True)
            self.temps[str(f)] = temp_sibling(f)
        # Allow lookup by the name as given and by its final file name.
        return _TempMap(self.temps)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            for t in self.temps.values():
                _remove(t)
            return
        for final in self.finals:
            tmp = self.temps[str(final)]
            if tmp.exists():
                commit(tmp, final)


class _TempMap(dict):
    """Map final path (as str, Path, or bare file name) to its temporary path."""

    def __getitem__(self, key: str | os.PathLike[str]) -> Path:
        k = str(key)
        if k in self.keys():
            return super().__getitem__(k)
        matches = [v for f, v in self.items() if Path(f).name == Path(k).name]
        if len(matches) == 1:
            return matches[0]
        raise KeyError(k)
