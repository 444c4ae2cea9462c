"""Small sample images shipped with abbe (simulated; reproduced by scripts/make_samples.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from abbe.errors import InputError

SAMPLE_DIR = Path(__file__).parent / "sample_data"


@dataclass(frozen=True, eq=False)
class Sample:
    """A noisy acquisition, its noise-free truth (same units) and how it was made."""

    name: str
    noisy: np.ndarray
    clean: np.ndarray
    meta: Any
    params: dict[str, Any]


def names() -> list[str]:
    """Names of the bundled samples."""
    return sorted(p.stem for p in SAMPLE_DIR.glob("*.json"))


def sample(name: str = "widefield-filaments") -> Sample:
    """Load a bundled sample by name."""
    from abbe import io

    if name not in names():
        raise InputError(f"no bundled sample {name!r}; choose from {', '.join(names())}")
    noisy, meta = io.read(SAMPLE_DIR / f"{name}_noisy.tif")
    clean, _ = io.read(SAMPLE_DIR / f"{name}_clean.tif")
    params = json.loads((SAMPLE_DIR / f"{name}.json").read_text())
    return Sample(name, noisy, clean, meta, params)
