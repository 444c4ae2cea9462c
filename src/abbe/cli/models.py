"""``abbe models``: what is bundled, with its training data and validation scores."""

from __future__ import annotations

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
    from rich.table import Table

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
        table = Table(
            title="  validation, PSNR in dB: model / input / non-local means",
            title_justify="left",
            box=None,
            padding=(0, 2),
        )
        table.add_column("  structure", no_wrap=True)
        for level in levels:
            table.add_column(f"{level} photons", justify="right", no_wrap=True)
        for structure, cells in validation["rows"].items():
            table.add_row(
                f"  {structure}", *[f"{c[0]:.1f}/{c[1]:.1f}/{c[2]:.1f}" for c in cells.values()]
            )
        out.print(table)
    elif validation:
        out.print("  validation: " + ", ".join(f"{k} {v}" for k, v in validation.items()))
    out.print()
