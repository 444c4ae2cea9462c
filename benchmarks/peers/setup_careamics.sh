#!/usr/bin/env bash
# Build the CAREamics peer venv for benchmarks/denoise.py (never the project's venv).
# CAREamics pins torchvision, whose PyPI build does not load beside the CPU torch 2.13.0; the
# torch 2.14.1 + torchvision 0.29.1 pair on this machine's disk (a CUDA build, ~5.5 GB, runs on
# the CPU) does. careamics itself goes in with --no-deps so pip never swaps that torch.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-$here/../.venv-careamics}"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet torch==2.14.1 torchvision==0.29.1
"$venv/bin/pip" install --quiet --no-deps "careamics==0.3.5"
# careamics' own requirements, minus torch/torchvision (already there).
"$venv/bin/pip" install --quiet "bioimageio.core" "lightning" "pydantic" "pyyaml" "tifffile" \
    "numpy" "scikit-image" "zarr" "typer" "psutil" "matplotlib" "safetensors" "pydantic-settings"
"$venv/bin/python" -c "import careamics, torch; print('careamics', careamics.__version__, 'torch', torch.__version__)"
