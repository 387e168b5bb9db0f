#!/usr/bin/env bash
# Run the test suite: makes .venv if missing, installs assay with its pinned dependencies, runs pytest.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -c requirements.lock -e ".[dev,spark,otlp,models,rag]"
# Two workers where pytest-xdist is installed (CI has two cores; the suite is CPU-bound in one
# process): each test module runs whole in one worker and every Spark test in one worker, so
# module fixtures are made once and one JVM starts (tests/conftest.py's scheduler). Modules go
# out in collection order, the long integration ones first (xdist's default puts modules with
# many tests first, which left the docs run, minutes long, to the end). `-n 0` after this
# script's name runs in one process.
XDIST=()
if .venv/bin/python -c "import xdist" 2>/dev/null; then
  XDIST=(-n 2 --dist loadscope --no-loadscope-reorder)
fi
exec .venv/bin/python -m pytest "${XDIST[@]}" "$@"
