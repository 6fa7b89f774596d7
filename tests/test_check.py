"""`sdsetup check`: the CLI through Typer's runner, the JSON contract, recorded machines, and the
installed console script on this machine checked against the system's own answers."""

from __future__ import annotations

import glob
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sdsetup.cli import app
from sdsetup.commands import check
from sdsetup.detect import recommend
from sdsetup.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "detect"
CONSOLE_SCRIPT = Path(sys.executable).parent / ("sdsetup.exe" if os.name == "nt" else "sdsetup")
ITEM_KEYS = {"id", "name", "status", "value", "fix", "name_id", "value_id", "fix_id"}  # *_id: issue 16


def invoke(args, machine=None, env=None):
    env = dict(env or {})
    if machine:
        env["SDSETUP_MACHINE_FACTS"] = str(FIXTURES / machine)
    return CliRunner().invoke(app, ["check", *args], env=env)


def check_json(tmp_path, machine=None, *extra, env=None):
    result = invoke(["--json", "--dir", str(tmp_path / "sd"), *extra], machine, env)
    assert result.exit_code in (0, 1), result.stderr + result.stdout
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == result.exit_code
    return doc, result


def items(doc):
    return {item["id"]: item for item in doc["data"]["items"]}


def test_json_contract_keys_and_types(tmp_path):
    doc, result = check_json(tmp_path, "machine-rtx3060-windows.envelope.json")
    assert set(doc) == {"schema_version", "command", "ok", "exit_code", "warnings", "data"}
    assert doc["command"] == "check" and doc["schema_version"] == 1
    data = doc["data"]
    assert set(data) == {"install_dir", "items", "machine", "machine_replayed_from", "recommendation", "python", "git", "disk", "paths", "proxy"}
    ids = [item["id"] for item in data["items"]]
    assert len(ids) == len(set(ids))
    for item in data["items"]:
        assert set(item) == ITEM_KEYS
        assert item["status"] in ("ok", "warn", "fail")
        assert isinstance(item["value"], str) and isinstance(item["name"], str)
        assert (item["fix"] is None) if item["status"] == "ok" else isinstance(item["fix"], str)
    assert {"os", "git", "python", "gpu", "torch", "launch_flags", "ram", "disk_install_dir", "path", "proxy"} <= set(ids)
    assert set(data["recommendation"]) == {"backend", "torch_tag", "manifest", "reason", "gpu", "vram_tier", "launch_flags", "env", "notes"}
    assert isinstance(data["recommendation"]["launch_flags"], list) and isinstance(data["recommendation"]["env"], dict)
    assert set(data["python"]) == {"requested", "chosen", "candidates"}
    for candidate in data["python"]["candidates"]:
        assert set(candidate) == {"path", "version", "bits", "source", "status", "note"}
    assert set(data["git"]) == {"present", "version", "path"}
    for group in data["disk"]:
        assert set(group) == {"labels", "paths", "free_bytes", "required_bytes", "status"}
        assert isinstance(group["required_bytes"], int)
    assert set(data["paths"]) == {"fs_type", "pitfalls"}
    assert set(data["proxy"]) == {"sdsetup", "entries"}
    assert data["machine_replayed_from"].endswith("machine-rtx3060-windows.envelope.json")
    assert doc["ok"] == (not check.hard_failures(data)) and doc["exit_code"] == (1 if check.hard_failures(data) else 0)


def test_rtx3060_gets_cuda_cu121_and_its_flags(tmp_path):
    doc, _ = check_json(tmp_path, "machine-rtx3060-windows.envelope.json")
    advice = doc["data"]["recommendation"]
    assert (advice["backend"], advice["torch_tag"], advice["manifest"], advice["vram_tier"]) == ("cuda", "cu121", "a1111", "medium-sdxl")
    assert advice["launch_flags"] == ["--medvram-sdxl", "--xformers"]
    found = items(doc)
    assert found["nvidia_driver"]["status"] == "ok" and "cu121" in found["nvidia_driver"]["value"]
    assert found["gpu"]["status"] == "ok" and "NVIDIA GeForce RTX 3060" in found["gpu"]["value"]
    assert "replayed from" in found["os"]["value"]


def test_rtx5090_needs_the_dev_manifest_and_cu128(tmp_path):
    doc, _ = check_json(tmp_path, "machine-rtx5090-linux.data.json")
    advice = doc["data"]["recommendation"]
    assert (advice["torch_tag"], advice["manifest"]) == ("cu128", "a1111-dev")
    assert items(doc)["nvidia_driver"]["status"] == "ok"


def test_old_driver_gtx1080ti_gets_cu118_upcast_and_sdp(tmp_path):
    doc, _ = check_json(tmp_path, "machine-gtx1080ti-old-driver.json")
    advice = doc["data"]["recommendation"]
    assert advice["torch_tag"] == "cu118"
    assert advice["launch_flags"] == ["--medvram-sdxl", "--upcast-sampling", "--opt-sdp-attention"]


