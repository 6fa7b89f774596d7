"""A source that answers with the wrong thing is a failed source, and a flaky one still converges:
sha256 mismatches, web pages and 403 challenge pages against real local servers (issue 11 item 5,
issue 13 item 3)."""

from __future__ import annotations

import hashlib
import os

import pytest

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.net.download import download
from sdsetup.net.filespec import FileSpec
from sdsetup.net.retry import RetryPolicy
from sdsetup.net.session import build_session
from sdsetup.net.sidecar import part_path, state_path
from sdsetup.settings import Settings
from tests.servers.fileserver import Fault, FileServer

MiB = 1024 * 1024
FAST = RetryPolicy(tries=6, base=0.05, cap=0.4)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def settings_for(tmp_path, **changes) -> Settings:
    values = dict(cache_dir=tmp_path / "cache", connections=4, timeout=3.0, quiet=True)
    values.update(changes)
    return Settings(**values)


def fetch(tmp_path, urls, name, data, *, settings=None, policy=FAST, **fields):
    settings = settings or settings_for(tmp_path)
    spec = FileSpec(tuple(urls), tmp_path / "out" / name, sha256=sha(data), **fields)
    return download(spec, build_session(settings), settings, progress=False, policy=policy)


@pytest.fixture
def worlds(tmp_path):
    """Two served trees with files of the same names and sizes: `good` the real ones, `bad` others."""
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    files = {}
    for name, size in {"small.bin": 300_000, "big.bin": 6 * MiB}.items():
        files[name] = os.urandom(size)
        (good / name).write_bytes(files[name])
        (bad / name).write_bytes(os.urandom(size))
    return good, bad, files


def assert_clean(dest, data):
    assert dest.read_bytes() == data
    assert not part_path(dest).exists() and not state_path(dest).exists()


@pytest.mark.parametrize("name", ["small.bin", "big.bin"])
def test_a_mirror_with_other_bytes_is_given_up_and_the_next_source_delivers(tmp_path, worlds, name):
    """The mirror first: its bytes fail the sha256, so the canonical source must finish the file (it
    failed with exit 4 while the good source was never tried alone)."""
    good, bad, files = worlds
    with FileServer(bad) as mirror, FileServer(good) as origin:
        result = fetch(tmp_path, [mirror.url(name), origin.url(name)], name, files[name])
    assert result.sha256 == sha(files[name])
    assert_clean(result.path, files[name])


@pytest.mark.parametrize("page", [(200, "<html><body>Please log in</body></html>"),
                                  (403, "<html><title>Just a moment...</title>challenge</html>")])
@pytest.mark.parametrize("known_size", [False, True])
def test_a_web_page_instead_of_the_file_is_a_failed_source(tmp_path, worlds, page, known_size):
    good, _bad, files = worlds
    extra = {"size": len(files["big.bin"])} if known_size else {}
    with FileServer(good) as mirror, FileServer(good) as origin:
        mirror.rule("/big.bin", page=page)
        result = fetch(tmp_path, [mirror.url("big.bin"), origin.url("big.bin")], "big.bin", files["big.bin"], **extra)
        page_gets = [r for r in mirror.requests("/big.bin") if r.method == "GET"]
    assert_clean(result.path, files["big.bin"])
    assert len(page_gets) <= 2, "the page is not fetched over and over"


def test_every_source_wrong_lists_each_source_once_with_its_reason(tmp_path, worlds):
    good, bad, files = worlds
    with FileServer(bad) as mirror, FileServer(good) as pages:
        pages.rule("/small.bin", page=(200, "<html>captcha</html>"))
        urls = [mirror.url("small.bin"), pages.url("small.bin"), mirror.url("small.bin") + "?again"]
        with pytest.raises(SdsetupError) as caught:
            fetch(tmp_path, urls, "small.bin", files["small.bin"])
    error = caught.value
    assert error.exit_code == ExitCode.INTEGRITY
    line = error.message
    assert "\n" not in line and line.count(urls[0] + ":") == 1 and line.count(urls[1] + ":") == 1
    assert "web page" in line and "do not match the sha256" in line
    assert [s["url"] for s in error.details["sources"]] == urls
    dest = tmp_path / "out" / "small.bin"
    assert not dest.exists() and not part_path(dest).exists()


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_a_flaky_source_corrupting_2_percent_of_answers_converges(tmp_path, seed):
    """64 MiB from one source that corrupts 2 % of its answers besides resets, 503s and 429s: the
    bad blocks are found and fetched again; the file is not fetched over and over."""
    root = tmp_path / "site"
    root.mkdir()
    data = os.urandom(64 * MiB)
    (root / "model.bin").write_bytes(data)
    settings = settings_for(tmp_path, connections=16, timeout=5.0)
    with FileServer(root) as fs:
        fs.chaos("/model.bin", probability=0.08, seed=seed, kinds=("reset", "503", "429"), corrupt=0.02)
        result = fetch(tmp_path, [fs.url("model.bin")], "model.bin", data, settings=settings,
                       policy=RetryPolicy(tries=8, base=0.05, cap=0.5))
        sent = fs.bytes_sent("/model.bin")
    assert_clean(result.path, data)
    assert sent < 3 * len(data), f"{sent / MiB:.0f} MiB sent for a 64 MiB file"


def test_two_bad_answers_in_two_copies_cost_two_blocks_not_a_failure(tmp_path, worlds):
    """One corrupt answer in the first copy and one in the second (different places): every byte was
    served right at least once, so the file converges (it failed: two whole-file tries, both hit)."""
    good, _bad, files = worlds
    data = files["big.bin"]
    with FileServer(good) as fs:
        fs.script("/big.bin", None, Fault.corrupt(fraction=0.3), None, None, None, None, None, Fault.corrupt(fraction=0.7))
        result = fetch(tmp_path, [fs.url("big.bin")], "big.bin", data, settings=settings_for(tmp_path, connections=1))
        sent = fs.bytes_sent("/big.bin")
    assert_clean(result.path, data)
    assert sent <= 2 * len(data) + 2 * MiB, "after the second copy only the disputed blocks are fetched again"
