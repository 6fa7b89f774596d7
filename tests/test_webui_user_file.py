"""webui-user.sh / .bat read back: what install writes, the doctor adds and the user had, verify sees.

The .sh cases are checked against bash itself (source the file, then shlex-split COMMANDLINE_ARGS as
the web UI's launch.py does); cmd.exe is not here, so the .bat cases are checked against the flags
that were written.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from sdsetup import verify
from sdsetup.detect.machine import MachineFacts
from sdsetup.doctor import webui_user as doctor_webui_user
from sdsetup.webui_user_file import BAT_TEMPLATE, commandline_args, effective_env

FIXTURES = Path(__file__).parent / "fixtures" / "detect"
INSTALL_SH = ('# >>> sdsetup >>> managed\nexport COMMANDLINE_ARGS="${COMMANDLINE_ARGS:+$COMMANDLINE_ARGS }--no-download-sd-model '
              '--medvram"\nexport HF_HOME=\'/data/it\'\\\'\'s here\'\n# <<< sdsetup <<<\n')
INSTALL_BAT = ('rem >>> sdsetup >>> managed\r\nset "COMMANDLINE_ARGS=%COMMANDLINE_ARGS% --no-download-sd-model --medvram"\r\n'
               'set "HF_HOME=D:\\sd\\50%%"\r\nrem <<< sdsetup <<<\r\ncall webui.bat\r\n')

SH_CASES = [
    ('#!/bin/bash\nexport COMMANDLINE_ARGS="--xformers --medvram"\n', ["--xformers", "--medvram"]),
    ("export COMMANDLINE_ARGS='--no-half'  # CPU\n", ["--no-half"]),
    ('#export COMMANDLINE_ARGS="--lowvram"\nexport COMMANDLINE_ARGS=""\n', []),
    ('COMMANDLINE_ARGS="--a"\nexport COMMANDLINE_ARGS="--b"\n', ["--b"]),
    ("#!/bin/bash\n# nothing set\n", None),
    # install's block appends to the user's flags, or stands alone
    ('export COMMANDLINE_ARGS="--api --listen"\n' + INSTALL_SH, ["--api", "--listen", "--no-download-sd-model", "--medvram"]),
    (INSTALL_SH, ["--no-download-sd-model", "--medvram"]),
    ('export COMMANDLINE_ARGS=""\n' + INSTALL_SH, ["--no-download-sd-model", "--medvram"]),
    # quoting as bash and shlex see it: single quotes keep $, \$ is a dollar, quoted paths keep spaces
    ("export COMMANDLINE_ARGS='--ckpt $HOME/x.safetensors'\n", ["--ckpt", "$HOME/x.safetensors"]),
    ('export COMMANDLINE_ARGS="--ckpt \\$HOME/x --port 7861"\n', ["--ckpt", "$HOME/x", "--port", "7861"]),
    ("export COMMANDLINE_ARGS=\"--ckpt-dir '/my models' --medvram\"\n", ["--ckpt-dir", "/my models", "--medvram"]),
    ('BASE="--api"\nexport COMMANDLINE_ARGS="$BASE ${BASE}2 ${UNSET:-def} ${BASE:+x}"\n', ["--api", "--api2", "def", "x"]),
]
BAT_CASES = [
    ("@echo off\nset COMMANDLINE_ARGS=--xformers --medvram\ncall webui.bat\n", ["--xformers", "--medvram"]),
    ('@echo off\nset "COMMANDLINE_ARGS=--no-half-vae"\n', ["--no-half-vae"]),
    ("@echo off\nrem set COMMANDLINE_ARGS=--lowvram\nset COMMANDLINE_ARGS=\n", []),
    ("@echo off\r\n:: nothing set\r\ncall webui.bat\r\n", None),
    ("@echo off\r\nset COMMANDLINE_ARGS=--api\r\n" + INSTALL_BAT, ["--api", "--no-download-sd-model", "--medvram"]),
    (BAT_TEMPLATE.replace("call webui.bat\r\n", "") + INSTALL_BAT, ["--no-download-sd-model", "--medvram"]),
    ('SET commandline_args=--ckpt-dir "D:\\my models" --medvram\r\n', ["--ckpt-dir", "D:\\my models", "--medvram"]),
]


@pytest.mark.parametrize("text, expected", SH_CASES)
def test_sh_flags_are_what_bash_gives_the_web_ui(text, expected, tmp_path):
    assert commandline_args(text, "sh") == expected
    assert commandline_args(text, "sh") == _bash_args(tmp_path, text)


@pytest.mark.parametrize("text, expected", BAT_CASES)
def test_bat_flags_are_read_with_expansion_and_either_set_form(text, expected):
    assert commandline_args(text, "bat") == expected


def test_values_come_back_exactly_as_written():
    sh = 'export HTTPS_PROXY=\'http://u:pa$s@127.0.0.1:8\'\n' + INSTALL_SH
    assert effective_env(sh, "sh")["HTTPS_PROXY"] == "http://u:pa$s@127.0.0.1:8"
    assert effective_env(sh, "sh")["HF_HOME"] == "/data/it's here"
    assert effective_env(INSTALL_BAT, "bat")["HF_HOME"] == "D:\\sd\\50%"
    assert effective_env('set "A=x"\r\nset "B=%a%%%b%%"\r\n', "bat")["B"] == "x%b%"  # %% is a literal %, %A% any case


# ------------------------------------------------------------------- install -> doctor -> verify, for real


def _machine(name: str, system: str, *, gpus: bool = True) -> MachineFacts:
    data = json.loads((FIXTURES / name).read_text())
    data["os"]["system"] = system
    if not gpus:
        data["gpus"] = []
    return MachineFacts.from_json(data)


def _install_webui_user(install_dir: Path, facts: MachineFacts):
    """Run install's real webui-user step for this machine (the a1111 manifest, official sources)."""
    from sdsetup.install.context import InstallContext, Reporter
    from sdsetup.install.journal import Journal
    from sdsetup.install.plan import InstallOptions, build_plan
    from sdsetup.manifest import load_manifest
    from sdsetup.net.mirrors import select_mirrors
    from sdsetup.settings import load_settings

    settings = load_settings({}, env={})
    plan = build_plan(load_manifest("a1111"), facts, select_mirrors(settings, env={}), InstallOptions(quiet=True), install_dir)
    ctx = InstallContext(plan=plan, settings=settings, journal=Journal(install_dir), reporter=Reporter(True))
    step = next(step for step in plan.steps if step.id == "webui-user")
    step.run(ctx)
    return plan.decisions, step, ctx


