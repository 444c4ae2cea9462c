"""``abbe models``: what is bundled, with its training data and validation scores."""

from __future__ import annotations

import typer

from abbe.cli.common import out, print_json


def models(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the bundled models, what they were trained on and how well they scored."""
    from rich.table import Table

    from abbe.models import available

    rows = available()
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("no bundled models")
        return
    table = Table(title="bundled models (use the name with -m)", show_lines=True)
    for col in ("name", "method", "axes", "what it does", "trained on", "validation"):
        table.add_column(col, overflow="fold")
    for r in rows:
        data = r["training_data"] or {}
        scores = r["metrics"].get("validation", {})
        score_text = "\n".join(f"{k}: {v}" for k, v in scores.items()) or "—"
        table.add_row(
            r["name"],
            r["method"],
            r["axes"],
            r["description"],
            str(data.get("summary", "—")),
            score_text,
        )
    out.print(table)
