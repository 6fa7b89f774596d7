"""The progress-event seam (sdsetup/events.py): the numbers a terminal's download bar shows reach a
listener too, with the source's host, from a real download off a local server; no listener, no events."""

from __future__ import annotations

import hashlib
import os
import threading

from sdsetup import events
from sdsetup.net.download import download
from sdsetup.net.filespec import FileSpec
from sdsetup.net.retry import RetryPolicy
from sdsetup.net.session import build_session
from sdsetup.settings import Settings
from tests.servers.fileserver import FileServer

MiB = 1024 * 1024


def test_a_download_reports_bytes_total_and_source_host_to_a_listener(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    data = os.urandom(3 * MiB)
    (site / "model.bin").write_bytes(data)
    seen: list[tuple[str, dict]] = []
    lock = threading.Lock()

    def sink(kind, fields):
        with lock:
            seen.append((kind, dict(fields)))

    settings = Settings(cache_dir=tmp_path / "cache", connections=2, timeout=30.0, quiet=True)
    with FileServer(site, rate=4 * MiB) as server:
        spec = FileSpec((server.url("/model.bin"),), tmp_path / "out" / "model.bin", sha256=hashlib.sha256(data).hexdigest())
        with events.sink(sink):
            download(spec, build_session(settings), settings, progress=False, policy=RetryPolicy(tries=3, base=0.05, cap=0.2))
        host = f"127.0.0.1:{server.port}"
    files = [fields for kind, fields in seen if kind == "file"]
    assert files[0]["state"] == "start" and files[-1]["state"] == "end"
    assert files[-1]["done"] == len(data) and files[-1]["total"] == len(data)
    updates = [f["done"] for f in files if f["state"] == "update"]
    assert updates == sorted(updates) and len(updates) >= 2  # several updates while it runs, never backwards
    assert {f["host"] for f in files if f["state"] != "start"} == {host}
    assert all(f["name"] == "model.bin" for f in files)

    seen.clear()  # the listener is gone: a second download reports to nobody
    (tmp_path / "out" / "model.bin").unlink()
    with FileServer(site) as server:
        spec = FileSpec((server.url("/model.bin"),), tmp_path / "out" / "model.bin", sha256=hashlib.sha256(data).hexdigest())
        download(spec, build_session(settings), settings, progress=False)
    assert seen == [] and not events.listening()


def test_a_listener_that_raises_does_not_stop_the_work():
    def broken(kind, fields):
        raise RuntimeError("listener bug")

    got = []
    with events.sink(broken), events.sink(lambda kind, fields: got.append(kind)):
        events.emit("line", text="x", level="say")
    assert got == ["line"]
