"""webui-user.sh / .bat: the user's lines survive, sdsetup's block is replaced in place, quoting holds."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest

from sdsetup.install.webui_config import (
    LaunchSettings, extract_block, launch_env, merge, python_from_pyvenv_cfg, render_bat_block, render_sh_block,
)
from sdsetup.manifest import load_manifest
from sdsetup.webui_user_file import BAT_TEMPLATE, bat_value

SETTINGS = LaunchSettings(args=("--no-download-sd-model", "--xformers"),
                          env=(("STABLE_DIFFUSION_REPO", "https://github.com/w-e-w/stablediffusion.git"), ("HF_HOME", "/data/it's here")),
                          python="/usr/bin/python3.10")
UPSTREAM_SH = "#!/bin/bash\n# Commandline arguments for webui.py\n#export COMMANDLINE_ARGS=\"\"\n"
USER_SH = UPSTREAM_SH + 'export COMMANDLINE_ARGS="--api --listen"\n'


def test_sh_block_appends_to_the_users_flags_and_quotes_values(tmp_path):
    text, how = merge(USER_SH, render_sh_block(SETTINGS), "sh")
    assert how == "appended" and text.startswith(USER_SH)
    script = tmp_path / "webui-user.sh"
    script.write_text(text, "utf-8")
    out = subprocess.run(["bash", "-c", f'. "{script}"; printf "%s\\n" "$COMMANDLINE_ARGS" "$HF_HOME" "$python_cmd"'],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["--api --listen --no-download-sd-model --xformers", "/data/it's here", "/usr/bin/python3.10"]


def test_sh_block_without_user_flags_has_no_leading_space(tmp_path):
    script = tmp_path / "webui-user.sh"
    script.write_text(merge(UPSTREAM_SH, render_sh_block(SETTINGS), "sh")[0], "utf-8")
    out = subprocess.run(["bash", "-c", f'. "{script}"; printf "[%s]" "$COMMANDLINE_ARGS"'], capture_output=True, text=True, check=True)
    assert out.stdout == "[--no-download-sd-model --xformers]"


@pytest.mark.parametrize("kind", ["sh", "bat"])
def test_a_second_merge_replaces_the_block_in_place_and_keeps_later_user_lines(kind):
    render = render_sh_block if kind == "sh" else render_bat_block
    base = USER_SH if kind == "sh" else BAT_TEMPLATE
    first, _ = merge(base, render(SETTINGS), kind)
    edited = first + ("echo mine\n" if kind == "sh" else "rem mine\r\n")
    newer = LaunchSettings(args=("--medvram",), env=(), python=None)
    second, how = merge(edited, render(newer), kind)
    assert how == "replaced"
    assert second.count(">>> sdsetup >>>") == 1 and "--medvram" in second and "--xformers" not in second
    assert ("echo mine" in second) if kind == "sh" else ("rem mine" in second)
    again, how = merge(second, render(newer), kind)
    assert how == "unchanged" and again == second


def test_bat_block_goes_before_call_webui_bat_with_crlf():
    text, how = merge(BAT_TEMPLATE, render_bat_block(SETTINGS), "bat")
    assert how == "inserted"
    lines = text.split("\r\n")
    assert lines.index("call webui.bat") > max(i for i, line in enumerate(lines) if "sdsetup" in line)
    assert "\n" not in text.replace("\r\n", "")
    assert 'set "COMMANDLINE_ARGS=%COMMANDLINE_ARGS% --no-download-sd-model --xformers"' in text
    assert 'set "STABLE_DIFFUSION_REPO=https://github.com/w-e-w/stablediffusion.git"' in text


def test_new_files_come_from_the_templates():
    sh, how = merge(None, render_sh_block(SETTINGS), "sh")
    assert how == "created" and sh.startswith("#!/bin/bash")
    bat, how = merge(None, render_bat_block(SETTINGS), "bat")
    assert how == "created" and bat.startswith("@echo off") and bat.rstrip().endswith("call webui.bat")


def test_bat_values_escape_percent_and_refuse_quotes():
    assert bat_value("50%") == "50%%"
    with pytest.raises(ValueError):
        bat_value('say "hi"')


def test_extract_block():
    text, _ = merge(USER_SH, render_sh_block(SETTINGS), "sh")
    block = extract_block(text, "sh")
    assert block.startswith("# >>> sdsetup >>>") and block.endswith("# <<< sdsetup <<<\n")
    assert extract_block(USER_SH, "sh") is None


def test_launch_env_carries_pins_hf_home_offline_and_mirror_env():
    m = load_manifest("a1111")
    env = dict(launch_env(repositories=m.repositories, hf_home="/w/.cache/huggingface", hf_offline=True,
                          extra=[("PYTORCH_ENABLE_MPS_FALLBACK", "1")], mirror_env={"HF_ENDPOINT": "https://hf-mirror.com"}))
    assert env["STABLE_DIFFUSION_REPO"] == "https://github.com/w-e-w/stablediffusion.git"
    assert env["STABLE_DIFFUSION_COMMIT_HASH"] == "cf1d67a6fd5ea1aa600c4df58e5b47da45f6bdbf"
    assert env["BLIP_COMMIT_HASH"] == "48211a1594f1321b00f14c9f7a5b4813144b2fb9"
    assert env["HF_HOME"] == "/w/.cache/huggingface" and env["HF_HUB_OFFLINE"] == "1" and env["TRANSFORMERS_OFFLINE"] == "1"
    assert env["PYTORCH_ENABLE_MPS_FALLBACK"] == "1" and env["HF_ENDPOINT"] == "https://hf-mirror.com"


def test_python_from_pyvenv_cfg():
    assert python_from_pyvenv_cfg("home = /usr/bin\nexecutable = /usr/bin/python3.11\nversion = 3.11.7\n")[0] == "/usr/bin/python3.11"
    # Python 3.10 writes only home and version.
    assert python_from_pyvenv_cfg("home = /usr/bin\nversion = 3.10.12\n") == ["/usr/bin/python3.10", "/usr/bin/python3"]
    assert python_from_pyvenv_cfg("home = C:\\Python310\nversion = 3.10.11\n", windows=True) == ["C:\\Python310\\python.exe"]
    assert python_from_pyvenv_cfg("") == []


def test_our_block_goes_before_the_doctors_block_so_its_fixes_stay_last():
    doctor = "# >>> sdsetup doctor >>> added by `sdsetup doctor --fix`\nexport COMMANDLINE_ARGS=\"$COMMANDLINE_ARGS --no-half-vae\"\n# <<< sdsetup doctor <<<\n"
    text, how = merge(USER_SH + doctor, render_sh_block(SETTINGS), "sh")
    assert how == "inserted" and text.index("# >>> sdsetup >>>") < text.index("# >>> sdsetup doctor >>>")
    assert text.endswith(doctor)


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "real"])
@pytest.mark.parametrize("edit, key", [
    ('args = ["--no-download-sd-model", "--say \\"hi\\""]', "launch.args[1]"),
    ('args = ["--no-download-sd-model"]\nenv = { MY_VAR = "two\\nlines" }', "launch.env.MY_VAR"),
])
def test_an_unwritable_launch_value_is_a_usage_error_when_the_plan_is_made(tmp_path, edit, key, dry_run):
    """Before anything is downloaded (issue 14 item 2): the mirror is unreachable, so a step that ran would fail with 3."""
    import json
    from pathlib import Path

    from typer.testing import CliRunner

    from sdsetup import cli

    text = Path(load_manifest("a1111").source).read_text("utf-8")
    own = tmp_path / "own.toml"
    own.write_text(text.replace('args = ["--no-download-sd-model"]', edit, 1), "utf-8")
    target = tmp_path / "webui"
    args = ["install", str(target), "--manifest", str(own), "--json", "--mirror", "http://127.0.0.1:1/", "--yes",
            *(["--dry-run"] if dry_run else [])]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)["error"]
    assert key in error["message"] and "webui-user" in error["message"] and error["hint"]
    assert not (target / "webui-user.bat").exists() and not (target / "venv").exists() and not (target / ".git").exists()


def test_preflight_refuses_an_interpreter_path_the_bat_code_page_cannot_hold():
    """Before anything is downloaded: the chosen Python's path must fit webui-user.bat's code page."""
    from sdsetup.errors import SdsetupError
    from sdsetup.install.steps.preflight import check_bat_python

    python = "C:\\Users\\张三\\AppData\\Local\\Programs\\Python\\Python310\\python.exe"
    check_bat_python(python, "D:\\sd", 936)  # a Chinese Windows: fits
    with pytest.raises(SdsetupError) as caught:
        check_bat_python(python, "D:\\sd", 850)
    assert caught.value.exit_code == 2 and "'张'" in caught.value.message and "PYTHON" in caught.value.message
    check_bat_python("C:\\Users\\张三\\sd\\python\\python.exe", "C:\\Users\\张三\\sd", 850)  # inside: %~dp0, fits anywhere
    check_bat_python("/home/张三/.pyenv/versions/3.10.14/bin/python3.10", "/home/张三/sd", 437)  # not written into the .bat


def _webui_user_step(tmp_path, **settings_values):
    from sdsetup.detect.machine import MachineFacts
    from sdsetup.install.context import InstallContext, Reporter
    from sdsetup.install.journal import Journal
    from sdsetup.install.plan import InstallOptions, build_plan
    from sdsetup.net.mirrors import select_mirrors
    from sdsetup.settings import load_settings

    settings = load_settings(settings_values, env={})
    facts = MachineFacts.from_json({"os": {"system": "Linux", "release": "x", "version": "x", "machine": "x86_64", "bits": 64,
                                           "wsl": False}, "gpus": [], "ram_total_bytes": 32 << 30, "ram_available_bytes": 16 << 30})
    plan = build_plan(load_manifest("a1111"), facts, select_mirrors(settings, env={}), InstallOptions(backend="cpu"), tmp_path)
    ctx = InstallContext(plan=plan, settings=settings, journal=Journal(tmp_path), reporter=Reporter(quiet=True))
    return next(step for step in plan.steps if step.id == "webui-user"), ctx


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
@pytest.mark.parametrize("settings_values, secret, what", [
    ({"mirror": ["https://wei:s3cret-pw@mirror.example.com/"]}, "s3cret-pw", "mirror password"),
    # a forced profile: automatic routing would probe through this (dead) proxy while the plan is made
        ({"proxy": "http://wei:s3cret-pw@127.0.0.1:3128", "mirror": ["official"]}, "s3cret-pw", "proxy password"),
    ({"mirror": ["https://mirror.example.com/"]}, None, None),
])
def test_webui_user_files_holding_a_credential_are_private_and_the_install_says_so(tmp_path, settings_values, secret, what):
    """Issue 11 item 11: a webui-user file that holds a password is written 0600, with a warning."""
    step, ctx = _webui_user_step(tmp_path, **settings_values)
    assert secret is None or secret not in json.dumps(step.describe())  # --dry-run --json shows no password
    step.run(ctx)
    for name in ("webui-user.sh", "webui-user.bat"):
        data = (tmp_path / name).read_bytes()
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        if secret:
            assert secret.encode() in data and mode == 0o600, (name, oct(mode))
        else:
            assert mode == 0o644, (name, oct(mode))
    warned = [w for w in ctx.warnings if "password" in w]
    assert (what in warned[0] and "readable by you only" in warned[0]) if secret else not warned


def test_the_step_keeps_a_users_gbk_bat_byte_for_byte(tmp_path):
    """The old step read the .bat as UTF-8 and, failing, replaced a user's GBK file with the template."""
    step, ctx = _webui_user_step(tmp_path)
    step.code_page = 936
    user = "@echo off\r\nrem 我的设置\r\nset COMMANDLINE_ARGS=--theme dark\r\n\r\ncall webui.bat\r\n".encode("gbk")
    (tmp_path / "webui-user.bat").write_bytes(user)
    step.run(ctx)
    new = (tmp_path / "webui-user.bat").read_bytes()
    assert new.startswith(user.split(b"call")[0]) and new.endswith(b"call webui.bat\r\n")
    assert b'set "HF_HOME=%~dp0.cache\\huggingface"' in new
    assert step.is_done(ctx)


