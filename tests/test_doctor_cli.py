"""`sdsetup doctor` through the command line: JSON contract, exit codes, stdin, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from sdsetup import cli

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
ROOT = Path(__file__).resolve().parents[1]
FINDING_KEYS = {"id", "title", "explanation", "fix", "evidence", "source", "line", "autofix"}


def doctor(*args: str, input: str | bytes | None = None):
    return CliRunner().invoke(cli.app, ["doctor", *args], input=input)


def test_acceptance_clean_log_gives_no_finding_through_the_real_cli(isolated_env):
    env = dict(os.environ)
    result = subprocess.run([sys.executable, "-m", "sdsetup", "doctor", "--log", str(FIXTURES / "clean-webui-windows.log"), "--json"],
                            capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)  # exactly one JSON document on stdout
    assert doc["command"] == "doctor" and doc["ok"] is True
    assert doc["data"]["findings"] == []
    assert doc["data"]["summary"].startswith("No known problem found")
    assert [h["id"] for h in doc["data"]["harmless"]] == ["xformers-not-installed", "pip-upgrade-notice"]


def test_json_findings_carry_the_documented_keys_best_first():
    result = doctor("--log", str(FIXTURES / "pip-notice-trap.log"), "--json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)["data"]
    finding = data["findings"][0]
    assert FINDING_KEYS <= set(finding)
    assert finding["id"] == "pip-read-timeout"
    assert finding["source"].endswith("pip-notice-trap.log") and finding["line"] == 18
    assert any("Read timed out" in e for e in finding["evidence"])
    assert finding["fix"]["steps"] and "windows" in finding["fix"]["commands"]
    assert finding["autofix"] == {"action": "set_env", "args": ["PIP_DEFAULT_TIMEOUT=120"], "text": "set_env PIP_DEFAULT_TIMEOUT=120"}
    env = data["environment"]
    assert {"sdsetup", "platform", "python", "gpus"} <= set(env)
    assert data["sources"][0]["lines"] == 43


def test_people_get_the_cause_the_fix_and_what_is_harmless():
    result = doctor("--log", str(FIXTURES / "sd-repo-gone-not-found.log"))
    assert result.exit_code == 1
    out = result.stdout
    assert "1. The Stable Diffusion repository is gone" in out
    assert "fatal: repository 'https://github.com/Stability-AI/stablediffusion.git/' not found" in out
    assert 'export STABLE_DIFFUSION_REPO="https://github.com/w-e-w/stablediffusion.git"' in out
    assert "sdsetup doctor DIR --fix" in out
    assert "Couldn't clone Stable Diffusion." not in out.split("1. ")[1].split("why:")[0], "the wrapper is not the evidence"


def test_stdin_is_read_with_dash():
    data = (FIXTURES / "gbk-console-sd-repo-gone.log").read_bytes()
    result = doctor("--log", "-", "--json", input=data)
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["data"]["findings"][0]["id"] == "sd-repo-gone-not-found"
    assert doc["data"]["sources"][0]["source"] == "stdin"
    assert doc["data"]["sources"][0]["encoding"] == "gb18030"


def test_an_empty_log_is_reported_as_empty_not_as_nothing_wrong(tmp_path):
    empty = tmp_path / "console.txt"
    empty.write_bytes(b"")
    for args, stdin, name in ((["--log", "-"], b"", "stdin"), (["--log", "-"], b"\r\n  \n", "stdin"),
                              (["--log", str(empty)], None, str(empty))):
        doc = json.loads(doctor(*args, "--json", input=stdin).stdout)
        assert doc["exit_code"] == 0 and doc["data"]["findings"] == []
        assert doc["data"]["empty_logs"] == [name]
        assert not doc["data"]["summary"].startswith("No known problem") and "empty" in doc["data"]["summary"]
        assert any(name in w and "empty" in w for w in doc["warnings"])
        human = doctor(*args, input=stdin)
        assert human.exit_code == 0 and "No known problem" not in human.stdout
        assert f"warning: the log {name} was empty" in human.stderr
    # A log with text beside the empty one is still diagnosed, and the empty one is named.
    mixed = json.loads(doctor("--log", str(empty), "--log", str(FIXTURES / "cuda-oom.log"), "--json").stdout)
    assert mixed["data"]["findings"][0]["id"] == "cuda-oom" and mixed["data"]["empty_logs"] == [str(empty)]
    assert str(empty) in mixed["data"]["summary"]


def test_several_logs_are_read_together():
    result = doctor("--log", str(FIXTURES / "cuda-oom.log"), "--log", str(FIXTURES / "nan-vae.log"), "--json")
    ids = [f["id"] for f in json.loads(result.stdout)["data"]["findings"]]
    assert set(ids) == {"cuda-oom", "nan-vae"}


def test_sdsetups_own_run_logs_are_read_but_not_the_doctors(tmp_path, monkeypatch):
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    (log_dir / "sdsetup-install-20260101-000000-1.log").write_text(
        "2026-01-01 00:00:00 ERROR sdsetup.install: ImportError: libGL.so.1: cannot open shared object file: No such file or directory\n")
    (log_dir / "sdsetup-doctor-20260101-000001-2.log").write_text("CUDA out of memory. Tried to allocate 2 GiB\n")
    monkeypatch.setenv("SDSETUP_LOG_DIR", str(log_dir))
    result = doctor("--json")
    data = json.loads(result.stdout)["data"]
    assert [f["id"] for f in data["findings"]] == ["libgl-missing"]
    assert data["findings"][0]["source"].endswith("sdsetup-install-20260101-000000-1.log")
    # a helpdesk reading a log it was sent is not told about its own machine's run logs
    result = doctor("--log", str(FIXTURES / "clean-webui-linux.log"), "--json")
    data = json.loads(result.stdout)["data"]
    assert data["findings"] == [] and len(data["sources"]) == 1
    # on the user's PC (DIR given) they are read along with the log
    webui = tmp_path / "webui"
    webui.mkdir()
    result = doctor(str(webui), "--log", str(FIXTURES / "clean-webui-linux.log"), "--json")
    assert "libgl-missing" in [f["id"] for f in json.loads(result.stdout)["data"]["findings"]]


def test_nothing_to_read_says_so():
    result = doctor()
    assert result.exit_code == 0
    assert "nothing to read" in result.stdout


def test_bad_input_is_a_usage_error_with_a_hint(tmp_path):
    result = doctor("--log", str(tmp_path / "missing.txt"))
    assert result.exit_code == 2
    assert "missing.txt: no such file" in result.stderr and "hint:" in result.stderr
    assert "Traceback" not in result.output
    result = doctor("--log", str(tmp_path))
    assert result.exit_code == 2 and "is a folder" in result.stderr
    result = doctor("--fix", "--log", str(FIXTURES / "cuda-oom.log"))
    assert result.exit_code == 2 and "--fix needs the install folder" in result.stderr
    result = doctor(str(tmp_path / "nope"))
    assert result.exit_code == 2 and "is not a folder" in result.stderr
    (tmp_path / "report.zip").write_bytes(b"old")
    result = doctor("--log", str(FIXTURES / "cuda-oom.log"), "--bundle", str(tmp_path / "report.zip"))
    assert result.exit_code == 2 and "already exists" in result.stderr
    assert (tmp_path / "report.zip").read_bytes() == b"old", "an existing file is never overwritten"
    result = doctor("--log", str(FIXTURES / "cuda-oom.log"), "--bundle", str(tmp_path / "report.zip" / "new.zip"))
    assert result.exit_code == 2 and "is a file, not a folder" in result.stderr


def test_help_lists_the_options():
    result = CliRunner().invoke(cli.app, ["doctor", "--help"])
    assert result.exit_code == 0
    for option in ("--log", "--json", "--fix", "--yes", "--bundle"):
        assert option in result.stdout
