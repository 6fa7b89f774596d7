#!/usr/bin/env bash
# Runs the whole test suite in a fresh virtual environment (.venv), the way CI does.
# torch is pinned in tests/constraints.txt (the CPU build, `+cpu` on x86-64), never in the package's own
# requirements. On a fresh machine PyPI has only the CUDA build (2.5 GB) under that version: the CPU one
# comes from the PyTorch CPU index, which scripts/torch_index.py adds as an extra index for this install
# only, after one short look that it answers (pip would retry an unreachable index for every package;
# SDSETUP_TEST_TORCH_INDEX overrides the URL, empty turns it off). Where it cannot be reached, torch comes
# from a local wheel pip already knows (find-links, a local index), or pip stops: the pin never lets it
# fall back to the CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade "pip>=25.1" 2>/dev/null || true
TORCH_INDEX=()  # filled line by line (macOS's bash 3.2 has no mapfile)
while IFS= read -r option; do TORCH_INDEX+=("$option"); done < <(.venv/bin/python scripts/torch_index.py)
.venv/bin/python -m pip install -q -c tests/constraints.txt ${TORCH_INDEX[@]+"${TORCH_INDEX[@]}"} -e '.[test,runtime]'
# Once: real pip (>= 25.1), setuptools 69.5.1, wheel and packaging wheels for the local index of the
# install end-to-end test (tests/test_install_e2e.py upgrades a fresh venv's pip 23.2 from it, and builds
# a CLIP-like sdist against that setuptools). build/ is git-ignored.
ls build/test-wheels/pip-*.whl >/dev/null 2>&1 || .venv/bin/python -m pip download -q --no-deps --only-binary :all: \
    -d build/test-wheels "pip>=25.1" "setuptools==69.5.1" wheel packaging || true
exec .venv/bin/python -m pytest "$@"