def test_amd_on_linux_gets_rocm_and_the_gfx_override(tmp_path):
    doc, _ = check_json(tmp_path, "machine-rx6700xt-linux.json")
    advice = doc["data"]["recommendation"]
    assert advice["backend"] == "rocm" and advice["env"] == {"HSA_OVERRIDE_GFX_VERSION": "10.3.0"}
    assert "HSA_OVERRIDE_GFX_VERSION=10.3.0" in items(doc)["launch_flags"]["value"]
    assert "nvidia_driver" not in items(doc)


def test_apple_silicon_gets_mps_with_the_macos_defaults(tmp_path):
    doc, _ = check_json(tmp_path, "machine-m2-macos.json")
    advice = doc["data"]["recommendation"]
    assert advice["backend"] == "mps" and advice["vram_tier"] == "unified"
    assert advice["env"] == {"PYTORCH_ENABLE_MPS_FALLBACK": "1"}


def test_32bit_os_is_a_hard_failure_with_exit_1(tmp_path):
    doc, result = check_json(tmp_path, "machine-windows-32bit.json")
    assert result.exit_code == 1 and doc["ok"] is False
    assert items(doc)["os"]["status"] == "fail" and "64-bit" in items(doc)["os"]["fix"]
    assert "os" in [item["id"] for item in check.hard_failures(doc["data"])]


def test_backend_cpu_on_a_gpu_machine(tmp_path):
    doc, _ = check_json(tmp_path, "machine-rtx3060-windows.envelope.json", "--backend", "cpu")
    assert doc["data"]["recommendation"]["launch_flags"] == list(recommend.CPU_FLAGS)
    assert items(doc)["gpu"]["status"] == "warn"


def test_backend_cuda_without_an_nvidia_gpu_fails(tmp_path):
    doc, result = check_json(tmp_path, "machine-windows-32bit.json", "--backend", "cuda")
    assert items(doc)["nvidia_driver"]["status"] == "fail" and result.exit_code == 1


def test_human_output_lists_items_candidates_and_the_recommendation(tmp_path):
    result = invoke(["--dir", str(tmp_path / "sd")], "machine-rtx3060-windows.envelope.json")
    assert result.exit_code in (0, 1)
    out = result.stdout
    assert re.search(r"^\[ok  \] git\s+\S", out, re.MULTILINE)
    assert "Recommendation: cuda backend, torch cu121 wheels, manifest a1111" in out
    assert "COMMANDLINE_ARGS: --medvram-sdxl --xformers" in out
    assert ("Ready to install" in out) == (result.exit_code == 0)


def test_proxy_password_never_reaches_the_output(tmp_path):
    env = {"HTTPS_PROXY": "http://wei:Sup3rS3cret@proxy.corp:8080"}
    doc, result = check_json(tmp_path, None, env=env)
    assert "Sup3rS3cret" not in result.stdout
    assert "http://wei:***@proxy.corp:8080" in items(doc)["proxy"]["value"]
    human = invoke(["--dir", str(tmp_path / "sd"), "--proxy", "http://bob:An0therS3cret@127.0.0.1:3128"], env=env)
    assert "Sup3rS3cret" not in human.stdout and "An0therS3cret" not in human.stdout and "bob:***@" in human.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--python", "/no/such/python"], "--python /no/such/python: no such file or command"),
        (["--backend", "vulkan"], "--backend vulkan: unknown backend"),
    ],
)
def test_bad_flags_are_one_error_line_and_a_hint(tmp_path, args, message):
    result = invoke(["--dir", str(tmp_path), *args])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == f"error: {message}"
    assert result.stderr.splitlines()[1].startswith("hint: ")
    assert "Traceback" not in result.stderr + result.stdout


def test_bad_dir_under_a_file_with_json_is_an_error_envelope(tmp_path):
    (tmp_path / "file").write_text("x")
    result = invoke(["--json", "--dir", str(tmp_path / "file" / "sd")])
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["error"]["kind"] == "usage" and "is a file" in doc["error"]["message"]


def test_bad_replay_file_is_a_usage_error(tmp_path):
    broken = tmp_path / "facts.json"
    broken.write_text("{")
    result = CliRunner().invoke(app, ["check", "--dir", str(tmp_path)], env={"SDSETUP_MACHINE_FACTS": str(broken)})
    assert result.exit_code == 2 and "SDSETUP_MACHINE_FACTS" in result.stderr and "Traceback" not in result.stderr


def test_required_bytes_from_install_fail_the_right_filesystem(tmp_path):
    data = check.collect(Settings(), tmp_path / "sd", required_bytes={"temp": 10**18})
    failing = check.hard_failures(data)
    assert failing and all(item["id"].startswith("disk_") for item in failing)
    temp_group = next(g for g in data["disk"] if "temp" in g["labels"])
    assert temp_group["status"] == "fail" and temp_group["required_bytes"] >= 10**18
    assert check.run(Settings(), tmp_path / "sd", required_bytes={"temp": 10**18}).exit_code == 1


