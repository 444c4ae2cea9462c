"""Every code block of README.md works as written (issue 28).

The Python block runs on small inputs made here; every ``abbe`` command line names a verb, options
and choices that exist; the Makefile has the targets it names; the YAML is a valid training
configuration; and nothing points outside the repository.
"""

from __future__ import annotations

import re
import shlex
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from abbe import io, simulate

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _blocks(language: str) -> list[str]:
    """The README's fenced code blocks in ``language``."""
    return re.findall(rf"^```{language}\n(.*?)^```", README.read_text(), flags=re.M | re.S)


def _command_lines() -> list[str]:
    """The shell command lines of the bash blocks: comments dropped, continuations joined."""
    lines: list[str] = []
    pending = ""
    for block in _blocks("bash"):
        for raw in block.splitlines():
            line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            line = (pending + line).strip()
            pending = ""
            if line:
                lines.append(line)
    return lines


ABBE_LINES = [line for line in _command_lines() if line.split()[0] == "abbe"]


@lru_cache(maxsize=1)
def _root_command() -> Any:
    import typer

    from abbe.cli.main import app

    return typer.main.get_command(app)


def test_the_bash_blocks_hold_the_abbe_commands_and_make_targets():
    # Guards the parsing below: a README without commands would make the next test vacuous.
    lines = _command_lines()
    assert len(ABBE_LINES) >= 40
    assert {line for line in lines if not line.startswith("abbe ")} == {"make demo", "make test"}
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo", "test"):
        assert re.search(rf"^{target}:", makefile, flags=re.M), target


@pytest.mark.parametrize("line", ABBE_LINES)
def test_each_abbe_command_names_a_verb_options_and_choices_that_exist(line):
    tokens = [t.strip("[]") for t in shlex.split(line)[1:]]
    command = _root_command()
    path = ["abbe"]
    # Typer builds on its own copy of click: groups are told by their ``commands``.
    while tokens and tokens[0] in getattr(command, "commands", {}):
        command = command.commands[tokens[0]]
        path.append(tokens.pop(0))
    name = " ".join(path)
    if "--help" not in tokens and "--version" not in tokens:
        assert not hasattr(command, "commands"), f"{name}: no verb in {line!r}"
    options = {"-h", "--help"}
    by_name: dict[str, Any] = {}
    for param in command.params:
        for opt in [*param.opts, *getattr(param, "secondary_opts", [])]:
            options.add(opt)
            by_name[opt] = param
    for i, token in enumerate(tokens):
        if not token.startswith("-") or re.fullmatch(r"-\d+(\.\d*)?", token):
            continue  # a value, an argument or a negative number
        option = token.split("=")[0]
        assert option in options, f"{name} has no option {option} (README: {line!r})"
        param = by_name.get(option)
        choices = _choices(param)
        if choices and i + 1 < len(tokens):
            for value in tokens[i + 1].split("|"):
                assert value in choices, f"{name} {option}: no choice {value!r}"


def _choices(param: Any) -> set[str]:
    """The values an option accepts when they are a fixed set (an enum), else empty."""
    # Typer 0.29 keeps them on its type descriptor; click (older typer) on the param's type.
    holder = getattr(param, "type_descriptor", None) or getattr(param, "type", None)
    if holder is None or getattr(holder, "is_choice", True) is False:
        return set()
    return {str(getattr(c, "value", c)) for c in getattr(holder, "choices", None) or ()}


def test_the_yaml_block_is_a_valid_training_configuration(tmp_path):
    from abbe.cli.train import _build_config

    (block,) = _blocks("yaml")
    (tmp_path / "cfg.yaml").write_text(block)
    # The path `abbe train care --config cfg.yaml` takes: unknown keys would be errors.
    cfg = _build_config("care", tmp_path / "cfg.yaml", {}, "YX", None)
    assert cfg.network.width == 16 and cfg.network.depth == 3
    assert cfg.training.patch_size == 64 and cfg.training.loss == "mse"
    assert cfg.normalization.high == pytest.approx(99.8)


def test_the_python_block_runs_as_written(tmp_path, monkeypatch):
    # Arrange: the files it reads, small; cells.tif is nuclei at 65 nm pixels, as it says.
    monkeypatch.chdir(tmp_path)
    sim = simulate.widefield("nuclei", size=96, pixel_size_nm=65, seed=1)
    io.write("cells.tif", sim.input, io.Meta("YX", pixel_size_nm=65.0))
    io.write("huge.zarr", sim.input, io.Meta("YX", pixel_size_nm=65.0))
    (block,) = _blocks("python")
    namespace: dict = {"__name__": "readme"}
    # Act
    exec(compile(block, str(README), "exec"), namespace)
    # Assert: the names it uses are its own, and what its comments say holds.
    img, scores, labels = namespace["img"], namespace["scores"], namespace["labels"]
    assert io.read("out.ome.tif")[1].pixel_size_nm == pytest.approx(65.0)
    assert scores.normalization == "percentile-affine" and np.isfinite(scores.psnr)
    assert labels.shape == img.shape
    assert namespace["noisy_stack"].shape == (4, 64, 64)
    assert (tmp_path / "my_model" / "weights.safetensors").exists()


def test_nothing_in_the_readme_points_outside_the_repository():
    text = README.read_text()
    assert "../" not in text
    targets = re.findall(r"\]\(([^)]+)\)", text)
    quoted = re.findall(r"`([\w.-]+/[\w./-]*\.(?:py|md|toml|yaml))`", text)
    for target in [t for t in targets if not re.match(r"[a-z]+://|#", t)] + quoted:
        path = (ROOT / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT) and path.exists(), target
