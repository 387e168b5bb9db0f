#!/usr/bin/env bash
# Run the demo: makes .venv if missing, installs assay, then runs `assay demo`.
# Usage: bash scripts/demo.sh [assay demo options...]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -c requirements.lock -e ".[models,rag]"
exec .venv/bin/assay demo "$@"