def _record_network_calls(monkeypatch) -> list[str]:
    """Every connect/look-up this process attempts, refused as an unreachable network would be. Recorded,
    not raised as an AssertionError, which a probe's `except Exception` could swallow."""
    calls: list[str] = []

    def refuse(name):
        def call(*args, **kwargs):
            calls.append(f"{name}{args[1:] if name.startswith('socket.') else args}")
            raise OSError(101, "Network is unreachable")
        return call

    real_connect = socket.socket.connect

    def connect(self, address):
        if self.family == getattr(socket, "AF_UNIX", None):
            return real_connect(self, address)  # a local socket (e.g. a D-Bus probe) is not the network
        return refuse("socket.connect")(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("socket.connect_ex"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    return calls


def test_the_network_recorder_sees_a_connection_even_when_the_caller_swallows_it(monkeypatch):
    calls = _record_network_calls(monkeypatch)
    try:
        socket.create_connection(("example.com", 443), timeout=1)
    except Exception:  # noqa: BLE001 - what a probe would do
        pass
    assert calls


def test_check_makes_no_network_calls(tmp_path, monkeypatch):
    calls = _record_network_calls(monkeypatch)
    data = check.collect(Settings(), tmp_path / "sd")
    assert data["items"]
    assert calls == [], "check reached for the network"


# ------------------------------------------------------------------ acceptance: the real machine


def gpu_hardware_visible() -> bool:
    """Is there a GPU sdsetup should find? Answered from the OS, not from sdsetup's probes."""
    if platform.system() == "Darwin":
        return platform.machine() == "arm64"
    if shutil.which("nvidia-smi") or os.path.exists("/dev/nvidia0"):
        return True
    for vendor_file in glob.glob("/sys/class/drm/card*/device/vendor"):
        if Path(vendor_file).read_text().strip().lower() in ("0x10de", "0x1002", "0x8086"):
            return True
    return False


def system_ram_total() -> int:
    if Path("/proc/meminfo").exists():
        match = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
        return int(match.group(1)) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason="sdsetup is not installed in this environment")
def test_installed_check_json_tells_the_truth_about_this_machine(tmp_path):
    result = subprocess.run([str(CONSOLE_SCRIPT), "check", "--json", "--dir", str(tmp_path / "sd")], capture_output=True, text=True, timeout=120)
    assert result.returncode in (0, 1), result.stderr
    doc = json.loads(result.stdout)
    data = doc["data"]
    assert doc["exit_code"] == result.returncode == (1 if check.hard_failures(data) else 0)

    # Python: the interpreter the console script runs on, as that interpreter reports itself
    own_version = subprocess.run([sys.executable, "--version"], capture_output=True, text=True).stdout.split()[-1]
    current = [c for c in data["python"]["candidates"] if c["source"] == "current"]
    assert current and current[0]["version"] == own_version == platform.python_version()

    # git, as `git --version` says
    git_out = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout
    assert data["git"]["version"] == re.search(r"git version (\d+(?:\.\d+)+)", git_out).group(1)
    assert data["git"]["version"] in items(doc)["git"]["value"]

    # OS and architecture, as platform says
    machine_os = data["machine"]["os"]
    assert (machine_os["system"], machine_os["release"], machine_os["machine"]) == (platform.system(), platform.release(), platform.machine())
    assert machine_os["bits"] == (64 if sys.maxsize > 2**32 else 32)

    # RAM, as the kernel says; free disk, as shutil says (within what other tests write meanwhile)
    assert data["machine"]["ram_total_bytes"] == system_ram_total()
    install_group = next(g for g in data["disk"] if "install_dir" in g["labels"])
    assert abs(install_group["free_bytes"] - shutil.disk_usage(tmp_path).free) < 512 * 1024**2

    # GPU list and recommendation
    if gpu_hardware_visible():
        assert data["machine"]["gpus"], "the OS shows a GPU that check did not find"
    else:
        assert data["machine"]["gpus"] == []
        advice = data["recommendation"]
        assert (advice["backend"], advice["torch_tag"]) == ("cpu", "cpu")
        assert advice["launch_flags"] == ["--use-cpu", "all", "--precision", "full", "--no-half", "--skip-torch-cuda-test"]
        assert items(doc)["gpu"]["status"] == "warn"


@pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason="sdsetup is not installed in this environment")
def test_installed_check_bad_dir_is_one_line_and_a_hint(tmp_path):
    (tmp_path / "a-file").write_text("x")
    for bad in (tmp_path / "a-file" / "sd", tmp_path / "a-file"):
        result = subprocess.run([str(CONSOLE_SCRIPT), "check", "--dir", str(bad)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2
        lines = result.stderr.splitlines()
        assert len(lines) == 2 and lines[0].startswith("error: --dir ") and lines[1].startswith("hint: ")
        assert result.stdout == "" and "Traceback" not in result.stderr


def test_readiness_is_typed_and_is_checks_document(tmp_path):
    from sdsetup.detect.readiness import assess

    readiness = assess(Settings(), tmp_path / "sd", required_bytes={"temp": 10**18})
    assert readiness.data["items"] and [i["id"] for i in readiness.failures] == [i["id"] for i in check.hard_failures(readiness.data)]
    assert not readiness.ready and any(i["id"].startswith("disk") for i in readiness.failures)
    chosen = readiness.data["python"]["chosen"]
    assert (readiness.python.path if readiness.python else None) == (chosen or {}).get("path")
