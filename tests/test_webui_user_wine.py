"""The generated webui-user.bat run by a real cmd.exe (wine's), in a Chinese locale (code page 936).

What cmd sees is written to a file by a stand-in for webui.bat that uses the values the way webui.bat
does: `%PYTHON%` unquoted (PYTHON is a copy of cmd.exe, so running it proves which file started),
`if exist "%HF_HOME%\\"`, and COMMANDLINE_ARGS as launch.py reads it (shlex). One wine prefix serves
the whole module (its first start takes seconds). Facts: ../shared/facts/china-and-windows.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sdsetup.install.webui_config import LaunchSettings, merge_bytes, render_bat_block
from sdsetup.webui_user_file import BAT_TEMPLATE, effective_env, split_args

LOCALE = "zh_CN.UTF-8"
STANDIN = (
    "@echo off\r\n"
    "if not defined PYTHON (set PYTHON=python)\r\n"
    "%PYTHON% /c exit 7\r\n"  # webui.bat: %PYTHON% -c "" (unquoted); our PYTHON is cmd.exe, so: exit 7
    "echo python_exit=%ERRORLEVEL%>seen.txt\r\n"
    'if exist "%HF_HOME%\\" (echo hf_home=found>>seen.txt) else (echo hf_home=missing>>seen.txt)\r\n'
    "set COMMANDLINE_ARGS>>seen.txt\r\n"
    "set SDSETUP_T>>seen.txt\r\n"
)
SPECIAL = "50% & a|b <c> ^d 'q' !x!"


def _wine_binary() -> str | None:
    for candidate in (shutil.which("wine64"), "/usr/lib/wine/wine64", shutil.which("wine")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def _has_locale(name: str) -> bool:
    try:
        listed = subprocess.run(["locale", "-a"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return name.lower().replace("utf-8", "utf8") in {line.strip().lower() for line in listed.splitlines()}


def windows_path(path: Path) -> str:
    """How wine's cmd.exe names a Unix path."""
    return "Z:" + str(path).replace("/", "\\")


