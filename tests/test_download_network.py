"""No long silence and no long wait on a dead host (issue 13 items 4-5, engine part): a redirect to
another host is followed under the same checks and a dead one gives way to the next source fast; a
proxy that accepts and never answers is named; a quiet download says what it waits for."""

from __future__ import annotations

import hashlib
import io
import os
import time

import pytest

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.net import heartbeat
from sdsetup.net.download import download
from sdsetup.net.filespec import FileSpec
from sdsetup.net.heartbeat import Heartbeat, due, line
from sdsetup.net.retry import RetryPolicy
from sdsetup.net.session import build_session
from sdsetup.settings import Settings
from tests.servers.fileserver import Blackhole, FileServer

MiB = 1024 * 1024


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def site(tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    data = os.urandom(6 * MiB)
    (good / "model.bin").write_bytes(data)
    (bad / "model.bin").write_bytes(os.urandom(6 * MiB))
    return good, bad, data


def get(tmp_path, urls, data, *, quiet=True, **changes):
    values = dict(cache_dir=tmp_path / "cache", connections=4, timeout=30.0, quiet=quiet)  # the default stall timeout
    values.update(changes)
    settings = Settings(**values)
    spec = FileSpec(tuple(urls), tmp_path / "out" / "model.bin", sha256=sha(data))
    return download(spec, build_session(settings), settings, progress=False, policy=RetryPolicy(tries=8, base=0.05, cap=0.5))


def test_a_redirect_to_a_host_that_never_answers_gives_way_to_the_next_source_fast(tmp_path, site):
    """hf-mirror → a Xet bridge that accepts and never answers: the next source within seconds."""
    good, _bad, data = site
    with Blackhole() as bridge, FileServer(good) as mirror, FileServer(good) as origin:
        mirror.rule("/model.bin", redirect=bridge.url("/xet/model.bin"))
        began = time.monotonic()
        result = get(tmp_path, [mirror.url("model.bin"), origin.url("model.bin")], data)
        took = time.monotonic() - began
        assert bridge.accepted >= 1, "the redirect was followed"
    assert result.path.read_bytes() == data
    assert took < 20, f"{took:.0f} s before the next source"


def test_a_redirect_to_a_host_with_other_bytes_is_checked_like_any_source(tmp_path, site):
    good, bad, data = site
    with FileServer(bad) as bridge, FileServer(good) as mirror, FileServer(good) as origin:
        mirror.rule("/model.bin", redirect=bridge.url("/model.bin"))
        result = get(tmp_path, [mirror.url("model.bin"), origin.url("model.bin")], data)
        assert bridge.bytes_sent("/model.bin") > 0, "the redirect target served bytes"
    assert result.path.read_bytes() == data


def test_a_proxy_that_accepts_and_never_answers_is_named_within_a_minute(tmp_path, site):
    good, _bad, data = site
    with Blackhole() as proxy, FileServer(good) as mirror, FileServer(good) as origin:
        began = time.monotonic()
        with pytest.raises(SdsetupError) as caught:
            get(tmp_path, [mirror.url("model.bin"), origin.url("model.bin")], data, proxy=proxy.url("").rstrip("/"))
        took = time.monotonic() - began
    error = caught.value
    assert error.exit_code == ExitCode.NETWORK
    assert f"the proxy http://127.0.0.1:{proxy.port}" in error.message and "did not answer" in error.message
    assert "proxy" in error.hint
    assert took < 60, f"{took:.0f} s before naming the proxy"


# -- the heartbeat ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "what, done, host, total, text",
    [
        ("https://h/x.bin", 0, "h", None, "waiting for https://h/x.bin: 0 B so far from h"),
        ("https://h/x.bin", 3 * MiB, "cdn:8443", 6 * MiB, "waiting for https://h/x.bin: 3.0 MiB of 6.0 MiB so far from cdn:8443"),
        ("git clone https://github.com/a/b", None, None, None, "waiting for git clone https://github.com/a/b"),
    ],
)
def test_heartbeat_line(what, done, host, total, text):
    assert line(what, done, host, total) == text


def test_heartbeat_is_due_only_after_the_silence():
    assert not due(100.0, 114.9) and due(100.0, 115.0) and due(100.0, 130.0, every=15)
    out = io.StringIO()
    beat = Heartbeat("x", status=lambda: (5, "h"), every=15, stream=out)
    beat.last = 0.0
    assert beat.beat(now=10.0) is None and beat.beat(now=15.0) == "waiting for x: 5 B so far from h"
    assert beat.beat(now=20.0) is None, "at most one line per 15 s"
    beat.said_something()
    assert beat.beat(now=beat.last + 14) is None


def test_a_quiet_download_without_a_bar_says_what_it_waits_for(tmp_path, site, capsys, monkeypatch):
    monkeypatch.setattr(heartbeat, "EVERY", 0.5)
    good, _bad, data = site
    with Blackhole() as dead, FileServer(good, rate=MiB) as fs:
        get(tmp_path, [dead.url("model.bin"), fs.url("model.bin")], data, quiet=False, connections=2)
        port = fs.port
    lines = [entry for entry in capsys.readouterr().err.splitlines() if entry.startswith("waiting for")]
    assert any(f"from 127.0.0.1:{dead.port}" in entry for entry in lines), lines  # while the dead one is probed
    assert any(f"so far from 127.0.0.1:{port}" in entry and "MiB" in entry for entry in lines), lines


def test_no_heartbeat_when_quiet(tmp_path, site, capsys, monkeypatch):
    monkeypatch.setattr(heartbeat, "EVERY", 0.2)
    good, _bad, data = site
    with FileServer(good, rate=4 * MiB) as fs:
        get(tmp_path, [fs.url("model.bin")], data, quiet=True)
    assert "waiting for" not in capsys.readouterr().err
