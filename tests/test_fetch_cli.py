"""`sdsetup fetch` as a user runs it: input checks, exit codes, a process killed mid-download and run
again, Ctrl-C, two processes on one file, a full disk."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sdsetup import cli
from sdsetup.net.sidecar import load_state, part_path, state_path
from tests.servers.fileserver import Fault, FileServer

ROOT = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    data = os.urandom(8 * MiB)
    (root / "model.bin").write_bytes(data)
    return root, data


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def start_fetch(*args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sdsetup", "fetch", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def run_fetch(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sdsetup", "fetch", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


# -- input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, message",
    [
        (["ftp://example.org/x.bin"], "not a URL sdsetup can download"),
        (["https:///x.bin"], "no host name"),
        (["http://127.0.0.1:1/x.bin", "--sha256", "xyz"], "is not a sha256"),
        (["http://127.0.0.1:1/x.bin", "--size", "-5"], "negative"),
        (["http://127.0.0.1:1/"], "cannot tell a file name"),
        (["http://127.0.0.1:1/x.bin", "--connections", "0"], "out of range"),
        (["http://127.0.0.1:1/x.bin", "--proxy", "ftp://p:1"], "not a proxy URL"),
    ],
)
def test_bad_input_is_a_usage_error_without_traceback(args, message, tmp_path):
    result = CliRunner().invoke(cli.app, ["fetch", *args, "-o", str(tmp_path / "out") + "/"])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_output_under_a_file_is_a_usage_error_naming_that_file(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(cli.app, ["fetch", "http://127.0.0.1:1/x.bin", "-o", str(tmp_path / "notes.txt" / "x.bin"), "--json"])
    assert result.exit_code == 2, result.output
    doc = json.loads(result.stdout)
    assert doc["error"]["kind"] == "usage" and str(tmp_path / "notes.txt") in doc["error"]["message"]
    assert "not a folder" in doc["error"]["message"]
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_file_url_naming_a_folder_is_a_usage_error_not_a_network_one(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    for url in (folder.as_uri(), folder.as_uri() + "/"):
        result = CliRunner().invoke(cli.app, ["fetch", url, "-o", str(tmp_path / "x"), "--json"])
        assert result.exit_code == 2, result.output
        error = json.loads(result.stdout)["error"]
        assert error["kind"] == "usage" and str(folder) in error["message"] and "must name a file" in error["message"]
        assert error["hint"] and not (tmp_path / "x").exists()


def test_output_folder_gets_the_url_file_name_and_json_envelope(tmp_path, site):
    root, data = site
    with FileServer(root) as fs:
        result = CliRunner().invoke(cli.app, ["fetch", fs.url("model.bin"), "-o", str(tmp_path), "--sha256", sha(data), "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and doc["command"] == "fetch"
    assert doc["data"]["path"] == str(tmp_path / "model.bin") and doc["data"]["verified"] is True
    assert doc["data"]["sha256"] == sha(data) and doc["data"]["size"] == len(data)
    assert (tmp_path / "model.bin").read_bytes() == data


def test_several_urls_are_mirrors_of_one_file(tmp_path, site):
    root, data = site
    with FileServer(tmp_path / "nothing-here") as empty, FileServer(root) as fs:
        result = CliRunner().invoke(cli.app, ["fetch", empty.url("model.bin"), fs.url("model.bin"), "-o", str(tmp_path / "m.bin"), "--json"])
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["data"]["urls_used"] == [fs.url("model.bin")]


def test_exit_codes_network_and_integrity(tmp_path, site):
    root, data = site
    with FileServer(root) as fs:
        missing = CliRunner().invoke(cli.app, ["fetch", fs.url("nope.bin"), "-o", str(tmp_path / "nope.bin")])
        assert missing.exit_code == 3 and "HTTP 404" in missing.stderr
        fs.always("/model.bin", Fault.corrupt(at=12345))
        bad = CliRunner().invoke(cli.app, ["fetch", fs.url("model.bin"), "-o", str(tmp_path / "m.bin"), "--sha256", sha(data), "--json"])
    assert bad.exit_code == 4
    corrupted = bytearray(data)
    corrupted[12345] ^= 0xFF
    assert sha(data) in bad.stderr and sha(bytes(corrupted)) in bad.stderr
    assert json.loads(bad.stdout)["error"]["details"]["actual"] == sha(bytes(corrupted))
    assert not (tmp_path / "m.bin").exists() and not part_path(tmp_path / "m.bin").exists()


# -- processes -----------------------------------------------------------------------------------
CONNECTIONS = 4


def test_killed_download_resumes_losing_at_most_about_a_mib_per_connection(tmp_path, site):
    root, data = site
    dest = tmp_path / "model.bin"
    with FileServer(root, rate=1 * MiB) as fs:
        args = (fs.url("model.bin"), "-o", str(dest), "--sha256", sha(data), "--connections", str(CONNECTIONS), "--quiet")
        first = start_fetch(*args)
        try:
            wait_for(lambda: fs.bytes_sent("/model.bin") >= 4 * MiB)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        sent_first = fs.bytes_sent("/model.bin")
        saved = load_state(state_path(dest))
        assert saved is not None and saved.done.total() > 0
        second = run_fetch(*args, "--json")
        sent_second = fs.bytes_sent("/model.bin") - sent_first
        resumed = [r for r in fs.requests("/model.bin") if r.method == "GET"][-1]
    assert second.returncode == 0, second.stderr
    doc = json.loads(second.stdout)["data"]
    assert doc["resumed"] is True and doc["sha256"] == sha(data)
    assert dest.read_bytes() == data
    refetched = sent_first + sent_second - len(data)
    print(f"killed after {sent_first} bytes sent, {saved.done.total()} saved; refetched {refetched}")
    assert refetched <= CONNECTIONS * MiB + 256 * 1024, f"fetched {refetched} bytes twice"
    assert sent_second <= len(data) - saved.done.total() + 64 * 1024
    assert resumed.if_range and resumed.range


def test_ctrl_c_exits_130_keeps_the_part_and_a_rerun_finishes(tmp_path, site):
    root, data = site
    dest = tmp_path / "model.bin"
    with FileServer(root, rate=1 * MiB) as fs:
        args = (fs.url("model.bin"), "-o", str(dest), "--sha256", sha(data), "--connections", "2")
        first = start_fetch(*args, "--json")
        wait_for(lambda: fs.bytes_sent("/model.bin") >= 2 * MiB)
        first.send_signal(signal.SIGINT)
        out, err = first.communicate(timeout=15)
        assert first.returncode == 130, err
        assert json.loads(out)["error"]["kind"] == "interrupted"
        assert "interrupted" in err and "Traceback" not in err
        assert part_path(dest).exists() and load_state(state_path(dest)).done.total() >= 1 * MiB
        assert not dest.exists()
        second = run_fetch(*args, "--json")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["data"]["resumed"] is True
    assert "%|" not in second.stderr, "no progress bar when stderr is not a terminal"
    assert dest.read_bytes() == data and not part_path(dest).exists()


def test_two_processes_one_file(tmp_path, site):
    root, data = site
    dest = tmp_path / "model.bin"
    with FileServer(root, rate=MiB // 2) as fs:
        args = (fs.url("model.bin"), "-o", str(dest), "--sha256", sha(data), "--connections", "2", "--json")
        first = start_fetch(*args)
        wait_for(lambda: fs.bytes_sent("/model.bin") > 0)
        impatient = run_fetch(*args, "--lock-timeout", "0.3")
        second = start_fetch(*args)
        out_first, _ = first.communicate(timeout=30)
        out_second, err_second = second.communicate(timeout=30)
        total_sent = fs.bytes_sent("/model.bin")
    assert impatient.returncode == 6, impatient.stdout + impatient.stderr
    assert f"sdsetup process {first.pid}" in impatient.stderr
    assert first.returncode == 0 and second.returncode == 0, err_second
    assert json.loads(out_first)["data"]["cached"] is False
    assert json.loads(out_second)["data"]["cached"] is True, "the second found the file done"
    assert f"waiting for sdsetup process {first.pid}" in err_second
    assert total_sent < len(data) * 1.1, "the file was fetched once"
    assert dest.read_bytes() == data
    assert not dest.with_name("model.bin.lock").exists()


# -- a full disk ---------------------------------------------------------------------------------
def _tiny_disk_script(inner: str) -> list[str] | None:
    """argv running `inner` (sh) with a 2 MiB tmpfs at $DISK, in a private mount namespace; None when
    this machine does not allow it (no unshare, or user namespaces disabled)."""
    unshare = shutil.which("unshare")
    if not unshare:
        return None
    probe = subprocess.run([unshare, "-Urm", "sh", "-c", "mount -t tmpfs -o size=2m tmpfs /mnt"], capture_output=True)
    if probe.returncode != 0:
        return None
    return [unshare, "-Urm", "sh", "-c", "mkdir -p \"$DISK\" && mount -t tmpfs -o size=2m tmpfs \"$DISK\" && " + inner]


def test_disk_full_midway_is_a_disk_error_and_keeps_the_part(tmp_path, site):
    root, data = site
    (root / "stream.bin").write_bytes(data[: 3 * MiB])
    disk = tmp_path / "disk"
    inner = (
        f'"{sys.executable}" -m sdsetup fetch "$URL" -o "$DISK/stream.bin" --quiet; echo "rc=$?"; '
        'ls "$DISK"; '
        f'"{sys.executable}" -m sdsetup fetch "$URL" -o "$DISK/known.bin" --size {3 * MiB} --quiet; echo "rc=$?"'
    )
    argv = _tiny_disk_script(inner)
    if argv is None:
        pytest.skip("no private tmpfs here (unshare -Urm not allowed)")
    # chunked: the size is unknown, so no free-space check can stop it before the disk fills up
    with FileServer(root, chunked=True, ranges=False) as fs:
        env = dict(os.environ, DISK=str(disk), URL=fs.url("stream.bin"), PYTHONPATH=str(ROOT))
        result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    out, err = result.stdout, result.stderr
    first_rc, second_rc = [line for line in out.splitlines() if line.startswith("rc=")]
    assert first_rc == "rc=7", err
    assert "the disk filled up" in err and "part already downloaded is kept" in err
    assert "stream.bin.part" in out
    assert second_rc == "rc=7" and "not enough free space" in err


def test_urls_go_through_the_mirror_layer(tmp_path, site, isolated_env):
    """A [[rewrite]] rule in the config file sends the URL to a mirror first; the original URL
    (here a closed port) stays as the last resort."""
    root, data = site
    with FileServer(root) as mirror:
        config = Path(os.environ["SDSETUP_CONFIG"])
        config.write_text(f'[[rewrite]]\nprefix = "http://127.0.0.1:1/files/"\nreplace = "{mirror.base_url}/"\n')
        result = CliRunner().invoke(cli.app, ["fetch", "http://127.0.0.1:1/files/model.bin", "-o", str(tmp_path / "m.bin"), "--sha256", sha(data), "--json"])
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["data"]["urls_used"] == [mirror.url("model.bin")]
    assert (tmp_path / "m.bin").read_bytes() == data


# -- destinations that are not a place for a file (issue 11 items 1, 14, 16) -----------------------
def _special(kind: str, tmp_path: Path) -> str:
    if kind == "fifo":
        os.mkfifo(tmp_path / "pipe")
        return str(tmp_path / "pipe")
    if kind == "socket":
        import socket

        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(tmp_path / "sock"))
        sock.close()
        return str(tmp_path / "sock")
    return kind


@pytest.mark.parametrize("target", ["/dev/null", "/dev/full", "fifo", "socket", "/proc/self/x.bin", "/sys/kernel/x.bin", "/dev/x.bin"])
def test_output_that_is_not_a_regular_file_is_a_usage_error_and_stays_as_it_was(target, tmp_path):
    if not Path("/proc/self").is_dir() and target.startswith(("/proc", "/sys")):
        pytest.skip("no /proc here")
    path = _special(target, tmp_path)
    before = os.stat(path).st_mode if os.path.exists(path) else None
    result = run_fetch("http://127.0.0.1:1/x.bin", "-o", path, timeout=20)  # a FIFO must not block
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and "\nhint: " in result.stderr and "Traceback" not in result.stderr
    assert (os.stat(path).st_mode if os.path.exists(path) else None) == before, "the special file was replaced"
    assert not os.path.exists(path + ".lock")


@pytest.mark.parametrize("name", ["x" * 300, "x" * 250, "d" * 300 + "/x.bin"])
def test_a_name_too_long_for_the_file_system_is_a_usage_error(name, tmp_path):
    result = CliRunner().invoke(cli.app, ["fetch", "http://127.0.0.1:1/x.bin", "-o", str(tmp_path / name), "--json"])
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "usage" and "too long" in error["message"] and error["hint"]
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_destination_folder_is_a_usage_error(tmp_path):
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        result = run_fetch("http://127.0.0.1:1/x.bin", "-o", str(folder / "x.bin"))
        folder.chmod(0o755)
        out = result.stderr + f"\nrc={result.returncode}"
    else:  # root writes anywhere the file system allows: a read-only mount
        argv = _tiny_disk_script(f'mount -o remount,ro "$DISK" && "{sys.executable}" -m sdsetup fetch http://127.0.0.1:1/x.bin -o "$DISK/x.bin"; echo "rc=$?"; ls -a "$DISK"')
        if argv is None:
            pytest.skip("no private mount here (unshare -Urm not allowed)")
        env = dict(os.environ, DISK=str(tmp_path / "disk"), PYTHONPATH=str(ROOT))
        result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
        out = result.stderr + result.stdout
    assert "rc=2" in out, out
    assert "cannot write in" in out and "hint:" in out and "Traceback" not in out


def test_a_failed_fetch_leaves_no_lock_file(tmp_path):
    dest = tmp_path / "x.bin"
    result = run_fetch("http://127.0.0.1:1/x.bin", "-o", str(dest), "--timeout", "1")
    assert result.returncode == 3, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_every_source_failing_lists_each_once_in_the_line_and_all_in_json(tmp_path, site):
    """One bounded error line; the full list in --json details (issue 13 item 6, engine part)."""
    root, data = site
    with FileServer(root) as fs:
        fs.rule("/model.bin", page=(403, "<html>challenge</html>"))
        urls = [fs.url("model.bin") + f"?m={i}" for i in range(5)] + [fs.url("missing.bin")]
        result = CliRunner().invoke(cli.app, ["fetch", *urls, "-o", str(tmp_path / "m.bin"), "--sha256", sha(data), "--json", "--timeout", "2"])
    assert result.exit_code == 3, result.output
    error = json.loads(result.stdout)["error"]
    assert [s["url"] for s in error["details"]["sources"]] == urls
    assert all(s["reason"] for s in error["details"]["sources"])
    assert error["message"].count("403") == 3 and "and 3 more source(s)" in error["message"]
    assert not list(tmp_path.glob("m.bin*"))
