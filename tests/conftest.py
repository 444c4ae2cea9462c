"""Shared fixtures: small simulated data, the shared third-party data folder, a CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# Two workers share two cores: one thread each keeps them from fighting (OpenMP threads that
# outnumber cores spin and slow everything down several-fold).
os.environ.setdefault("OMP_NUM_THREADS", "1")
try:
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
except ImportError:  # pragma: no cover
    pass

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The third-party data beside the checkout (../shared/data); tests skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


class CLIResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"CLIResult(code={self.code}, out={self.out!r}, err={self.err!r})"


@pytest.fixture
def cli(capsys):
    """Run ``abbe ARGS…`` in-process and return its exit code and captured output."""
    from abbe.cli.main import main

    def run(*args: str | Path) -> CLIResult:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CLIResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def filament_pairs():
    """Nine simulated 96² widefield filament images (30 photons peak) with their clean truth."""
    from abbe import simulate

    sims = [
        simulate.widefield("filaments", size=96, photons=30, background=2, seed=s) for s in range(9)
    ]
    noisy = np.stack([s.input for s in sims])
    clean = np.stack([s.clean for s in sims])
    return noisy, clean
