#!/usr/bin/env bash
# Run the test suite: makes .venv if missing, installs assay with its pinned dependencies, runs pytest.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -c requirements.lock -e ".[dev,spark,otlp,models]"
exec .venv/bin/python -m pytest "$@"