USER_LINES = {"sh": '#!/bin/bash\nexport COMMANDLINE_ARGS="--api --listen"\n',
              "bat": BAT_TEMPLATE.replace("set COMMANDLINE_ARGS=\r\n", "set COMMANDLINE_ARGS=--api --listen\r\n")}


@pytest.mark.parametrize("flavour", ["sh", "bat"])
@pytest.mark.parametrize("user_file", [False, True], ids=["new-file", "user-flags-before"])
@pytest.mark.parametrize(
    "machine, gpus, smoke_flags",
    [
        ("machine-gtx1650-windows.json", True, {"webui_flags": ["--no-half-vae", "--upcast-sampling"]}),
        ("machine-gtx1650-windows.json", False, {"webui_flags": ["--no-half", "--no-half-vae"], "device": "cpu"}),
    ],
    ids=["gtx1650", "cpu"],
)
def test_verify_reads_back_exactly_the_flags_install_and_doctor_wrote(tmp_path, flavour, user_file, machine, gpus, smoke_flags):
    name = f"webui-user.{flavour}"
    install_dir = tmp_path / "webui"
    install_dir.mkdir()
    if user_file:
        (install_dir / name).write_bytes(USER_LINES[flavour].encode())
    facts = _machine(machine, "Windows" if flavour == "bat" else "Linux", gpus=gpus)
    decisions, step, ctx = _install_webui_user(install_dir, facts)
    # The doctor's fix for black images on 16xx cards, in its own block after install's.
    path = install_dir / name
    path.write_bytes(doctor_webui_user.change(path.read_bytes().decode(), flavour, add_args=["--no-half-vae"]).encode())
    text = path.read_bytes().decode()
    assert text.index(">>> sdsetup >>>") < text.index(">>> sdsetup doctor >>>")
    assert step.is_done(ctx)  # install's block is still as install wrote it

    written = (["--api", "--listen"] if user_file else []) + list(decisions.launch_args) + ["--no-half-vae"]
    args, items = verify.check_launch_flags(install_dir, SimpleNamespace(launch_args=()), facts)
    assert args == written
    assert [item["status"] for item in items] == ["ok"], items
    assert verify.smoke_options_from_args(args) == smoke_flags
    if flavour == "sh":
        assert _bash_args(tmp_path, text) == written


