#!/usr/bin/env bash
# Build the NanoPyx peer venv for benchmarks/resolution.py (never the project's venv).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-$here/../.venv-nanopyx}"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet "nanopyx==2.1.5"
"$venv/bin/python" -c "import nanopyx; print('nanopyx', nanopyx.__version__)"
