"""Mirror logins stay off command lines and out of every output; the CA bundle reaches git and pip; bad
mirror URLs are refused (issue 11 items 11, 12, 13, 15)."""

from __future__ import annotations

from pathlib import Path

import json
import os
import subprocess

import pytest
from typer.testing import CliRunner

from sdsetup import cli
from sdsetup.net.mirror_profiles import Mirror
from sdsetup.net.mirrors import MirrorPlan, select_mirrors
from sdsetup.redact import redact_text, redact_url, secrets_in_url
from sdsetup.settings import load_settings
from tests.servers.gitserver import serve_git

TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4"
PASSWORD = "pw-s3cret-77"


def _plan(**changes) -> MirrorPlan:
    settings = load_settings({"mirror": ["cn", f"pypi=https://alice:{PASSWORD}@pypi.corp.example/simple",
                                         f"github=https://bob:{PASSWORD}@git.corp.example/"]}, {})
    plan = select_mirrors(settings, env={})
    return plan


def test_a_pypi_mirror_login_goes_by_environment_not_argv():
    plan = _plan()
    assert PASSWORD not in " ".join(plan.pip_index_args())
    assert plan.pip_env()["PIP_INDEX_URL"] == f"https://alice:{PASSWORD}@pypi.corp.example/simple/"
    shown = json.dumps(plan.to_json())
    assert PASSWORD not in shown and "alice:***@" in shown
    assert plan.webui_env_has_credentials and plan.to_json()["webui_env_has_credentials"] is True


def test_a_torch_mirror_login_goes_by_environment_when_the_tag_is_known():
    plan = MirrorPlan("x", {**_plan().channels, "torch": (Mirror("torch", "t", f"https://u:{PASSWORD}@t.example/{{tag}}/", layout="simple"),)})
    assert PASSWORD not in " ".join(plan.torch_index_args("cpu"))
    assert plan.pip_env("cpu")["PIP_EXTRA_INDEX_URL"] == f"https://u:{PASSWORD}@t.example/cpu/"


def test_a_git_mirror_login_is_answered_by_a_credential_helper_from_the_environment():
    plan = _plan()
    argv = plan.git_config_args()
    assert PASSWORD not in " ".join(argv) and not any("insteadOf" in a for a in argv)
    assert all(PASSWORD not in url for url in plan.git_urls("https://github.com/o/r.git"))
    env = plan.git_env()
    keys = {env[k]: env[k.replace("KEY", "VALUE")] for k in env if k.startswith("GIT_CONFIG_KEY_")}
    rule = next(k for k in keys if k.startswith("url.https://git.corp.example/"))
    assert keys[rule] == "https://github.com/"
    assert PASSWORD not in "".join(keys)  # the login is not in any config key or value
    webui = plan.webui_env()
    assert PASSWORD in "".join(webui.values()) and plan.webui_env_has_credentials  # that file must be 0600
    assert PASSWORD not in redact_text(" ".join(webui.values()))  # and the install record's redaction masks it
    # git itself asks the helper and gets the login: the real mechanism, not a string check
    full = {**os.environ, **env}
    done = subprocess.run(["git", "credential", "fill"], input="protocol=https\nhost=git.corp.example\n\n", env=full,
                          capture_output=True, text=True, timeout=20)
    assert "username=bob" in done.stdout and f"password={PASSWORD}" in done.stdout