def _bash_args(tmp_path: Path, text: str) -> list[str] | None:
    script = tmp_path / "sourced.sh"
    script.write_text(text)
    env = {key: value for key, value in os.environ.items() if key != "COMMANDLINE_ARGS"}
    out = subprocess.run(["bash", "-c", f'. "{script}"; printf "%s" "${{COMMANDLINE_ARGS-<unset>}}"'],
                         capture_output=True, text=True, check=True, env=env).stdout
    return None if out == "<unset>" else shlex.split(out)


# ------------------------------------------------------------------ the writing rules (issue 14)

import shlex  # noqa: E402

from sdsetup.install.webui_config import (  # noqa: E402
    LaunchSettings, bat_encoding_problem, encoding_refusal, merge_bytes, render_bat_block, render_sh_block,
)
from sdsetup.webui_user_file import (  # noqa: E402
    arg_word, bat_python_line, bat_value, first_unencodable, oem_code_page_for_locale, relative_inside, set_line, split_args,
    unwritable,
)


@pytest.mark.parametrize("value, written", [
    ("50%", "50%%"),
    ("%PATH%", "%%PATH%%"),
    ("a & b | c < d > e ^ f", "a & b | c < d > e ^ f"),  # plain text inside set "…"
    ("C:\\Users\\张三\\x", "C:\\Users\\张三\\x"),
    ("it's", "it's"),
])
def test_bat_values_double_percent_and_keep_the_specials_inside_quotes(value, written):
    assert bat_value(value) == written
    assert set_line("X", value, "bat") == f'set "X={written}"'


@pytest.mark.parametrize("value, why", [
    ('say "hi"', "double quote"),
    ("two\nlines", "line break"),
    ("cr\rhere", "line break"),
    ("eof\x1a", "U+001A"),
    ("nul\x00", "U+0000"),
])
def test_values_no_shell_file_can_hold_are_named(value, why):
    assert why in unwritable(value)
    with pytest.raises(ValueError):
        bat_value(value)


@pytest.mark.parametrize("value, base, rest", [
    ("C:\\sd\\webui\\.cache\\huggingface", "C:\\sd\\webui", ".cache\\huggingface"),
    ("c:/SD/WebUI/models", "C:\\sd\\webui\\", "models"),  # Windows paths ignore case and slash style
    ("C:\\sd\\webui", "C:\\sd\\webui", ""),
    ("C:\\sd\\webui2\\x", "C:\\sd\\webui", None),  # a sibling that shares the prefix is outside
    ("D:\\other", "C:\\sd\\webui", None),
    ("/home/张三/sd webui/.cache/huggingface", "/home/张三/sd webui", ".cache\\huggingface"),
    ("/home/x/SD/a", "/home/x/sd", None),  # POSIX paths keep their case
    ("https://hf-mirror.com", "C:\\sd", None),
    ("anything", None, None),
])
def test_relative_inside(value, base, rest):
    assert relative_inside(value, base) == rest


@pytest.mark.parametrize("python, base, line", [
    # webui.bat runs %PYTHON% unquoted: the quotes live inside the value.
    ("C:\\Program Files\\Python310\\python.exe", None, 'set PYTHON="C:\\Program Files\\Python310\\python.exe"'),
    ("C:\\R&D 100%\\python.exe", None, 'set PYTHON="C:\\R&D 100%%\\python.exe"'),
    ("C:\\Users\\张三\\sd\\python\\python.exe", "C:\\Users\\张三\\sd", 'set PYTHON="%~dp0python\\python.exe"'),
])
def test_python_line_survives_unquoted_use(python, base, line):
    assert bat_python_line(python, base) == line


def test_bat_block_writes_paths_in_the_install_relative_and_leaves_out_a_linux_python():
    settings = LaunchSettings(args=(), env=(("HF_HOME", "/home/张三/sd/.cache/huggingface"), ("HF_ENDPOINT", "https://hf-mirror.com")),
                              python="/usr/bin/python3.10", base="/home/张三/sd")
    block = render_bat_block(settings)
    assert 'set "HF_HOME=%~dp0.cache\\huggingface"' in block and "张三" not in block
    assert "PYTHON" not in block  # a Linux interpreter means nothing to cmd.exe (webui.bat falls back to `python`)
    assert "python_cmd='/usr/bin/python3.10'" in render_sh_block(settings)
    assert all(line.endswith("\r") for line in block.split("\n")[:-1])  # CRLF


