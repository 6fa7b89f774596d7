#!/usr/bin/env bash
# Runs the whole test suite in a fresh virtual environment (.venv), the way CI does.
# torch is pinned in tests/constraints.txt (a CPU build), never in the package's own requirements.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade "pip>=25.1" 2>/dev/null || true
.venv/bin/python -m pip install -q -c tests/constraints.txt -e '.[test,runtime]'
exec .venv/bin/python -m pytest "$@"
