"""``abbe models``: what is bundled, with its training data and validation scores."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from abbe.cli.common import out, print_json


def models(
    folder: Path = typer.Argument(
        None, help="A model folder, or a folder of model folders (default: the bundled models)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List models (the bundled ones, or those in FOLDER) of every method, what they were
    trained on and how well they scored."""
    from abbe.models import available

    rows = available(folder)
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print(f"no models in {folder}" if folder is not None else "no bundled models")
        return
    for r in rows:
        _describe(r)


def _describe(r: dict[str, Any]) -> None:

    out.print(
        f"[bold]{r['name']}[/bold]  ({str(r['method']).upper()}"
        f"{', axes ' + r['axes'] if r['axes'] else ''}, "
        f"{r['size_kb'] / 1024:.1f} MB; {r['usage']})"
    )
    if r["description"]:
        out.print(f"  {r['description']}")
    summary = (r["training_data"] or {}).get("summary")
    if summary:
        out.print(f"  trained on: {summary}")
    validation = r["metrics"].get("validation") or {}
    if validation.get("rows"):
        levels = list(next(iter(validation["rows"].values())))
        table = _level_table("  validation, PSNR in dB: model / input / non-local means", levels)
        for structure, cells in validation["rows"].items():
            table.add_row(
                f"  {structure}", *[f"{c[0]:.1f}/{c[1]:.1f}/{c[2]:.1f}" for c in cells.values()]
            )
        out.print(table)
    elif validation:
        by_level, rest = _split_scores(validation)
        for metric, cells in by_level.items():
            _print_score_table(metric, cells)
        if rest:
            out.print("  validation: " + ", ".join(_score(k, v) for k, v in rest.items()))
    out.print()


#: Readable names of the validation scores that models store in metrics.json.
SCORE_LABELS = {
    "simulated_ap50_mean": "mean AP@0.5 on simulated images",
    "images": "images",
    "balanced_accuracy": "balanced accuracy",
    "ece": "calibration error (ECE)",
    "saliency_inside_mean": "mean saliency inside the object",
    "crops": "crops",
}
# "ssim_filaments_100ph" (the model) and "ssim_filaments_100ph_bilinear" (a baseline).
_LEVEL_KEY = re.compile(
    r"^(?P<metric>ssim|psnr)_(?P<structure>[a-z]+)_(?P<photons>\d+)ph(_(?P<base>\w+))?$"
)


def _split_scores(
    validation: dict[str, Any],
) -> tuple[dict[str, dict[tuple[str, str], dict[str, float]]], dict[str, Any]]:
    """Scores per structure and photon level (shown as a table), and the others."""
    tables: dict[str, dict[tuple[str, str], dict[str, float]]] = {}
    rest: dict[str, Any] = {}
    for key, value in validation.items():
        m = _LEVEL_KEY.match(key)
        if m is None or not isinstance(value, int | float):
            rest[key] = value
            continue
        cell = tables.setdefault(m["metric"], {}).setdefault((m["structure"], m["photons"]), {})
        cell[m["base"] or "model"] = float(value)
    return tables, rest


def _print_score_table(metric: str, cells: dict[tuple[str, str], dict[str, float]]) -> None:

    columns = list(dict.fromkeys(c for v in cells.values() for c in v))
    columns = ["model"] + [c for c in columns if c != "model"]
    levels = sorted({p for _, p in cells}, key=int)
    table = _level_table(f"  validation, {metric.upper()}: {' / '.join(columns)}", levels)
    for structure in dict.fromkeys(s for s, _ in cells):
        row = []
        for level in levels:
            cell = cells.get((structure, level), {})
            row.append("/".join(f"{cell[c]:.3f}" if c in cell else "–" for c in columns))
        table.add_row(f"  {structure}", *row)
    out.print(table)


def _level_table(title: str, levels: list[Any]) -> Any:
    """A borderless table: one row per structure, one column per photon level."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=None, padding=(0, 2))
    table.add_column("  structure", no_wrap=True)
    for level in levels:
        table.add_column(f"{level} photons", justify="right", no_wrap=True)
    return table


def _score(key: str, value: Any) -> str:
    label = SCORE_LABELS.get(key, key.replace("_", " "))
    return f"{label} {value:.4g}" if isinstance(value, float) else f"{label} {value}"