def test_git_fetches_through_a_mirror_with_a_login_without_it_on_any_command_line(tmp_path):
    with serve_git(tmp_path / "git") as git:
        sha = git.create_repo("o/r", {"a.txt": "a\n"})
        base = git.host_base.replace("http://", f"http://bob:{PASSWORD}@")
        plan = MirrorPlan("x", {**_plan().channels, "github": (Mirror("github", "m", base, style="host"),)})
        argv = ["git", *plan.git_config_args(), "ls-remote", "https://github.com/o/r.git", "HEAD"]
        assert PASSWORD not in " ".join(argv)
        done = subprocess.run(argv, env={**os.environ, **plan.git_env()}, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(sha)


def test_a_token_as_the_url_user_name_is_redacted_everywhere():
    url = f"https://{TOKEN}@git.corp.example/o/r.git"
    assert TOKEN not in redact_url(url) and redact_url(url).startswith("https://***@git.corp.example")
    assert TOKEN not in redact_text(f"fatal: unable to access '{url}': 403")
    plain = "https://0123456789abcdefXYZ@host.example/"  # a bare token without a known prefix
    assert "0123456789abcdefXYZ" not in redact_text(f"error at {plain}")
    assert secrets_in_url(plain) == ["0123456789abcdefXYZ"]
    assert redact_url("https://alice@host.example/x") == "https://alice@host.example/x"  # a plain user name stays


def test_mirrors_list_json_never_shows_a_token_user_name():
    result = CliRunner().invoke(cli.app, ["mirrors", "list", "--json", "--mirror", "cn", "--mirror", f"github=https://{TOKEN}@git.corp.example/"])
    assert result.exit_code == 0, result.output
    assert TOKEN not in result.output


def test_the_ca_bundle_reaches_git_and_pip(tmp_path):
    bundle = tmp_path / "corp.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = load_settings({"mirror": ["official"]}, {"SDSETUP_CA_BUNDLE": str(bundle)})
    plan = select_mirrors(settings, env={})
    # Issue 23 item 24: the file git and pip get is certifi's store plus the corporate CA (added, not instead).
    import certifi

    store = plan.pip_env()["PIP_CERT"]
    assert store != str(bundle) and f"http.sslCAInfo={store}" in plan.git_config_args()
    args = plan.pip_index_args()
    assert args[args.index("--cert") + 1] == store
    text = Path(store).read_text()
    assert text.startswith(Path(certifi.where()).read_text().rstrip("\n")) and text.endswith("-----BEGIN CERTIFICATE-----\n")


@pytest.mark.parametrize(
    "argv, says",
    [
        (["install", "DIR", "--dry-run", "--mirror-url", "http://192.168.1.5:8000/my bundle/"], "space"),
        (["install", "DIR", "--dry-run", "--mirror-url", "https://mirror.example/base?token=abc"], "query string"),
        (["mirrors", "list", "--mirror", "pypi=https://mirror.example/simple?x=1"], "query string"),
        (["mirrors", "list", "--mirror", "huggingface=https://hf.example/#frag"], "query string"),
    ],
)
def test_mirror_urls_with_spaces_or_a_query_are_refused(tmp_path, argv, says):
    argv = [str(tmp_path / "w") if a == "DIR" else a for a in argv]
    result = CliRunner().invoke(cli.app, [*argv, "--json"])
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)["error"]
    assert says in error["message"] and error["hint"]
    assert "token=abc" not in result.output


def test_probing_a_git_mirror_with_a_login_keeps_it_off_every_command_line(tmp_path, monkeypatch):
    """Issue 23 item 4: `mirrors probe`, `check --network` and automatic routing ran `git ls-remote` with the
    mirror's login in the URL on argv (readable by every local user). The login now reaches git through a
    credential helper that reads this process's environment."""
    import shutil

    from sdsetup.net import measure

    real_git = shutil.which("git")
    spy = tmp_path / "bin"
    spy.mkdir()
    log = tmp_path / "argv.log"
    (spy / "git").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{real_git}" "$@"\n')
    (spy / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{spy}{os.pathsep}{os.environ['PATH']}")
    with serve_git(tmp_path / "git") as git:
        git.create_repo("o/r", {"a.txt": os.urandom(60000).hex()})  # incompressible: enough pack to time
        url = git.host_base.replace("http://", f"http://bob:{PASSWORD}@") + "o/r.git"
        mirror = Mirror("github", "m", git.host_base.replace("http://", f"http://bob:{PASSWORD}@"), style="host")
        check = measure.probe_git(mirror, url, timeout=20)
        rate = measure.read_rate_git(url, timeout=20)
        env = measure.git_probe_env(url, None)
    assert check.ok, check.error
    assert rate.bps is not None and rate.bps > 0, rate.note
    assert PASSWORD not in log.read_text() and "ls-remote" in log.read_text() and "clone" in log.read_text()
    assert PASSWORD not in check.url and PASSWORD not in rate.url
    done = subprocess.run(["git", "credential", "fill"], input=f"protocol=http\nhost={git.host_base.split('/')[2]}\n\n",
                          env=env, capture_output=True, text=True, timeout=20)
    assert "username=bob" in done.stdout and f"password={PASSWORD}" in done.stdout
