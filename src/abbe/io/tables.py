"""Tables on disk: CSV rows written atomically (training histories; localizations later)."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from abbe.io.atomic import atomic_path


def write_rows(
    path: str | os.PathLike[str],
    rows: Sequence[dict[str, Any]],
    *,
    columns: Sequence[str] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write dictionaries as CSV rows (header from ``columns`` or the first row), atomically."""
    fields = list(columns) if columns is not None else list(rows[0]) if rows else []
    with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)
