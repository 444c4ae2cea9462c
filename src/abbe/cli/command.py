"""How every ``abbe`` verb presents itself: plain help text that reads well at any terminal width,
and Ctrl-C turned into one line instead of a silent exit.

Typer's own help keeps the line breaks of docstrings, shows Python types (``<bool>``,
``<list[Path]>``), numeric ranges (``[x>=1e-09]``) and placeholder defaults; it also turns Ctrl-C
into a silent exit status. The classes here replace both for every command: the apps are
:class:`AbbeTyper`, whose commands are :class:`AbbeCommand` and groups :class:`AbbeGroup`.
"""

from __future__ import annotations

import enum
import os
import re
import shutil
import textwrap
from pathlib import Path
from typing import Any, get_args

import typer
from typer.core import TyperCommand, TyperGroup

#: Widest first column (options and their value) before the help moves to its own line.
MAX_NAME_WIDTH = 32
_GLUE = "\x00"  # stands for a space that must not break a line
_BRACKET = re.compile(r"\[(?:default|required)[^\]]*\]")


class VerbInterrupted(Exception):
    """Ctrl-C inside a verb, carried past typer (which would turn it into a silent exit 130)
    to :func:`abbe.cli.common.run_guarded`, which prints it as one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AbbeCommand(TyperCommand):
    """A verb: abbe's help layout, and Ctrl-C reported in one line."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        formatter.write(render_help(self, ctx))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            # Interrupted says what was kept and how to go on; a bare Ctrl-C said nothing.
            message = str(exc) or "interrupted; nothing was written"
            raise VerbInterrupted(message) from None


class AbbeGroup(TyperGroup):
    """A group of verbs (``abbe``, ``abbe simulate``, ``abbe train``) with abbe's help layout."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        formatter.write(render_help(self, ctx))


class AbbeTyper(typer.Typer):
    """A Typer app whose groups and commands use abbe's help and Ctrl-C handling."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", AbbeGroup)
        kwargs.setdefault("add_completion", False)
        kwargs.setdefault("rich_markup_mode", None)
        kwargs.setdefault("context_settings", {"help_option_names": ["-h", "--help"]})
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", AbbeCommand)
        return super().command(*args, **kwargs)


# ---------------------------------------------------------------------------------------- help
def terminal_width() -> int:
    """Columns for help text: ``COLUMNS``, else the terminal's (80 when there is none)."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = shutil.get_terminal_size((80, 24)).columns
    return max(40, columns)


def render_help(command: Any, ctx: Any, width: int | None = None) -> str:
    """The help of a command or group as plain text wrapped to ``width`` columns.

    One paragraph per docstring paragraph (its line breaks are the source's, not the reader's),
    options with a value name instead of a Python type, and only defaults that mean something.
    """
    width = width or terminal_width()
    lines = [_wrap(f"Usage: {ctx.command_path} {_usage(command, ctx)}", width)]
    for paragraph in paragraphs(command.help or ""):
        lines += ["", _wrap(paragraph, width, indent="  ")]
    arguments, options = [], []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        if param.param_type_name == "argument":
            arguments.append((_value_name(param), _param_help(param, ctx)))
        else:
            options.append((_option_names(param), _param_help(param, ctx)))
    if arguments:
        lines += ["", "Arguments:", *_table(arguments, width)]
    if options:
        lines += ["", "Options:", *_table(options, width)]
    commands = getattr(command, "commands", None)
    if commands:
        rows = [(name, short_help(sub)) for name, sub in commands.items() if not sub.hidden]
        lines += ["", "Commands:", *_table(rows, width)]
    return "\n".join(lines) + "\n"


def _usage(command: Any, ctx: Any) -> str:
    pieces = ["[OPTIONS]"]
    for param in command.get_params(ctx):
        if param.param_type_name == "argument":
            name = _value_name(param)
            pieces.append(name if param.required else f"[{name}]")
    if getattr(command, "commands", None):
        pieces.append("COMMAND [ARGS]...")
    return " ".join(pieces)


def paragraphs(text: str) -> list[str]:
    """A docstring's paragraphs, each on one line, without reST markup."""
    text = textwrap.dedent(text.partition("\f")[0])
    text = text.replace("``", "").replace("`", "")
    blocks = re.split(r"\n\s*\n", text.strip())
    return [" ".join(b.split()) for b in blocks if b.strip()]