class Wine:
    def __init__(self, binary: str, prefix: Path) -> None:
        self.binary = binary
        self.env = {**os.environ, "WINEDEBUG": "-all", "WINEPREFIX": str(prefix), "LANG": LOCALE, "LC_ALL": LOCALE,
                    "DISPLAY": ""}
        self.cmd_exe = prefix / "drive_c" / "windows" / "system32" / "cmd.exe"

    def run(self, *args: str, cwd: Path) -> subprocess.CompletedProcess:
        return subprocess.run([self.binary, "cmd", "/c", *args], cwd=cwd, env=self.env, capture_output=True,
                              timeout=120, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def wine(tmp_path_factory):
    binary = _wine_binary()
    if binary is None:
        pytest.skip("wine is not installed (Debian: apt-get install -y wine64; .ci/run does it)")
    if not _has_locale(LOCALE):
        pytest.skip(f"the {LOCALE} locale is missing (enable it in /etc/locale.gen and run locale-gen; .ci/run does it)")
    prefix = tmp_path_factory.mktemp("wineprefix")
    runner = Wine(binary, prefix)
    first = runner.run("echo", "ready", cwd=prefix)
    if b"ready" not in first.stdout or not runner.cmd_exe.exists():
        pytest.skip(f"wine does not start here: {first.stderr.decode('utf-8', 'replace')[-300:]}")
    yield runner
    subprocess.run([str(Path(binary).with_name("wineserver")), "-k"], env=runner.env, capture_output=True, timeout=30)


def _fake_python(wine: Wine, folder: Path) -> Path:
    """A Windows program at `folder`/python.exe: a copy of cmd.exe, so `%PYTHON% /c exit 7` proves it ran."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(wine.cmd_exe, folder / "python.exe")
    return folder / "python.exe"


def _seen(install: Path) -> dict[str, str]:
    text = (install / "seen.txt").read_bytes().decode("gbk")
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _install(tmp_path: Path, wine: Wine, name: str, *, user_bytes: bytes) -> tuple[Path, Path]:
    install = tmp_path / name
    (install / ".cache" / "huggingface").mkdir(parents=True)
    (install / "webui.bat").write_bytes(STANDIN.encode("ascii"))
    (install / "webui-user.bat").write_bytes(user_bytes)
    python = _fake_python(wine, tmp_path / f"Program Files {name}" / "Python310")
    return install, python


USER_BAT = BAT_TEMPLATE.replace("set COMMANDLINE_ARGS=", "rem 张三的设置：主题\r\nset COMMANDLINE_ARGS=--theme dark").encode("gbk")


@pytest.mark.parametrize("name", ["sd webui", "张三", "张三 的 webui"])
def test_cmd_reads_the_generated_bat_as_intended(wine, tmp_path, name):
    install, python = _install(tmp_path, wine, name, user_bytes=USER_BAT)
    settings = LaunchSettings(
        args=("--xformers", "--ckpt-dir", "D:\\models & more 100%"),
        env=(("HF_HOME", str(install / ".cache" / "huggingface")), ("SDSETUP_T1", SPECIAL)),
        python=windows_path(python),
        base=str(install),
    )
    new, how = merge_bytes(USER_BAT, render_bat_block(settings), "bat", 936)
    assert how == "inserted"
    # The user's lines, byte for byte (GBK), around our block; nothing of the install dir's name in the file.
    before, _, after = USER_BAT.partition(b"call webui.bat")
    assert new.startswith(before) and new.endswith(b"call webui.bat" + after)
    for form in (str(install), windows_path(install)):
        assert form.encode("gbk") not in new
    (install / "webui-user.bat").write_bytes(new)

    wine.run(windows_path(install / "webui-user.bat"), cwd=install)

    seen = _seen(install)
    assert seen["python_exit"] == "7", seen  # webui.bat's unquoted %PYTHON% started exactly that file
    assert seen["hf_home"] == "found", seen
    assert split_args(seen["COMMANDLINE_ARGS"]) == ["--theme", "dark", "--xformers", "--ckpt-dir", "D:\\models & more 100%"]
    assert seen["SDSETUP_T1"] == SPECIAL
    # sdsetup's own reader (verify, doctor) agrees with cmd.exe.
    ours = effective_env(new.decode("gbk"), "bat", folder=windows_path(install))
    assert ours["COMMANDLINE_ARGS"] == seen["COMMANDLINE_ARGS"] and ours["SDSETUP_T1"] == SPECIAL
    assert ours["HF_HOME"] == windows_path(install / ".cache" / "huggingface") + ""


@pytest.mark.parametrize("old_form", ["quoted set", "utf-8 file"])
def test_the_forms_sdsetup_wrote_before_fail_under_cmd(wine, tmp_path, old_form):
    """The control: what the test above checks does fail for the forms users report."""
    install, python = _install(tmp_path, wine, "张三 webui", user_bytes=BAT_TEMPLATE.encode("ascii"))
    path = windows_path(python)
    if old_form == "quoted set":
        block = f'set "PYTHON={path}"\r\nset "HF_HOME=%~dp0.cache\\huggingface"\r\n'
        data = BAT_TEMPLATE.replace("call webui.bat", block + "call webui.bat").encode("gbk")
    else:
        settings = LaunchSettings(args=(), env=(("HF_HOME", windows_path(install / ".cache" / "huggingface")),), python=path)
        data = merge_bytes(BAT_TEMPLATE.encode("ascii"), render_bat_block(settings), "bat", 65001)[0]
    (install / "webui-user.bat").write_bytes(data)
    wine.run(windows_path(install / "webui-user.bat"), cwd=install)
    seen = _seen(install)
    assert seen["python_exit"] != "7"
    if old_form == "utf-8 file":
        assert seen["hf_home"] == "missing"  # the absolute UTF-8 path turns into mojibake


def test_a_python_inside_the_install_is_written_relative_and_runs(wine, tmp_path):
    install, _ = _install(tmp_path, wine, "张三 portable", user_bytes=BAT_TEMPLATE.encode("ascii"))
    python = _fake_python(wine, install / "python")
    settings = LaunchSettings(args=(), env=(), python=str(python), base=str(install))
    block = render_bat_block(settings)
    assert 'set PYTHON="%~dp0python\\python.exe"' in block
    data = merge_bytes(BAT_TEMPLATE.encode("ascii"), block, "bat", 936)[0]
    assert data.isascii()
    (install / "webui-user.bat").write_bytes(data)
    wine.run(windows_path(install / "webui-user.bat"), cwd=install)
    assert _seen(install)["python_exit"] == "7"
