"""Errors that abbe raises on purpose: each says which file is wrong and what to do about it.

The command line turns any :class:`AbbeError` into one line, ``error: <file>: <message>``, and exit
status 2. Anything else escaping to the user is a bug in abbe.
"""

from __future__ import annotations

from os import PathLike


class _Located:
    """A message about a file: ``str()`` is ``<path>: <message>`` (the path printed first)."""

    def __init__(self, message: str, path: str | PathLike[str] | None = None) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class AbbeError(_Located, Exception):
    """Base of abbe's deliberate errors.

    Parameters
    ----------
    message : what is wrong and, where possible, what to do.
    path : the file or folder concerned, if any; it is printed first.
    """


class InputError(AbbeError):
    """An input cannot be used: missing, corrupt, wrong axes, NaN, mismatched pairs."""


class OutputExistsError(AbbeError):
    """An output already exists and ``overwrite`` was not given."""


class ConfigError(AbbeError):
    """A configuration (YAML, JSON or arguments) is invalid."""


class ModelError(AbbeError):
    """A model folder or bundled model name cannot be loaded."""


class Interrupted(_Located, KeyboardInterrupt):
    """Work stopped by Ctrl-C; the message says what was kept and how to continue.

    A :class:`KeyboardInterrupt`, so Python code that stops on Ctrl-C still does; the command line
    prints it as one line and exits with status 130.
    """


class AbbeWarning(UserWarning):
    """A result abbe cannot fully stand behind: the message says why and what to do.

    Library code emits it with :func:`warnings.warn`; the command line prints each one as
    ``warning: <file>: <message>`` and writes it into the output's ``warnings`` field, so a doubtful
    number is never silent (see :func:`abbe.cli.common.reported_warnings`).

    Parameters
    ----------
    message : what is doubtful and what to do.
    path : the file concerned, when the warning is about one file (e.g. its axes were guessed);
        printed first instead of the file the command is working on.
    """

    def __init__(self, message: str, path: str | PathLike[str] | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else str(path)
