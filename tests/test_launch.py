"""`sdsetup launch` end to end with a stand-in web UI (its launch.py) in a real install and venv.

What a user notices: the UI starts with what webui-user.sh sets (COMMANDLINE_ARGS as launch.py reads it),
its console is shown and kept where `doctor DIR` reads it; with --open the browser opens at the URL the UI
printed; a taken port is refused before anything starts; a UI that crashes with a known error ends with
the doctor's finding and fix printed; a UI that prints a fatal line and then waits is stopped."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sdsetup.launch.plan import fatal, port_of, ready_url
from tests import daytwo_world as dw

pytestmark = pytest.mark.slow

READY_UI = '''import os, sys, time
print("stand-in web UI; COMMANDLINE_ARGS=" + os.environ.get("COMMANDLINE_ARGS", ""), flush=True)
port = os.environ["COMMANDLINE_ARGS"].split("--port ")[1].split()[0]
print(f"Running on local URL:  http://127.0.0.1:{port}", flush=True)
time.sleep(0.5)
'''
CRASH_UI = '''import sys
print("Python 3.10.6 (main, Nov 14 2022, 16:10:14) [GCC 11.3.0]")
print("Version: v1.10.1")
print("Traceback (most recent call last):")
print('  File "/home/user/stable-diffusion-webui/launch.py", line 48, in <module>')
print("    main()")
print("RuntimeError: Torch is not able to use GPU; add --skip-torch-cuda-test to COMMANDLINE_ARGS variable to disable this check")
sys.exit(1)
'''
WAITING_UI = '''import time
print("Couldn't launch python", flush=True)
print("Press any key to continue . . .", flush=True)
time.sleep(120)
'''


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from tests.servers.fileserver import FileServer
    from tests.servers.gitserver import serve_git

    root = tmp_path_factory.mktemp("launch-world")
    (root / "files").mkdir()
    with serve_git(root / "git") as git, FileServer(root / "files") as files:
        built = dw.build(root, git, files)
        built.install = dw.make_install(built, root / "webui")
        yield built


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _set_ui(webui: Path, code: str, port: int) -> None:
    (webui / "launch.py").write_text(code, "utf-8")
    (webui / "webui-user.sh").write_text(
        f"#!/bin/bash\n# >>> sdsetup >>>\nexport COMMANDLINE_ARGS='--skip-torch-cuda-test --port {port}'\n# <<< sdsetup <<<\n", "utf-8")


def _launch(world, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sdsetup", "launch", str(world.install), *args], env=dw.env(world, **env),
                          capture_output=True, text=True, timeout=120)


def test_the_ui_starts_with_its_launch_files_and_open_opens_the_browser_when_ready(world, tmp_path):
    port = _free_port()
    _set_ui(world.install, READY_UI, port)
    opened = tmp_path / "opened.txt"
    recorder = tmp_path / "browser.py"
    recorder.write_text(f"import sys; open({str(opened)!r}, 'w').write(sys.argv[1])\n", "utf-8")
    result = _launch(world, "--open", BROWSER=f"{sys.executable} {recorder} %s")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"COMMANDLINE_ARGS=--skip-torch-cuda-test --port {port}" in result.stdout  # the console, streamed
    assert opened.read_text() == f"http://127.0.0.1:{port}"
    logs = sorted((world.install / ".sdsetup/logs").glob("launch-*.log"))
    assert logs and "Running on local URL" in logs[-1].read_text()


def test_a_taken_port_is_refused_before_the_ui_starts(world):
    port = _free_port()
    _set_ui(world.install, CRASH_UI, port)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        result = _launch(world, "--json")
    assert result.returncode == 1
    error = json.loads(result.stdout)["error"]
    assert str(port) in error["message"] and error["details"]["port"] == port
    assert "Traceback" not in result.stdout + result.stderr  # the UI never ran


def test_a_crash_with_a_known_error_prints_the_doctors_finding_and_fix(world):
    _set_ui(world.install, CRASH_UI, _free_port())
    result = _launch(world)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Torch is not able to use GPU" in result.stdout  # the UI's own console
    assert "most likely: Torch cannot use the GPU" in result.stdout
    assert "-> " in result.stdout  # its fix steps
    doc = json.loads(_launch(world, "--json").stdout)
    assert doc["exit_code"] == 1 and doc["data"]["finding"]["id"] == "torch-no-gpu" and doc["data"]["returncode"] == 1
    # The kept console is what `doctor DIR` (and its --bundle) reads.
    doctor = subprocess.run([sys.executable, "-m", "sdsetup", "doctor", str(world.install), "--json"], env=dw.env(world),
                            capture_output=True, text=True, timeout=180)
    findings = json.loads(doctor.stdout)["data"]["findings"]
    assert any(f["id"] == "torch-no-gpu" and "launch-" in f["source"] for f in findings)


def test_a_ui_waiting_after_a_fatal_line_is_stopped_and_diagnosed(world):
    _set_ui(world.install, WAITING_UI, _free_port())
    result = _launch(world, "--json")
    assert result.returncode == 1, result.stderr[-2000:]
    data = json.loads(result.stdout)["data"]
    assert data["fatal_line"] == "Couldn't launch python" and data["returncode"] != 0


@pytest.mark.parametrize("args, kind, expected", [
    ([], "a1111", ("127.0.0.1", 7860)),
    (["--port", "7861"], "forge", ("127.0.0.1", 7861)),
    (["--listen", "--port=9000"], "a1111", ("0.0.0.0", 9000)),
    ([], "comfyui", ("127.0.0.1", 8188)),
])
def test_the_port_is_read_from_the_flags(args, kind, expected):
    assert port_of(args, kind) == expected


def test_console_lines_are_read_for_readiness_and_fatal_errors():
    assert ready_url("Running on local URL:  http://127.0.0.1:7860") == "http://127.0.0.1:7860"
    assert ready_url("To see the GUI go to: http://127.0.0.1:8188") == "http://127.0.0.1:8188"
    assert ready_url("Loading weights") is None
    assert fatal("RuntimeError: Torch is not able to use GPU; add --skip-torch-cuda-test") == "Torch is not able to use GPU"
    assert fatal("Model loaded in 3.2s") is None


EXT_RUNNER_UI = '''import glob, os, subprocess, sys
# As A1111/Forge do at launch (launch_utils.run_extensions_installers): each extension's install.py, with
# the web UI's environment; a failure is printed and the web UI goes on.
for script in sorted(glob.glob(os.path.join("extensions", "*", "install.py"))):
    result = subprocess.run([sys.executable, script], capture_output=True, text=True)
    if result.returncode:
        print(f"Error running install.py for extension {os.path.dirname(script)}.", flush=True)
        print(f"Error code: {result.returncode}", flush=True)
        print("stdout: " + result.stdout, flush=True)  # A1111's launch_utils.run() reports both
        print("stderr: " + result.stderr, flush=True)
port = os.environ["COMMANDLINE_ARGS"].split("--port ")[1].split()[0]
print(f"Running on local URL:  http://127.0.0.1:{port}", flush=True)
'''
TORCH_INSTALLER = '''import subprocess, sys
result = subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--find-links", {wheels!r}, "torch==2.0.0"])
sys.exit(result.returncode)
'''


def test_an_extensions_install_py_cannot_replace_torch_at_launch_and_the_doctor_names_the_held_package(world, tmp_path):
    webui = dw.make_install(world, tmp_path / "webui")
    _set_ui(webui, EXT_RUNNER_UI, _free_port())
    installer = webui / "extensions/wants-old-torch/install.py"
    installer.parent.mkdir(parents=True)
    installer.write_text(TORCH_INSTALLER.format(wheels=str(world.wheels["torch-2.0.0"].parent)), "utf-8")
    env = {k: v for k, v in dw.env(world).items() if k not in ("PIP_CONSTRAINT", "UV_CONSTRAINT")}
    result = subprocess.run([sys.executable, "-m", "sdsetup", "launch", str(webui), "--json"], env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "The user requested (constraint) torch==2.1.0" in result.stderr  # pip's refusal, in the streamed console
    assert dw.venv_packages(webui)["torch"] == "2.1.0"
    held = (webui / ".sdsetup/held-constraints.txt").read_text("utf-8")
    assert "torch==2.1.0" in held.splitlines()

    doctor = subprocess.run([sys.executable, "-m", "sdsetup", "doctor", str(webui), "--json"], env=env,
                            capture_output=True, text=True, timeout=180)
    findings = json.loads(doctor.stdout)["data"]["findings"]
    found = [f for f in findings if f["id"] == "pip-held-constraint"]
    assert found and "torch==2.1.0" in json.dumps(found[0]), findings

    # Without the launch environment the same install.py does replace torch: the hold is what stopped it.
    subprocess.run([str(webui / "venv/bin/python"), str(installer)], env=env, capture_output=True, cwd=webui, timeout=120)
    assert dw.venv_packages(webui)["torch"] == "2.0.0"


@pytest.mark.parametrize("folder", ["plain", "with space"])
def test_the_constraint_variables_reach_pip_through_sh_and_bat_quoting(world, tmp_path, folder):
    """held_env's value written with the launch files' own quoting reads back as written, and pip (with
    the file:// form where the folder has a space) refuses another torch with it."""
    from sdsetup.launch.held import held_env, render
    from sdsetup.webui_user_file import effective_env, set_line

    root = tmp_path / folder
    (root / ".sdsetup").mkdir(parents=True)
    (root / ".sdsetup/held-constraints.txt").write_text(render({"torch": "2.1.0"}), "utf-8")
    env = dict(held_env(root))
    assert set(env) == {"PIP_CONSTRAINT", "UV_CONSTRAINT"} and not any(c.isspace() for c in env["PIP_CONSTRAINT"])
    for flavour in ("sh", "bat"):
        text = "\n".join(set_line(k, v, flavour, base=str(root)) for k, v in env.items()) + "\n"
        assert effective_env(text, flavour, str(root) + "/") ["PIP_CONSTRAINT"].replace("\\", "/") == env["PIP_CONSTRAINT"], text
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin/python"
    wheels = str(world.wheels["torch-2.0.0"].parent)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-index", "--find-links", wheels, "torch==2.1.0"], check=True,
                   capture_output=True)
    refused = subprocess.run([str(python), "-m", "pip", "install", "--no-index", "--find-links", wheels, "torch==2.0.0"],
                             capture_output=True, text=True, env={**os.environ, **env})
    assert refused.returncode == 1 and "The user requested (constraint) torch==2.1.0" in refused.stdout + refused.stderr
