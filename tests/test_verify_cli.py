"""`sdsetup verify` through the installed console script, as a user (and install) runs it.

Acceptance (issue 6): `sdsetup verify --smoke --python <venv with the runtime extra> --out a.png --json`
exits 0, writes a non-blank PNG, names `cpu` in the JSON, and gives the same image for the same seed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.verify import fixture_install
from tests.fixtures.verify.fixture_install import CPU_MACHINE, NVIDIA_MACHINE

CONSOLE_SCRIPT = Path(sys.executable).parent / ("sdsetup.exe" if os.name == "nt" else "sdsetup")

pytestmark = pytest.mark.slow


def sdsetup(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    child_env = dict(os.environ)
    child_env.update(env or {})
    return subprocess.run([str(CONSOLE_SCRIPT), *args], capture_output=True, text=True, env=child_env, cwd=cwd, timeout=600)


def pixels(path: Path) -> bytes:
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB").tobytes()


def test_acceptance_smoke_json_png_cpu_and_same_image_for_same_seed(tmp_path):
    images = []
    for name in ("a.png", "b.png"):
        result = sdsetup("verify", "--smoke", "--python", sys.executable, "--out", str(tmp_path / name), "--json")
        assert result.returncode == 0, result.stderr[-3000:]
        envelope = json.loads(result.stdout)
        assert envelope["ok"] is True and envelope["command"] == "verify" and envelope["exit_code"] == 0
        smoke = envelope["data"]["smoke"]
        assert smoke["device"] == "cpu" and smoke["ok"] is True
        assert envelope["data"]["items"][0]["status"] == "ok" and "cpu" in envelope["data"]["items"][0]["value"]
        images.append(tmp_path / name)
    first, second = (pixels(path) for path in images)
    assert len(set(first[i:i + 3] for i in range(0, len(first), 3))) > 500, "the image must not be blank"
    assert first == second


def test_smoke_failure_exits_1_with_the_fix_for_people(tmp_path):
    result = sdsetup("verify", "--smoke", "--python", sys.executable, env={"SDSETUP_SMOKE_POISON": "vae"})
    assert result.returncode == 1
    assert "[FAIL] smoke test" in result.stdout and "--no-half-vae" in result.stdout
    assert "Traceback" not in result.stderr


def test_smoke_with_a_python_that_does_not_exist(tmp_path):
    result = sdsetup("verify", "--smoke", "--python", str(tmp_path / "no-python"), "--json")
    assert result.returncode == 1
    item = json.loads(result.stdout)["data"]["items"][0]
    assert item["status"] == "fail" and "cannot start" in item["value"] and "--python" in item["fix"]


def test_verify_dir_without_record_exits_2_with_a_hint(tmp_path):
    result = sdsetup("verify", str(tmp_path), "--json")
    assert result.returncode == 2
    assert "no install record" in result.stderr and "hint: run `sdsetup install" in result.stderr
    assert json.loads(result.stdout)["error"]["kind"] == "usage"


def test_verify_a_file_instead_of_a_folder_says_so(tmp_path):
    (tmp_path / "webui.zip").write_bytes(b"PK")
    result = sdsetup("verify", str(tmp_path / "webui.zip"), "--json")
    assert result.returncode == 2
    error = json.loads(result.stdout)["error"]
    assert "is a file, not a folder" in error["message"] and "does not exist" not in error["message"]


@pytest.mark.parametrize("out", ["folder", "notes.txt/smoke.png"])
def test_a_bad_out_path_is_a_usage_error_before_the_smoke_test_runs(tmp_path, out):
    (tmp_path / "folder").mkdir()
    (tmp_path / "notes.txt").write_text("mine")
    result = sdsetup("verify", "--smoke", "--python", sys.executable, "--out", str(tmp_path / out), "--json")
    assert result.returncode == 2, result.stdout
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "usage" and error["message"].startswith("--out")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_verify_install_for_people_and_json(tmp_path):
    install = fixture_install.build(tmp_path / "webui")
    good = sdsetup("verify", str(install.root), env={"SDSETUP_MACHINE_FACTS": str(install.machine_file(CPU_MACHINE))})
    assert good.returncode == 0, good.stdout + good.stderr[-2000:]
    assert "checks passed" in good.stdout and "[ok  ] smoke test" in good.stdout

    # The same install replayed on a machine with an NVIDIA GPU: the CPU torch is the failure.
    bad = sdsetup("verify", str(install.root), "--json", env={"SDSETUP_MACHINE_FACTS": str(install.machine_file(NVIDIA_MACHINE, "nv.json"))})
    assert bad.returncode == 1
    data = json.loads(bad.stdout)["data"]
    assert "torch" in data["failed"] and "webui-user" in data["failed"]


def test_run_smoke_reports_a_crash_without_json_in_the_same_shape(tmp_path):
    """A torch that kills the process on import (as an illegal instruction would) still gives an answer."""
    from sdsetup.verify import run_smoke, smoke_item

    fake = tmp_path / "fake-site"
    fake.mkdir()
    (fake / "torch.py").write_text("import os, sys\nsys.stderr.write('Illegal instruction (core dumped)\\n')\nos._exit(132)\n")
    env = dict(os.environ, PYTHONPATH=str(fake))
    doc = run_smoke(sys.executable, env=env, cache_dir=tmp_path / "cache")
    assert doc["ok"] is False and doc["exit_code"] == 132
    assert doc["error"]["kind"] == "crashed" and "Illegal instruction" in doc["error"]["message"]
    assert smoke_item(doc)["status"] == "fail"