@pytest.mark.parametrize("locale_name, code_page", [
    ("zh_CN.UTF-8", 936), ("zh_CN.GB18030", 936), ("zh_SG", 936), ("zh_TW.Big5", 950), ("zh_HK.UTF-8", 950),
    ("ja_JP.UTF-8", 932), ("ko_KR.EUC-KR", 949), ("ru_RU.UTF-8", 866), ("de_DE@euro", 850), ("pl_PL", 852),
    ("en_US.UTF-8", 437), ("C", 437), ("C.UTF-8", 437), ("POSIX", 437), (None, 437), ("", 437),
])
def test_oem_code_page_of_a_locale(locale_name, code_page):
    assert oem_code_page_for_locale(locale_name) == code_page


@pytest.mark.parametrize("text, code_page, found", [
    ('set PYTHON="C:\\Users\\张三\\python.exe"', 936, None),
    ('set PYTHON="C:\\Users\\张三\\python.exe"', 437, "张"),
    ('set PYTHON="C:\\Users\\Jürgen\\python.exe"', 850, None),
    ('set PYTHON="C:\\Users\\Jürgen\\python.exe"', 866, "ü"),
    ('set PYTHON="C:\\Users\\Łukasz\\python.exe"', 852, None),
    ('set PYTHON="C:\\Users\\Łukasz\\python.exe"', 437, "Ł"),
    ("plain ascii", 437, None),
    ("anything 张三 Ł", 65001, None),
])
def test_code_page_fit(text, code_page, found):
    problem = first_unencodable("rem x\r\n" + text + "\r\nrem y\r\n", code_page)
    assert (problem[0] if problem else None) == found
    if problem:
        assert problem[1] == text


def test_a_value_the_code_page_lacks_is_refused_naming_the_character_and_the_fix():
    settings = LaunchSettings(args=(), env=(), python="C:\\Users\\张三\\Python310\\python.exe", base="C:\\sd")
    problem = bat_encoding_problem(render_bat_block(settings), 437)
    error = encoding_refusal(*problem, 437)
    assert error.exit_code == 2
    assert "PYTHON" in error.message and "'张' (U+5F20)" in error.message and "code page 437" in error.message
    assert "--python" in error.hint


@pytest.mark.parametrize("arg", ["--xformers", "a b", "C:\\models", "it's", "100%", "x&y", "$HOME", "`id`", "D:\\models & more 100%"])
def test_launch_flags_come_back_from_shlex_as_written(arg):
    word = arg_word(arg)
    assert '"' not in word and shlex.split(word) == [arg]


def test_the_users_own_bytes_are_kept_in_their_encoding_and_the_block_is_in_the_code_page():
    user = "@echo off\r\nrem 我的设置\r\nset COMMANDLINE_ARGS=--theme dark\r\n\r\ncall webui.bat\r\n"
    settings = LaunchSettings(args=("--xformers",), env=(), python="C:\\用户\\python.exe")
    for encoding in ("gbk", "utf-8"):
        new, how = merge_bytes(user.encode(encoding), render_bat_block(settings), "bat", 936)
        assert how == "inserted"
        assert new.startswith(user.split("call")[0].encode(encoding)) and new.endswith(b"call webui.bat\r\n")
        assert 'set PYTHON="C:\\用户\\python.exe"'.encode("gbk") in new
    again, how = merge_bytes(new, render_bat_block(settings), "bat", 936)
    assert how == "unchanged" and again == new


def test_a_user_file_with_lf_line_ends_gets_a_crlf_block():
    new, _ = merge_bytes(b"@echo off\ncall webui.bat\n", render_bat_block(LaunchSettings(args=("--medvram",), env=())), "bat")
    block = new[new.index(b"rem >>>"):new.index(b"call webui.bat")]
    assert block.count(b"\r\n") == block.count(b"\n") >= 3


def test_sh_values_with_spaces_dollars_and_backquotes_reach_bash_unchanged(tmp_path):
    import subprocess

    value = "/data/my models/$HOME `id` it's \\ x"
    settings = LaunchSettings(args=("--ckpt-dir", value), env=(("HF_HOME", value),), python="/opt/py 3/bin/python3.10")
    script = tmp_path / "webui-user.sh"
    script.write_text(render_sh_block(settings), "utf-8")
    out = subprocess.run(["bash", "-c", f'. "{script}"; printf "%s\\n" "$HF_HOME" "$python_cmd"; printf "%s" "$COMMANDLINE_ARGS"'],
                         capture_output=True, text=True, check=True).stdout.split("\n", 2)
    assert out[:2] == [value, "/opt/py 3/bin/python3.10"]
    assert split_args(out[2]) == ["--ckpt-dir", value]
    assert effective_env(script.read_text("utf-8"), "sh")["HF_HOME"] == value
