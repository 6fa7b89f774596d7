"""The support bundle: what a user sends the helpdesk. Secrets must appear nowhere in it."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sdsetup import cli
from sdsetup.doctor.support_zip import Excerpt
from sdsetup.doctor.secrets import Redactor
from tests.doctor_helpers import make_install, make_venv

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
CANARY_PASSWORD = "S3cretCanaryPw9"
CANARY_HF_TOKEN = "hf_CanaryTokenAbcdefghijklmnopqrstu"
CANARY_GH_TOKEN = "ghp_CanaryGithubToken0123456789abcdefAB"
CANARY_BEARER = "eyJcanaryBearerValue"
CANARY_WEBUI_ONLY = "OnlyInWebuiUser77"  # a proxy password set only in webui-user.sh
CANARY_LOG_ONLY = "OnlyInTheLog88"  # a password the log shows in a URL, then on its own


@pytest.fixture(scope="module")
def venv_template(tmp_path_factory):
    return make_venv(tmp_path_factory.mktemp("venv-template") / "venv").parents[1]


@pytest.fixture
def install(tmp_path, venv_template, isolated_env):
    home = isolated_env
    webui_user = {
        "webui-user.sh": (
            "#!/bin/bash\n"
            f'export HTTPS_PROXY="http://alice:{CANARY_PASSWORD}@127.0.0.1:7890"\n'
            f'export HF_TOKEN="{CANARY_HF_TOKEN}"\n'
            f'export HTTP_PROXY="socks5h://bob:{CANARY_WEBUI_ONLY}@10.1.2.3:1080"\n'
            'export COMMANDLINE_ARGS="--xformers"\n'
        )
    }
    root = home / "stable-diffusion-webui"  # inside HOME, so every path carries the home folder
    return make_install(root, venv_template, webui_user=webui_user,
                        repo_remote=f"https://alice:{CANARY_GH_TOKEN}@github.com/crowsonkb/k-diffusion.git")


def _console_log(home: Path) -> str:
    return "\n".join([
        f'venv "{home}/stable-diffusion-webui/venv/bin/python"',
        "Python 3.10.6 (main, Aug  1 2022, 21:53:49) [GCC 11.4.0]",
        "Version: v1.10.1",
        f"Using proxy http://alice:{CANARY_PASSWORD}@127.0.0.1:7890 for downloads",
        f"the proxy password was {CANARY_PASSWORD}",
        f"pip install --index-url https://carol:{CANARY_LOG_ONLY}@pypi.corp.example/simple x",
        f"echo {CANARY_WEBUI_ONLY} and later {CANARY_LOG_ONLY}",
        f"Authorization: Bearer {CANARY_BEARER}",
        f"token={CANARY_HF_TOKEN}",
        f"Cloning Stable Diffusion into {home}/stable-diffusion-webui/repositories/stable-diffusion-stability-ai...",
        "remote: Repository not found.",
        "fatal: repository 'https://github.com/Stability-AI/stablediffusion.git/' not found",
        "RuntimeError: Couldn't clone Stable Diffusion.",
        "",
    ])


def test_bundle_holds_the_report_logs_freeze_and_repositories_without_any_secret(install, tmp_path, isolated_env, monkeypatch):
    root, commits = install
    home = isolated_env
    monkeypatch.setenv("ALL_PROXY", f"http://alice:{CANARY_PASSWORD}@127.0.0.1:7890")
    log = tmp_path / "console.txt"
    log.write_text(_console_log(home))
    out = tmp_path / "report.zip"
    result = CliRunner().invoke(cli.app, ["doctor", str(root), "--log", str(log), "--bundle", str(out), "--json"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["data"]["findings"][0]["id"] == "sd-repo-gone-not-found"

    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        contents = {name: archive.read(name) for name in names}
    for expected in ("README.txt", "doctor.json", "check.json", "logs/01-console.txt", "install/pip-freeze.txt",
                     "install/repositories.json", "install/webui-user.sh", "install/install.json", "redactions.json"):
        assert expected in names, names
    assert names[0] == "README.txt"

    # No secret, and not the home folder, in any file, in any file name, nor in what was printed.
    for needle in (CANARY_PASSWORD, CANARY_HF_TOKEN, CANARY_GH_TOKEN, CANARY_BEARER, CANARY_WEBUI_ONLY, CANARY_LOG_ONLY, str(home)):
        for name, data in contents.items():
            assert needle.encode() not in data, f"{needle!r} leaked into {name}"
            assert needle not in name
        assert needle not in result.stdout and needle not in result.stderr

    # What the helpdesk needs is still there.
    log_text = contents["logs/01-console.txt"].decode()
    assert "fatal: repository 'https://github.com/Stability-AI/stablediffusion.git/' not found" in log_text
    assert "http://alice:***@127.0.0.1:7890" in log_text
    assert "~/stable-diffusion-webui/repositories" in log_text
    assert b"pip==" in contents["install/pip-freeze.txt"]
    repos = {r["name"]: r for r in json.loads(contents["install/repositories.json"])}
    kd = repos["repositories/k-diffusion"]
    assert kd["head"] == commits["k-diffusion"] and kd["pinned"] == commits["k-diffusion"] and kd["at_pin"] is True
    assert kd["status"] == [" M k_diffusion/__init__.py"]
    assert kd["remote"] == "https://alice:***@github.com/crowsonkb/k-diffusion.git"
    assert repos["stable-diffusion-webui"]["head"] == commits["webui"]
    assert json.loads(contents["doctor.json"])["findings"][0]["id"] == "sd-repo-gone-not-found"
    assert json.loads(contents["check.json"])["items"], "the check report is in the bundle"

    # It says what it removed, by kind and count, never the values.
    removed = json.loads(contents["redactions.json"])["removed"]
    assert removed["url_password"] >= 3 and removed["token"] >= 2 and removed["home_path"] >= 3
    assert removed["known_secret"] >= 1 and removed["auth_header"] >= 1
    readme = contents["README.txt"].decode()
    assert "removed:" in readme and "password(s) in URLs" in readme and "home directory path(s)" in readme
    bundle = doc["data"]["bundle"]
    assert bundle["removed"] == removed and "README.txt" in bundle["files"]


def test_bundle_without_an_install_has_the_logs_and_report(tmp_path):
    out = tmp_path / "r.zip"
    result = CliRunner().invoke(cli.app, ["doctor", "--log", str(FIXTURES / "cuda-oom.log"), "--bundle", str(out)])
    assert result.exit_code == 1
    assert "Support bundle written" in result.stdout
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        assert "logs/01-cuda-oom.log" in names and "install/pip-freeze.txt" not in names
        assert "torch.cuda.OutOfMemoryError" in archive.read("logs/01-cuda-oom.log").decode()
    assert not list(tmp_path.glob(".r.zip.*")), "no temporary file is left behind"


def test_a_long_log_is_bundled_as_head_and_tail():
    excerpt = Excerpt(head_bytes=100, tail_bytes=200)
    for number in range(1, 1001):
        excerpt.add(number, f"line {number:04d}")
    lines = list(excerpt.text_lines())
    assert lines[0] == "line 0001" and lines[-1] == "line 1000"
    assert any("lines left out" in line for line in lines)
    assert sum(len(line) + 1 for line in lines) < 400


def test_redactor_counts_by_kind_and_masks_known_secrets_anywhere():
    redactor = Redactor(secrets=["pa55word!"], home="/home/alice")
    text = redactor("proxy http://bob:pa55word!@10.0.0.1:8080 and again pa55word! in /home/alice/sd; token hf_" + "a" * 30)
    assert "pa55word!" not in text and "/home/alice" not in text and "hf_aaa" not in text
    assert redactor.summary() == {"url_password": 1, "token": 1, "known_secret": 1, "home_path": 1}
    assert "pa55word" not in redactor.describe()


# ------------------------------------------------------------------------------------ web UI secrets

CANARY_GRADIO = "GradioCanaryPw31"  # --gradio-auth user:password
CANARY_API = "ApiAuthCanaryPw42"  # --api-auth user:password
CANARY_CIVITAI = "civitaiCanaryKey5309"  # CIVITAI_KEY (no known token shape)
CANARY_HF_PLAIN = "plainHfCanary7781"  # HF_TOKEN without the hf_ prefix
CANARY_SERVICE = "serviceAuthCanary66"  # MY_SERVICE_AUTH, only in the environment


def test_bundle_keeps_web_ui_logins_and_secret_env_vars_out_of_every_file(tmp_path, venv_template, isolated_env, monkeypatch):
    home = isolated_env
    webui_user = {
        "webui-user.bat": (
            "@echo off\r\n"
            f"set COMMANDLINE_ARGS=--xformers --gradio-auth admin:{CANARY_GRADIO} --api-auth=bot:{CANARY_API} --listen\r\n"
            f'set "CIVITAI_KEY={CANARY_CIVITAI}"\r\n'
            "call webui.bat\r\n"
        ),
        "webui-user.sh": f'export HF_TOKEN="{CANARY_HF_PLAIN}"\nexport COMMANDLINE_ARGS="--gradio-auth admin:{CANARY_GRADIO}"\n',
    }
    root, _ = make_install(home / "stable-diffusion-webui", venv_template, webui_user=webui_user)
    monkeypatch.setenv("MY_SERVICE_AUTH", CANARY_SERVICE)
    monkeypatch.setenv("CIVITAI_KEY", CANARY_CIVITAI)
    log = tmp_path / "console.txt"
    log.write_text("\n".join([
        "Python 3.10.6 (main, Aug  1 2022, 21:53:49) [GCC 11.4.0]",
        f"Launching Web UI with arguments: --xformers --gradio-auth admin:{CANARY_GRADIO} --api-auth bot:{CANARY_API}",
        f'    "Commandline": ["launch.py", "--gradio-auth", "admin:{CANARY_GRADIO}", "--api-auth", "bot:{CANARY_API}"],',
        f"downloading with key {CANARY_CIVITAI} and {CANARY_SERVICE}",
        f"HF_TOKEN={CANARY_HF_PLAIN} huggingface-cli download x",
        f"the login is admin:{CANARY_GRADIO}",
        "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB",
        "",
    ]))
    out = tmp_path / "report.zip"
    result = CliRunner().invoke(cli.app, ["doctor", str(root), "--log", str(log), "--bundle", str(out), "--json"])
    assert result.exit_code == 1, result.output
    with zipfile.ZipFile(out) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    assert "install/webui-user.bat" in contents and "logs/01-console.txt" in contents
    for needle in (CANARY_GRADIO, CANARY_API, CANARY_CIVITAI, CANARY_HF_PLAIN, CANARY_SERVICE):
        for name, data in contents.items():
            assert needle.encode() not in data, f"{needle!r} leaked into {name}"
        assert needle not in result.stdout and needle not in result.stderr
    bat = contents["install/webui-user.bat"].decode()
    assert "--gradio-auth ***" in bat and "--api-auth=***" in bat and "--listen" in bat, "the flags stay, the values go"
    assert "CIVITAI_KEY=***" in bat
    removed = json.loads(contents["redactions.json"])["removed"]
    assert removed.get("web_ui_login", 0) >= 3


def test_secret_named_values_are_masked_in_place_and_json_stays_json():
    redactor = Redactor(home="/home/alice")
    doc = redactor('{"CIVITAI_KEY": "abc12345", "secret_value": 3, "argv": ["--gradio-auth", "u:pw1234"]}')
    assert json.loads(doc) == {"CIVITAI_KEY": "***", "secret_value": 3, "argv": ["--gradio-auth", "***"]}
    assert redactor("KEYBOARD=us AUTHOR=me monkey=1") == "KEYBOARD=us AUTHOR=me monkey=1", "only whole secret words"
    masked = redactor('set "HF_TOKEN=abc123"')
    assert masked.startswith('set "HF_TOKEN=***') and "abc123" not in masked
