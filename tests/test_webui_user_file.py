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
