"""The ``abbe`` command: one verb per job. Verbs live in their own modules and only wire."""

from __future__ import annotations

import sys

import click
import typer

from abbe import __version__
from abbe.cli import (
    calibrate,
    classify,
    demo,
    evaluate,
    export,
    localize,
    models,
    resolution,
    restore,
    segment,
    simulate,
    train,
    unmix,
    verify,
)
from abbe.cli.command import AbbeTyper
from abbe.cli.common import EXIT_ERROR, abbe_warnings_as_lines, fail, run_guarded

app = AbbeTyper(
    name="abbe",
    help="Deep learning for fluorescence microscopy: simulate, train, restore, verify.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(simulate.app, name="simulate")
app.add_typer(train.app, name="train")
app.command("restore")(restore.restore)
app.command("localize")(localize.localize)
app.command("unmix")(unmix.unmix)
app.command("calibrate")(calibrate.calibrate)
app.command("segment")(segment.segment)
app.command("classify")(classify.classify)
app.command("evaluate")(evaluate.evaluate)
app.command("resolution")(resolution.resolution)
app.command("verify")(verify.verify)
app.command("models")(models.models)
app.command("export")(export.export)
app.command("demo")(demo.demo)


def _version(value: bool) -> None:
    if value:
        print(f"abbe {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Deep learning for fluorescence microscopy: simulate, train, restore, verify."""


def _invoke(args: list[str]) -> int:
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="abbe", standalone_mode=False)
    except (click.Abort, typer.Abort):
        fail("aborted")
        return 130
    except Exception as exc:
        # Usage errors come from click or from the copy of click that typer vendors: recognise
        # them by their public interface rather than by class.
        if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
            raise
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            # A bare `abbe` (or `abbe train`) asks what there is: the help, not an error.
            sys.stdout.write(ctx.get_help() + "\n")
            return 0
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        fail(f"{exc.format_message()}{hint}")
        return EXIT_ERROR
    return int(result or 0) if isinstance(result, int) else 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns (and exits with) the status."""
    with abbe_warnings_as_lines():
        code = run_guarded(_invoke, list(sys.argv[1:] if argv is None else argv))
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
