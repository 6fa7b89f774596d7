"""The test environment's torch (scripts/test.sh, scripts/torch_index.py, tests/constraints.txt).

A fresh machine must get the CPU build by itself: PyPI carries only the CUDA build under the pinned
version. Here a local "PyPI" serves a CUDA stand-in and a local "CPU index" the `+cpu` build; pip runs
isolated from this machine's own pip configuration and wheels."""

from __future__ import annotations

import importlib.util
import json
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers.pypi_index import build_wheel, serve_tree, write_simple_index

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "tests" / "constraints.txt"

pytestmark = pytest.mark.skipif(not (platform.machine() in ("x86_64", "AMD64") and sys.platform != "darwin"),
                                reason="the +cpu local tag exists on x86-64 Linux/Windows only")


def _script():
    spec = importlib.util.spec_from_file_location("torch_index", ROOT / "scripts" / "torch_index.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def indexes(tmp_path):
    """root/pypi: torch 2.13.0 (the CUDA build's name); root/cpu: torch 2.13.0+cpu."""
    wheels = tmp_path / "wheels"
    cuda = build_wheel(wheels, "torch", "2.13.0", body="CUDA = True\n")
    cpu = build_wheel(wheels, "torch", "2.13.0+cpu", body="CUDA = False\n")
    root = tmp_path / "root"
    write_simple_index(root / "pypi", [cuda], root / "files")
    write_simple_index(root / "cpu", [cpu], root / "files")
    with serve_tree(root) as server:
        yield server, f"http://127.0.0.1:{server.server_port}"


def _resolve(pypi: str, options: list[str], tmp_path) -> subprocess.CompletedProcess:
    """What pip would install for `torch` under tests/constraints.txt, with no config, env or find-links
    of this machine."""
    report = tmp_path / "report.json"
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "--isolated", "--dry-run", "--ignore-installed", "--no-deps",
         "--disable-pip-version-check", "--no-cache-dir", "--report", str(report), "--index-url", pypi,
         *options, "-c", str(CONSTRAINTS), "torch"],
        capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PIP_CONFIG_FILE": "/dev/null"})


def _installed_version(tmp_path) -> str:
    report = json.loads((tmp_path / "report.json").read_text())
    return report["install"][0]["metadata"]["version"]


def test_a_fresh_machine_gets_the_cpu_torch_from_the_cpu_index(indexes, tmp_path):
    server, base = indexes
    options = _script().pip_options(f"{base}/cpu", None, _script().pinned_torch())
    assert options == ["--extra-index-url", f"{base}/cpu"]
    result = _resolve(f"{base}/pypi", options, tmp_path)
    assert result.returncode == 0, result.stderr
    assert _installed_version(tmp_path) == "2.13.0+cpu"


def test_without_the_cpu_index_pip_refuses_rather_than_taking_the_cuda_build(indexes, tmp_path):
    _server, base = indexes
    result = _resolve(f"{base}/pypi", [], tmp_path)
    assert result.returncode != 0
    assert not (tmp_path / "report.json").exists() or _installed_version(tmp_path) != "2.13.0"


def test_an_unreachable_cpu_index_is_left_out_at_once(capsys):
    """pip would retry it for every package; the script looks once, briefly, and says so."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = _script()
    started = time.monotonic()
    assert script.pip_options(f"http://127.0.0.1:{port}/cpu", None, script.pinned_torch(), timeout=5) == []
    assert time.monotonic() - started < 5
    assert "cannot be reached" in capsys.readouterr().err


def test_the_index_is_not_asked_when_the_pinned_torch_is_installed(indexes):
    server, base = indexes
    script = _script()
    assert script.pip_options(f"{base}/cpu", "2.13.0+cpu", script.pinned_torch()) == []
    assert server.RequestHandlerClass.log == []
    # a CUDA build already in the venv does not count as the pin: the index is offered
    assert script.pip_options(f"{base}/cpu", "2.13.0", script.pinned_torch()) == ["--extra-index-url", f"{base}/cpu"]


def test_the_script_runs_as_test_sh_runs_it():
    """Standard library only, its options one per line, nothing at all when turned off."""
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "torch_index.py")], capture_output=True,
                            text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "SDSETUP_TEST_TORCH_INDEX": ""})
    assert result.returncode == 0 and result.stdout == ""
    assert "torch_index.py" in (ROOT / "scripts" / "test.sh").read_text()
