"""The CLI contract: one JSON envelope, one error line + hint, documented exit codes, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sdsetup import cli
from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.fsutil import safe_join
from sdsetup.output import Outcome
from sdsetup.redact import redact_text, redact_url
from sdsetup.settings import load_settings, parse_mirror_option

ROOT = Path(__file__).resolve().parents[1]


def _run(func, as_json):
    probe = typer.Typer()

    @probe.command()
    def go() -> None:
        cli.run_command("probe", func, as_json=as_json)

    return CliRunner().invoke(probe, [])


def test_json_envelope_keys_and_types():
    result = _run(lambda: Outcome("probe", {"answer": 42}), as_json=True)
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc == {"schema_version": 1, "command": "probe", "ok": True, "exit_code": 0, "warnings": [], "data": {"answer": 42}}


def test_user_error_is_one_line_and_a_hint_without_traceback():
    def boom():
        raise SdsetupError("the thing is broken", "do this next", ExitCode.USAGE)

    result = _run(boom, as_json=False)
    assert result.exit_code == 2
    assert "error: the thing is broken" in result.stderr
    assert "hint: do this next" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_user_error_in_json_mode_is_still_one_document():
    def boom():
        raise SdsetupError("no route", "set --proxy", ExitCode.NETWORK)

    result = _run(boom, as_json=True)
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["error"]["message"] == "no route" and doc["error"]["kind"] == "network"


def test_ctrl_c_in_json_mode_is_still_one_document():
    def interrupted():
        raise KeyboardInterrupt

    result = _run(interrupted, as_json=True)
    assert result.exit_code == 130
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 130 and doc["error"]["kind"] == "interrupted"
    assert "interrupted" in result.stderr


@pytest.mark.parametrize(
    "args, command, words",
    [
        (["fetch", "--json"], "fetch", "Missing argument"),
        (["fetch", "http://127.0.0.1:1/x.bin", "--connections", "many", "--json"], "fetch", "--connections"),
        (["check", "--json", "--bogus"], "check", "--bogus"),
        (["mirrors", "list", "--json", "--nope"], "mirrors list", "--nope"),
    ],
)
def test_typer_usage_errors_with_json_are_still_one_document(args, command, words, tmp_path):
    # the real entry point: Typer rejects these before any command runs
    result = subprocess.run([sys.executable, "-m", "sdsetup", *args], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert result.returncode == 2, result.stderr
    doc = json.loads(result.stdout)
    assert doc["command"] == command and doc["exit_code"] == 2 and doc["error"]["kind"] == "usage"
    assert words in doc["error"]["message"] and "--help" in doc["error"]["hint"]
    assert "Traceback" not in result.stderr and words in result.stderr


def test_entry_point_with_json_keeps_command_exit_codes(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sdsetup", "fetch", "http://127.0.0.1:1/x.bin", "--sha256", "zz", "--json"],
                            capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert result.returncode == 2 and json.loads(result.stdout)["error"]["message"].startswith("--sha256")
    result = subprocess.run([sys.executable, "-m", "sdsetup", "fetch", "--help", "--json"], capture_output=True, text=True,
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert result.returncode == 0 and "Usage" in result.stdout


def test_bug_reports_internal_error_exit_code():
    result = _run(lambda: 1 / 0, as_json=False)
    assert result.exit_code == ExitCode.INTERNAL
    assert "internal error" in result.stderr and "--debug" in result.stderr


def test_settings_precedence_flag_env_config(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('proxy = "http://config:1"\nconnections = 3\nmirror = "cn"\n')
    env = {"SDSETUP_CONFIG": str(config), "SDSETUP_PROXY": "http://env:2"}
    assert load_settings({}, env).proxy == "http://env:2"
    assert load_settings({"proxy": "socks5h://flag:3"}, env).proxy == "socks5h://flag:3"
    assert load_settings({}, {"SDSETUP_CONFIG": str(config)}).proxy == "http://config:1"
    assert load_settings({}, env).connections == 3
    assert load_settings({}, env).mirror == "cn"


@pytest.mark.parametrize(
    "flags, message",
    [
        ({"proxy": "ftp://x:1"}, "not a proxy URL"),
        ({"connections": "many"}, "not a whole number"),
        ({"connections": 0}, "out of range"),
        ({"mirror": ["bogus=https://x"]}, "unknown channel"),
        ({"config": "/nonexistent/c.toml"}, "config file not found"),
    ],
)
def test_bad_settings_are_usage_errors(flags, message):
    with pytest.raises(SdsetupError) as info:
        load_settings(flags, {})
    assert info.value.exit_code == ExitCode.USAGE and message in info.value.message


def test_broken_config_names_file_and_problem(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("proxy = \n")
    with pytest.raises(SdsetupError) as info:
        load_settings({}, {"SDSETUP_CONFIG": str(config)})
    assert str(config) in info.value.message and "TOML" in info.value.message


@pytest.mark.parametrize("content, words", [
    (b"\xff\xfe" + 'proxy = "http://a:1"\n'.encode("utf-16-le"), "UTF-16"),  # saved by Notepad as "Unicode"
    ('proxy = "http://a:1"\n'.encode("utf-16-le"), "UTF-16"),  # the same without its BOM
    (bytes(range(256)) * 4, "not UTF-8 text"),  # a binary file
    (b"a = " + b"[" * 100_000 + b"]" * 100_000 + b"\n", "too deeply"),
    (b"x = " + b"{a = " * 3000 + b"1" + b"}" * 3000 + b"\n", "too deeply"),
])
def test_a_config_file_that_is_not_toml_text_is_a_usage_error_naming_it(tmp_path, content, words):
    """They were exit 70 (UnicodeDecodeError, RecursionError); a manifest reads through the same code."""
    from sdsetup.manifest import load_manifest

    config = tmp_path / "c.toml"
    config.write_bytes(content)
    with pytest.raises(SdsetupError) as info:
        load_settings({}, {"SDSETUP_CONFIG": str(config)})
    assert info.value.exit_code == ExitCode.USAGE and str(config) in info.value.message and words in info.value.message
    assert info.value.hint
    with pytest.raises(SdsetupError) as info:
        load_manifest(str(config))
    assert info.value.exit_code == ExitCode.USAGE and str(config) in info.value.message and words in info.value.message


@pytest.mark.parametrize("kind", ["missing", "folder"])
@pytest.mark.parametrize("how", ["env", "flag"])
def test_a_named_config_file_must_be_there(tmp_path, kind, how):
    """SDSETUP_CONFIG naming a missing file or a folder was ignored silently (issue 11, item 15)."""
    path = tmp_path / "conf.toml"
    if kind == "folder":
        path.mkdir()
    flags, env = ({"config": str(path)}, {}) if how == "flag" else ({}, {"SDSETUP_CONFIG": str(path)})
    with pytest.raises(SdsetupError) as info:
        load_settings(flags, env)
    assert info.value.exit_code == ExitCode.USAGE and str(path) in info.value.message
    assert ("SDSETUP_CONFIG" if how == "env" else "--config") in info.value.message + info.value.hint
    assert ("folder" in info.value.message) == (kind == "folder")


def test_an_empty_or_null_config_file_is_no_config(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert load_settings({}, {"SDSETUP_CONFIG": str(empty)}).proxy is None
    assert load_settings({}, {"SDSETUP_CONFIG": os.devnull}).proxy is None


def test_the_envelope_lists_the_warnings_people_see():
    """`check --json` listed no warnings while its text said "1 warning": [WARN] items are warnings."""
    data = {"items": [{"name": "GPU", "status": "warn", "value": "none found"}, {"name": "git", "status": "ok", "value": "2.39"},
                      {"name": "disk", "status": "fail", "value": "1 GiB free"}]}
    envelope = Outcome("check", data, warnings=["proxy and mirror both set"]).envelope()
    assert envelope["warnings"] == ["proxy and mirror both set", "GPU: none found"]
    assert Outcome("x", {"items": "not a list"}).envelope()["warnings"] == []


def test_check_json_counts_the_warnings_its_text_counts(tmp_path):
    facts = tmp_path / "machine.json"  # no GPU: the GPU line is a warning
    facts.write_text(json.dumps({"os": {"system": "Linux", "release": "6.1", "version": "#1", "machine": "x86_64", "bits": 64,
                                        "wsl": False}, "gpus": [], "ram_total_bytes": 16 << 30, "ram_available_bytes": 12 << 30}))
    env = {"SDSETUP_MACHINE_FACTS": str(facts)}
    args = ["check", "--dir", str(tmp_path / "sd")]
    text = CliRunner().invoke(cli.app, args, env=env)
    doc = json.loads(CliRunner().invoke(cli.app, [*args, "--json"], env=env).stdout)
    shown = text.stdout.count("[WARN]")
    assert shown >= 1 and len(doc["warnings"]) == shown
    assert f"{shown} warning" in text.stdout


@pytest.mark.parametrize("text, expected", [
    ("25.1", (25, 1)), ("25.1rc1", (25, 1)), ("2.1.2+cu121", (2, 1, 2)), ("0.0.23.post1", (0, 0, 23)),
    ("2.39.5.windows.1", (2, 39, 5)), ("3.10.12 (main)", (3, 10, 12)), ("", ()), (None, ()), ("newest", ()),
])
def test_version_tuple_reads_versions_as_pip_does(text, expected):
    from sdsetup.versions import version_tuple

    assert version_tuple(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("Open_Clip.Torch", "open-clip-torch"), ("torch==2.1.2", "torch"), ("Pillow>=9; python_version < '4'", "pillow"),
    ("xformers==0.0.23.post1", "xformers"), ("jsonmerge", "jsonmerge"), ("zope.interface[x]>=5", "zope-interface"),
])
def test_requirement_and_project_names_are_normalised_once(text, expected):
    from sdsetup.versions import project_name, requirement_name

    assert requirement_name(text) == expected
    assert project_name(expected.upper().replace("-", "_")) == expected


def test_mirror_option_profile_plus_channel_overrides():
    assert parse_mirror_option(["cn", "huggingface=https://hf.example"]) == ("cn", (("huggingface", "https://hf.example"),))


@pytest.mark.parametrize("value", ["pypi=ftp://bob:{pw}@mirror.example/", "hf=https://bob:{pw}@mirror.example/"])
def test_bad_mirror_option_never_shows_its_password(value):
    canary = "s3cr3t-CANARY"
    with pytest.raises(SdsetupError) as info:
        parse_mirror_option([value.format(pw=canary)])
    assert info.value.exit_code == ExitCode.USAGE
    assert canary not in info.value.message + (info.value.hint or "") and "bob:***@" in info.value.message


def test_redaction_masks_passwords_tokens_and_home():
    canary = "s3cr3t-CANARY"
    text = f"proxy http://alice:{canary}@proxy:3128 token hf_{'a' * 30} HF_TOKEN={canary} /home/alice/sd"
    out = redact_text(text, [canary], home="/home/alice")
    assert canary not in out and "hf_aaaa" not in out and "/home/alice" not in out
    assert "alice:***@proxy:3128" in out
    assert redact_url(f"socks5h://bob:{canary}@127.0.0.1:1080") == "socks5h://bob:***@127.0.0.1:1080"


def test_redaction_masks_tokens_and_signatures_in_a_url_query():
    # a signed CDN URL (a Hub redirect) or ?token= lands in error messages, logs and support bundles
    for url in ("https://cdn.example/x.bin?token=s3cr3tTOK", "https://cdn.example/x.bin?Expires=1&X-Amz-Signature=s3cr3tSIG&x=1",
                "https://cdn.example/x.bin?Signature=s3cr3tSIG&Key-Pair-Id=K1"):
        assert "s3cr3t" not in redact_url(url) and "s3cr3t" not in redact_text(f"GET {url} 404")
        assert redact_url(url).startswith("https://cdn.example/x.bin?")
    assert redact_url("https://example.org/simple/torch/?page=2") == "https://example.org/simple/torch/?page=2"
    assert redact_url("https://bob:pw@cdn.example/x?token=s3cr3tTOK") == "https://bob:***@cdn.example/x?token=***"


def test_bad_proxy_port_with_password_is_a_usage_error_that_hides_the_password():
    # `--proxy http://bob:PW@host:99999` (a typo in the port) must say so, not crash redacting it
    canary = "s3cr3t-CANARY"
    for url in (f"http://bob:{canary}@proxy:99999", f"http://bob:{canary}@proxy:80a", f"http://bob:{canary}@[::1]:3128"):
        assert canary not in redact_url(url) and "bob:***@" in redact_url(url)
    assert redact_url(f"http://bob:{canary}@[::1]:3128") == "http://bob:***@[::1]:3128"
    with pytest.raises(SdsetupError) as info:
        load_settings({"proxy": f"http://bob:{canary}@proxy:99999"}, env={})
    assert info.value.exit_code == ExitCode.USAGE and canary not in info.value.message


def test_safe_join_refuses_escapes(tmp_path):
    assert safe_join(tmp_path, "models/a.safetensors") == tmp_path / "models" / "a.safetensors"
    for bad in ("../x", "/etc/passwd", "a/../../x", "C:/Windows"):
        with pytest.raises(SdsetupError):
            safe_join(tmp_path, bad)


def test_packaging_lists_every_subpackage():
    text = (ROOT / "pyproject.toml").read_text()
    for init in (ROOT / "sdsetup").rglob("__init__.py"):
        package = ".".join(init.parent.relative_to(ROOT).parts)
        assert f'"{package}"' in text, f"{package} missing from [tool.setuptools] packages"


def test_help_does_not_import_heavy_modules():
    code = "import sys; sys.argv=['sdsetup','--help']\ntry:\n import sdsetup.cli as c; c.main()\nexcept SystemExit: pass\nimport json; print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('requests','psutil','pynvml','torch','tqdm','platformdirs'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_console_script_runs_as_installed():
    exe = Path(sys.executable).parent / "sdsetup"
    result = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("sdsetup ")
    result = subprocess.run([sys.executable, "-m", "sdsetup", "--version"], capture_output=True, text=True)
    assert result.returncode == 0


@pytest.mark.parametrize(
    "text, message, hint",
    [
        ("conections = 3\n", "unknown key 'conections'", "did you mean 'connections'"),
        ("mirror = 5\n", "key 'mirror' must be a string", "quotes"),
        ("connections = true\n", "'connections'", "number"),
        ("timeout = false\n", "'timeout'", "seconds"),
    ],
)
def test_config_mistakes_name_the_file_and_key(tmp_path, text, message, hint):
    config = tmp_path / "c.toml"
    config.write_text(text)
    with pytest.raises(SdsetupError) as info:
        load_settings({}, {"SDSETUP_CONFIG": str(config)})
    assert info.value.exit_code == ExitCode.USAGE
    assert str(config) in info.value.message and message in info.value.message and hint in info.value.hint


def test_typer_usage_errors_get_the_error_and_hint_lines():
    """A missing argument or unknown option reads like every other user mistake: no box, no traceback."""
    for argv in (["fetch"], ["fetch", "--bogus", "x"]):
        result = subprocess.run([sys.executable, "-m", "sdsetup", *argv], capture_output=True, text=True)
        assert result.returncode == 2 and result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert lines[0].startswith("error: ") and lines[1] == "hint: see `sdsetup fetch --help`", result.stderr
        assert "╭" not in result.stderr and "Traceback" not in result.stderr
