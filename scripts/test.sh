#!/usr/bin/env bash
# Runs the whole test suite in a fresh virtual environment (.venv), the way CI does.
# torch is pinned in tests/constraints.txt (a CPU build), never in the package's own requirements.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade "pip>=25.1" 2>/dev/null || true
.venv/bin/python -m pip install -q -c tests/constraints.txt -e '.[test,runtime]'
# Once: real pip (>= 25.1), setuptools 69.5.1, wheel and packaging wheels for the local index of the
# install end-to-end test (tests/test_install_e2e.py upgrades a fresh venv's pip 23.2 from it, and builds
# a CLIP-like sdist against that setuptools). build/ is git-ignored.
ls build/test-wheels/pip-*.whl >/dev/null 2>&1 || .venv/bin/python -m pip download -q --no-deps --only-binary :all: \
    -d build/test-wheels "pip>=25.1" "setuptools==69.5.1" wheel packaging || true
exec .venv/bin/python -m pytest "$@"
