#!/usr/bin/env bash
# Build the onnxruntime peer venv that runs the bioimage.io "UNet 2D Nuclei Broad" model for
# benchmarks/segmentation.py (never the project's venv).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-$here/../.venv-bioimageio}"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet "onnxruntime==1.20.1" "numpy<2.3"
"$venv/bin/python" -c "import onnxruntime; print('onnxruntime', onnxruntime.__version__)"