def short_help(command: Any) -> str:
    """One line for a command list: its short help, or its docstring's first sentence."""
    if command.short_help:
        return " ".join(command.short_help.split())
    first = (paragraphs(command.help or "") or [""])[0]
    # The first sentence: up to a full stop followed by a space and a capital letter.
    match = re.search(r"\.\s+(?=[A-Z])", first)
    return first[: match.start() + 1] if match else first


def _wrap(text: str, width: int, indent: str = "") -> str:
    return textwrap.fill(
        text,
        width=width,
        initial_indent=indent,
        subsequent_indent=indent + ("  " if not indent else ""),
        break_long_words=False,
        break_on_hyphens=False,
    )


def _table(rows: list[tuple[str, str]], width: int) -> list[str]:
    """Two columns: names, then help wrapped beside them (below them when a name is long)."""
    name_width = min(max(len(name) for name, _ in rows), MAX_NAME_WIDTH)
    left = 2 + name_width + 2
    text_width = max(width - left, 20)
    out = []
    for name, text in rows:
        # "[default: …]" and "[required]" stay whole: a bracket split over two lines reads badly.
        text = _BRACKET.sub(lambda m: m.group(0).replace(" ", _GLUE), text)
        wrapped = [
            line.replace(_GLUE, " ")
            for line in textwrap.wrap(
                text, width=text_width, break_long_words=False, break_on_hyphens=False
            )
        ] or [""]
        if len(name) > name_width:
            out.append(f"  {name}")
            out += [" " * left + line for line in wrapped]
        else:
            out.append(f"  {name:<{name_width}}  {wrapped[0]}".rstrip())
            out += [" " * left + line for line in wrapped[1:]]
    return out


def _option_names(param: Any) -> str:
    names = sorted(param.opts, key=lambda o: (o.startswith("--"), o))  # -o before --output
    text = ", ".join(names)
    if param.secondary_opts:
        text += " / " + ", ".join(param.secondary_opts)
    if not getattr(param, "is_flag", False):
        text += f" {_value_name(param)}"
    return text


def _value_name(param: Any) -> str:
    """What a value looks like: the metavar given, the choices, or a plain word for the type."""
    if param.metavar:
        name = param.metavar
    else:
        annotation = getattr(getattr(param, "type_descriptor", None), "annotation", str)
        name = _type_word(annotation, param)
    if param.param_type_name == "argument" and not param.metavar:
        name = param.name.upper()
    if param.nargs == -1 or getattr(param, "multiple", False):
        name += "..."
    return name


def _type_word(annotation: Any, param: Any) -> str:
    args = get_args(annotation)
    if args and getattr(annotation, "__origin__", None) is tuple:
        return " ".join(_type_word(a, param) for a in args)
    if args:  # list[X]
        return _type_word(args[0], param)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "|".join(str(m.value) for m in annotation)
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return "PATH"
    return {int: "INTEGER", float: "NUMBER", bool: "", str: "TEXT"}.get(annotation, "VALUE")


def _param_help(param: Any, ctx: Any) -> str:
    text = " ".join(paragraphs(param.help or ""))
    if param.name == "help" and param.param_type_name == "option":
        text = "Show this help and exit."
    default = _default_text(param, ctx)
    if default:
        text += f" [default: {default}]"
    if param.required:
        text += " [required]"
    return text.strip()


def _default_text(param: Any, ctx: Any) -> str:
    """The default worth showing: none for flags that are off, empty values or ``None``; the
    text given as ``show_default`` when a placeholder stands for "read it from the data"."""
    show = getattr(param, "show_default", True)
    if isinstance(show, str):
        return show
    if show is False or param.required or getattr(param, "is_flag", False):
        return ""
    value = param.default
    if value is None or value == () or value == [] or callable(value):
        return ""
    if isinstance(value, tuple | list):
        return " ".join(_format_value(v) for v in value)
    return _format_value(value)


def _format_value(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