@pytest.mark.parametrize("name", ["webui-user.sh", "webui-user.bat"])
def test_a_begin_marker_without_its_end_is_refused_naming_the_line_and_nothing_is_lost(tmp_path, name):
    """Issue 23 item 7: the user deleted sdsetup's end line. The next install appended a new block, and the
    one after replaced everything from the old begin to the new end: the user's lines below it, silently."""
    from sdsetup.errors import SdsetupError

    step, ctx = _webui_user_step(tmp_path)
    step.run(ctx)  # a first install: both files with sdsetup's block
    path = tmp_path / name
    kind = "sh" if name.endswith(".sh") else "bat"
    end = "# <<< sdsetup <<<" if kind == "sh" else "rem <<< sdsetup <<<"
    text = path.read_bytes().decode("ascii")
    newline = "\r\n" if kind == "bat" else "\n"
    mine = "export MY_OWN=1" if kind == "sh" else "set MY_OWN=1"
    text = text.replace(end + newline, mine + newline)  # the end marker gone, a line of the user's in its place
    path.write_bytes(text.encode("ascii"))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    begin_line = next(i for i, line in enumerate(text.splitlines(), 1) if ">>> sdsetup >>>" in line)
    for _attempt in range(2):  # the second run was the one that deleted lines
        with pytest.raises(SdsetupError) as refused:
            step.run(ctx)
        assert int(refused.value.exit_code) == 2
        assert name in refused.value.message and f"line {begin_line}" in refused.value.message, refused.value.message
        assert "<<< sdsetup <<<" in refused.value.hint
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
