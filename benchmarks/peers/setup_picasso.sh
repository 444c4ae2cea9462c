#!/usr/bin/env bash
# Build the Picasso peer venv for benchmarks/smlm.py (never the project's venv).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-$here/../.venv-picasso}"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet "picassosr==0.11.3"
"$venv/bin/python" -c "import picasso, picasso.localize; print('picasso', picasso.__version__)"
