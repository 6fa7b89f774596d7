"""Issue 23 items 16, 18 and 21 for the doctor: `--fix` holds the install lock, `--log` refuses what is not
a file (a device never ends, a FIFO blocks), and a full disk is exit 7 with no traceback."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sdsetup import cli

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
ROOT = Path(__file__).resolve().parents[1]


def doctor(*args: str):
    return CliRunner().invoke(cli.app, ["doctor", *args])


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_a_character_device_as_the_log_is_refused_by_name():
    result = doctor("--log", "/dev/zero", "--json")
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)["error"]
    assert "/dev/zero" in error["message"] and "character device" in error["message"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_as_the_log_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "console.pipe"
    os.mkfifo(fifo)
    # a subprocess with a timeout: a doctor that opened the FIFO would wait forever for a writer
    result = subprocess.run([sys.executable, "-m", "sdsetup", "doctor", "--log", str(fifo)], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    assert result.returncode == 2, result.stderr
    assert str(fifo) in result.stderr and "FIFO" in result.stderr and "Traceback" not in result.stderr


def test_fix_waits_for_no_one_while_an_install_holds_the_folder(tmp_path):
    root = tmp_path / "webui"
    root.mkdir()
    script = "#!/bin/bash\nexport COMMANDLINE_ARGS=\"--medvram\"\n"
    (root / "webui-user.sh").write_text(script)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from sdsetup.install.journal import InstallLock
        with InstallLock(Path({str(root)!r}), "install"):
            print("held", flush=True)
            sys.stdin.readline()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = doctor(str(root), "--log", str(FIXTURES / "nan-vae.log"), "--fix", "--yes", "--json")
        assert busy.exit_code == 6, busy.output
        assert "busy" in json.loads(busy.stdout)["error"]["message"]
        assert (root / "webui-user.sh").read_text() == script, "nothing was changed while the install ran"
    finally:
        holder.communicate("\n", timeout=30)
    done = doctor(str(root), "--log", str(FIXTURES / "nan-vae.log"), "--fix", "--yes")
    assert done.exit_code == 0, done.output
    assert "--no-half-vae" in (root / "webui-user.sh").read_text()


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE") or not hasattr(signal, "SIGXFSZ"), reason="POSIX file-size limit")
def test_a_full_disk_while_writing_the_bundle_is_exit_7_and_no_traceback(tmp_path, isolated_env):
    """The file-size limit stands in for a full disk here: writes past it fail the way ENOSPC does
    (EFBIG), for the zip and for the run log alike, without root or a tiny file system."""
    log = tmp_path / "console.log"
    noise = "\n".join(os.urandom(40).hex() for _ in range(400))  # does not compress: the zip outgrows the limit
    log.write_text(noise + "\n" + (FIXTURES / "cuda-oom.log").read_text() + noise + "\n")
    bundle = tmp_path / "report.zip"
    result = subprocess.run([sys.executable, "-m", "sdsetup", "doctor", "--log", str(log), "--bundle", str(bundle)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120, env=dict(os.environ),
                            preexec_fn=_limit_file_size(6000))
    assert result.returncode == 7, (result.returncode, result.stderr[-2000:])
    assert "disk is full" in result.stderr and str(bundle) in result.stderr
    assert "Traceback" not in result.stderr and "Logging error" not in result.stderr
    assert not bundle.exists(), "no half-written zip where the user expects one"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("report")] == []


def test_a_run_log_that_cannot_be_written_goes_quiet(tmp_path, capfd):
    import logging

    from sdsetup.logs import _RunLogHandler

    handler = _RunLogHandler(tmp_path / "run.log", encoding="utf-8")
    logger = logging.getLogger("sdsetup")
    logger.addHandler(handler)
    handler.stream.close()  # every later write fails, as on a full disk
    try:
        logger.error("first line")
        logger.error("second line")
    finally:
        logger.removeHandler(handler)
    err = capfd.readouterr().err
    assert "Logging error" not in err and "Traceback" not in err
    assert handler not in logger.handlers
