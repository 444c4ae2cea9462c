"""Every ``abbe … --help`` reads well at 80 and 120 columns: one paragraph per docstring
paragraph, value names instead of Python types, only defaults that mean something."""

from __future__ import annotations

import itertools
import re

import pytest


def _commands() -> list[tuple[str, ...]]:
    """Every command path: (), ("restore",), ("simulate", "smlm"), …"""
    import typer

    from abbe.cli.main import app

    paths: list[tuple[str, ...]] = []

    def walk(command, path: tuple[str, ...]) -> None:
        paths.append(path)
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return paths


COMMANDS = _commands()
# What Python or the option parser put there, not the author: types, ranges, placeholders.
NOISE = re.compile(
    r"<bool>|<int>|<float|<str>|<path>|list\[|x>=|x<=|<=x|FLOAT RANGE|INTEGER RANGE|`"
    r"|\[default: (-?[\d.]+) \1\]|\[default: -1"
)


def _help(cli, monkeypatch, path: tuple[str, ...], columns: int) -> str:
    monkeypatch.setenv("COLUMNS", str(columns))
    result = cli(*path, "--help")
    assert result.code == 0 and result.err == "", result
    return result.out


def test_every_verb_and_sub_verb_is_covered():
    names = {" ".join(p) for p in COMMANDS}
    assert {"", "restore", "localize", "train", "train care", "simulate smlm"} <= names
    assert len(COMMANDS) >= 25


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "abbe")
def test_help_fits_the_width_without_type_noise(cli, monkeypatch, path, columns):
    text = _help(cli, monkeypatch, path, columns)
    assert text.startswith("Usage: abbe")
    for line in text.splitlines():
        assert len(line) <= columns, line
        assert not NOISE.search(line), line
        # Words cut off to fit ("truncated wo...") or panels from another renderer.
        assert not line.endswith("...") or line.startswith("Usage:"), line
        assert "│" not in line and "╭" not in line, line


@pytest.mark.parametrize("columns", [80, 120, 200])
@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "abbe")
def test_no_sentence_is_broken_by_a_docstring_line_break(cli, monkeypatch, path, columns):
    # A line that stops mid-sentence (no closing punctuation) and goes on in lower case on the
    # next line is fine only where the next word would not have fitted: otherwise the break is
    # the docstring's, kept by the renderer. (4 columns spare for any panel border and padding.)
    lines = [
        ln.rstrip().rstrip("│").rstrip()
        for ln in _help(cli, monkeypatch, path, columns).splitlines()
    ]
    for first, second in itertools.pairwise(lines):
        following = second.strip(" │")
        if not first.strip(" │") or not following:
            continue
        mid_sentence = not re.search(r"[.:;!?)\]…]$", first) and following[0].islower()
        next_word = following.split()[0]
        would_fit = len(first) + 1 + len(next_word) <= columns - 4
        assert not (mid_sentence and would_fit), f"{first!r} / {second!r}"


def test_placeholder_defaults_say_where_the_value_comes_from(cli, monkeypatch):
    text = _help(cli, monkeypatch, ("train", "localizer"), 200)
    photons = next(line for line in text.splitlines() if "--photons" in line)
    assert "MIN MAX" in photons and "read off --stack" in photons
    assert "[default:" not in photons


def test_smlm_offers_only_the_structures_it_can_draw(cli, monkeypatch, tmp_path):
    text = _help(cli, monkeypatch, ("simulate", "smlm"), 120)
    line = next(ln for ln in text.splitlines() if "--structure" in ln)
    assert "filaments|puncta" in line and "nuclei" not in line and "rings" not in line
    refused = cli("simulate", "smlm", "-o", tmp_path / "s", "--structure", "rings")
    assert refused.code == 2 and len(refused.err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()
