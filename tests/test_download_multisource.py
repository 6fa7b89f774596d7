"""Several sources for one hash-known file, against real local servers (issue 21 items 2 and 3, issue 23's
size note): the faster source does more, a source that slows mid-file is left with a one-line message,
right bytes served slowly beat wrong bytes served fast, everything slow still finishes, and a wrong-size
first mirror no longer makes the good ones look wrong."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from sdsetup.net.download import download
from sdsetup.net.filespec import FileSpec
from sdsetup.net.retry import RetryPolicy
from sdsetup.net.session import build_session
from sdsetup.settings import Settings
from tests.servers.fileserver import FileServer

MiB = 1024 * 1024
FAST = RetryPolicy(tries=6, base=0.05, cap=0.4)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _settings(tmp_path, **changes) -> Settings:
    values = dict(cache_dir=tmp_path / "cache", connections=4, timeout=5.0, quiet=False)
    values.update(changes)
    return Settings(**values)


def _fetch(tmp_path, urls, data, *, size=None, **changes):
    settings = _settings(tmp_path, **changes)
    spec = FileSpec(tuple(urls), tmp_path / "out" / "file.bin", sha256=sha(data), size=size)
    started = time.monotonic()
    result = download(spec, build_session(settings), settings, progress=False, policy=FAST)
    return result, time.monotonic() - started


@pytest.fixture
def tree(tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    data = os.urandom(8 * MiB)
    (good / "file.bin").write_bytes(data)
    (bad / "file.bin").write_bytes(os.urandom(len(data)))  # same size, other bytes
    (bad / "short.bin").write_bytes(os.urandom(len(data) - 4096))  # another size
    return good, bad, data


def test_a_mirror_that_starts_fast_and_crawls_mid_file_is_left_for_the_other_with_one_line(tmp_path, tree, capfd):
    good, _bad, data = tree
    # A: 2 MB/s per connection until 1.5 MiB of the file went out, then 40 KB/s for every connection.
    with FileServer(good, rate=2_000_000, crawl=(int(1.5 * MiB), 40_000)) as a, FileServer(good, rate=1_500_000) as b:
        ports = a.port, b.port
        result, seconds = _fetch(tmp_path, [a.url("/file.bin"), b.url("/file.bin")], data)
    assert (tmp_path / "out" / "file.bin").read_bytes() == data
    # Kept on A, the rest would take minutes; left for B it takes seconds.
    assert seconds < 30, seconds
    assert len(result.urls_used) == 2
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if "→" in line]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"127.0.0.1:{ports[0]} ") and f"→ 127.0.0.1:{ports[1]} " in lines[0] and "B/s" in lines[0], lines


def test_the_faster_source_does_more_of_the_file(tmp_path, tree):
    good, _bad, data = tree
    with FileServer(good, rate=300_000) as slow, FileServer(good, rate=3_000_000) as fast:
        _fetch(tmp_path, [slow.url("/file.bin"), fast.url("/file.bin")], data, quiet=True)
        assert fast.bytes_sent("/file.bin") > 2 * slow.bytes_sent("/file.bin")


def test_right_bytes_served_slowly_beat_wrong_bytes_served_fast(tmp_path, tree):
    good, bad, data = tree
    with FileServer(bad) as wrong_fast, FileServer(good, rate=1_000_000) as right_slow:
        result, seconds = _fetch(tmp_path, [wrong_fast.url("/file.bin"), right_slow.url("/file.bin")], data, quiet=True)
    assert (tmp_path / "out" / "file.bin").read_bytes() == data
    assert result.sha256 == sha(data)
    assert seconds < 60


def test_every_source_slow_still_finishes(tmp_path):
    root = tmp_path / "tree"
    root.mkdir()
    data = os.urandom(5 * MiB)
    (root / "file.bin").write_bytes(data)
    with FileServer(root, rate=150_000) as a, FileServer(root, rate=150_000) as b:
        result, _ = _fetch(tmp_path, [a.url("/file.bin"), b.url("/file.bin")], data, quiet=True)
    assert (tmp_path / "out" / "file.bin").read_bytes() == data
    assert len(result.urls_used) == 2  # neither was dropped: nothing faster to go to


def test_a_wrong_size_first_mirror_does_not_make_the_good_ones_look_wrong(tmp_path, tree):
    """Hash known, size not (a wheel from an index): the first source's size was taken as the file's, and
    every good source offering the real size was given up as 'another size'."""
    good, bad, data = tree
    with FileServer(bad) as wrong, FileServer(good) as right1, FileServer(good) as right2:
        result, _ = _fetch(tmp_path, [wrong.url("/short.bin"), right1.url("/file.bin"), right2.url("/file.bin")], data,
                           quiet=True)
    assert (tmp_path / "out" / "file.bin").read_bytes() == data
    assert result.size == len(data)
