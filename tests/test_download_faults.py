"""The engine against a real fault-injecting server: each fault ends in the right file or a clear error,
never a wrong file at the destination. Requests the server saw (Range, If-Range) are asserted."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.net.download import download
from sdsetup.net.filespec import FileSpec
from sdsetup.net.retry import RetryPolicy
from sdsetup.net.session import build_session
from sdsetup.net.sidecar import load_state, part_path, state_path
from sdsetup.settings import Settings
from tests.servers.fileserver import Fault, FileServer

MiB = 1024 * 1024
FAST = RetryPolicy(tries=4, base=0.05, cap=0.4)


@pytest.fixture
def site(tmp_path):
    """A served directory with a few random files: name -> bytes."""
    root = tmp_path / "site"
    root.mkdir()
    files = {}
    for name, size in {"small.bin": 300_000, "big.bin": 6 * MiB}.items():
        data = os.urandom(size)
        (root / name).write_bytes(data)
        files[name] = data
    return root, files


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def settings_for(tmp_path, **changes) -> Settings:
    values = dict(cache_dir=tmp_path / "cache", connections=4, timeout=2.0, quiet=True)
    values.update(changes)
    return Settings(**values)


def fetch(tmp_path, urls, name, data=None, *, settings=None, policy=FAST, **spec_fields):
    settings = settings or settings_for(tmp_path)
    dest = tmp_path / "out" / name
    spec = FileSpec(tuple(urls), dest, sha256=sha(data) if data is not None else spec_fields.pop("sha256", None), **spec_fields)
    return download(spec, build_session(settings), settings, progress=False, policy=policy)


def gets(fs, path):
    return [r for r in fs.requests(path) if r.method == "GET"]


def assert_clean(dest: Path, data: bytes):
    assert dest.read_bytes() == data
    assert not part_path(dest).exists() and not state_path(dest).exists()
    assert not dest.with_name(dest.name + ".lock").exists()


# -- the happy paths -----------------------------------------------------------------------------------
def test_small_file_is_one_plain_get(tmp_path, site):
    root, files = site
    with FileServer(root) as fs:
        result = fetch(tmp_path, [fs.url("small.bin")], "small.bin", files["small.bin"])
        assert [(r.range, r.status) for r in gets(fs, "/small.bin")] == [(None, 200)]
    assert_clean(result.path, files["small.bin"])
    assert (result.size, result.cached, result.resumed, result.bytes_transferred) == (300_000, False, False, 300_000)


def test_large_file_is_fetched_in_ranges_over_several_connections(tmp_path, site):
    root, files = site
    with FileServer(root, rate=4 * MiB) as fs:
        result = fetch(tmp_path, [fs.url("big.bin")], "big.bin", files["big.bin"])
        ranged = [r for r in gets(fs, "/big.bin") if r.range]
        clients = {r.client for r in ranged}
        sent = fs.bytes_sent("/big.bin")
    assert_clean(result.path, files["big.bin"])
    assert len(clients) >= 3, "several connections at once"
    assert all(r.status == 206 and r.if_range for r in ranged)
    assert sent < len(files["big.bin"]) * 1.1, "no byte range fetched twice (beyond a steal's cut-off)"


def test_file_already_there_is_not_fetched_again(tmp_path, site):
    root, files = site
    with FileServer(root) as fs:
        fetch(tmp_path, [fs.url("small.bin")], "small.bin", files["small.bin"])
        fs.reset_log()
        again = fetch(tmp_path, [fs.url("small.bin")], "small.bin", files["small.bin"])
        assert again.cached and fs.requests() == []
        # Without a hash, the size decides (told, or learnt from the server).
        by_size = fetch(tmp_path, [fs.url("small.bin")], "small.bin", size=300_000)
        assert by_size.cached and by_size.sha256 == sha(files["small.bin"]) and fs.requests() == []
        probed = fetch(tmp_path, [fs.url("small.bin")], "small.bin")
        assert probed.cached and gets(fs, "/small.bin") == []


def test_a_wrong_file_at_the_destination_is_replaced(tmp_path, site):
    root, files = site
    dest = tmp_path / "out" / "small.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"something else")
    with FileServer(root) as fs:
        result = fetch(tmp_path, [fs.url("small.bin")], "small.bin", files["small.bin"])
    assert not result.cached
    assert_clean(dest, files["small.bin"])


# -- faults, one table -------------------------------------------------------------------------------
# (script for the GETs, expected (Range, If-Range present, status) of the GETs, extra check)
SIZE = 300_000
CASES = {
    "reset mid-body resumes with Range + If-Range": (
        [Fault.reset(after=100_000)],
        [(None, False, 200), ("bytes=100000-299999", True, 206)],
    ),
    "503 burst": (
        [Fault.status(503), Fault.status(503), Fault.status(503)],
        [(None, False, 503)] * 3 + [(None, False, 200)],
    ),
    "range ignored once is asked again": (
        [Fault.reset(after=100_000), Fault.ignore_range()],
        [(None, False, 200), ("bytes=100000-299999", True, 200), ("bytes=100000-299999", True, 206)],
    ),
    "range ignored twice: one stream from zero": (
        [Fault.reset(after=100_000), Fault.ignore_range(), Fault.ignore_range()],
        [(None, False, 200)] + [("bytes=100000-299999", True, 200)] * 2 + [(None, False, 200)],
    ),
    "wrong Content-Range start is never written": (
        [Fault.reset(after=100_000), Fault.wrong_start(4096)],
        [(None, False, 200), ("bytes=100000-299999", True, 206), ("bytes=100000-299999", True, 206)],
    ),
    "wrong Content-Range start twice: one stream from zero": (
        [Fault.reset(after=100_000), Fault.wrong_start(4096), Fault.wrong_start(4096)],
        [(None, False, 200)] + [("bytes=100000-299999", True, 206)] * 2 + [(None, False, 200)],
    ),
    "corrupted byte is caught and fetched once more": (
        [Fault.corrupt(at=1234)],
        [(None, False, 200), (None, False, 200)],
    ),
    "404 once is a gone source; a redirect is followed": (
        [Fault.redirect("/small.bin")],
        [(None, False, 302), (None, False, 200)],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fault_table(tmp_path, site, case):
    root, files = site
    script, expected = CASES[case]
    with FileServer(root) as fs:
        fs.script("/small.bin", *script)
        result = fetch(tmp_path, [fs.url("small.bin")], "small.bin", files["small.bin"])
        seen = [(r.range, r.if_range is not None, r.status) for r in gets(fs, "/small.bin")]
    assert seen == expected
    assert_clean(result.path, files["small.bin"])


def test_429_retry_after_is_waited_for(tmp_path, site):
    root, files = site
    with FileServer(root) as fs:
        fs.script("/small.bin", Fault.status(429, retry_after=1))
        fetch(tmp_path, [fs.url("small.bin")], "small.bin", files["small.bin"])
        first, second = gets(fs, "/small.bin")
    assert (first.status, second.status) == (429, 200)
    assert second.started - first.started >= 1.0


def test_stalled_connection_is_dropped_and_its_range_fetched_again(tmp_path, site):
    root, files = site
    settings = settings_for(tmp_path, timeout=0.5)
    with FileServer(root) as fs:
        fs.script("/small.bin", Fault.stall(after=50_000, seconds=30))
        began = time.monotonic()
        result = fetch(tmp_path, [fs.url("small.bin")], "small.bin", files["small.bin"], settings=settings)
        took = time.monotonic() - began
        ranges = [r.range for r in gets(fs, "/small.bin")]
    assert took < 5
    assert ranges[0] is None and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-299999"
    assert_clean(result.path, files["small.bin"])


def test_mirror_that_always_corrupts_fails_with_both_hashes_and_no_file(tmp_path, site):
    root, files = site
    dest = tmp_path / "out" / "small.bin"
    with FileServer(root) as fs:
        fs.always("/small.bin", Fault.corrupt(at=77))
        with pytest.raises(SdsetupError) as caught:
            fetch(tmp_path, [fs.url("small.bin")], "small.bin", files["small.bin"])
        assert len(gets(fs, "/small.bin")) == 2  # fetched once more, then gave up
    bad = bytearray(files["small.bin"])
    bad[77] ^= 0xFF
    error = caught.value
    assert error.exit_code == ExitCode.INTEGRITY
    assert sha(files["small.bin"]) in error.message and sha(bytes(bad)) in error.message
    assert not dest.exists() and not part_path(dest).exists()


def test_file_replaced_on_the_server_during_the_download_restarts(tmp_path, site):
    import threading

    root, files = site
    new = os.urandom(SIZE)
    with FileServer(root) as fs:
        fs.script("/small.bin", Fault.reset(after=100_000))

        def replace_while_the_first_answer_breaks():
            while fs.bytes_sent("/small.bin") < 100_000:
                time.sleep(0.002)
            (root / "small.bin").write_bytes(new)
            os.utime(root / "small.bin", ns=(1, 2_000_000_000))

        thread = threading.Thread(target=replace_while_the_first_answer_breaks)
        thread.start()
        result = fetch(tmp_path, [fs.url("small.bin")], "small.bin")
        thread.join()
        seen = [(r.range, r.status) for r in gets(fs, "/small.bin")]
    # The resume's If-Range no longer matches: the server sends the whole new file (200), the
    # engine starts over instead of appending new bytes to old ones.
    assert seen[:2] == [(None, 200), ("bytes=100000-299999", 200)]
    assert_clean(result.path, new)


def test_file_replaced_between_two_runs_is_fetched_from_scratch(tmp_path, site):
    root, files = site
    dest = tmp_path / "out" / "small.bin"
    with FileServer(root) as fs:
        fs.script("/small.bin", Fault.reset(after=120_000))
        fs.rule("/small.bin", status=None)
        # First run: a reset, then the source is gone (404) -> a NETWORK error, the part is kept.
        fs.script("/small.bin", Fault.not_found(), Fault.not_found(), Fault.not_found(), Fault.not_found())
        with pytest.raises(SdsetupError) as caught:
            fetch(tmp_path, [fs.url("small.bin")], "small.bin")
        assert caught.value.exit_code == ExitCode.NETWORK
        assert part_path(dest).exists() and load_state(state_path(dest)).done.total() == 120_000
        new = os.urandom(SIZE)
        (root / "small.bin").write_bytes(new)
        os.utime(root / "small.bin", ns=(1, 3_000_000_000))
        fs.reset_log()
        fs.clear("/small.bin")
        result = fetch(tmp_path, [fs.url("small.bin")], "small.bin")
        assert [r.range for r in gets(fs, "/small.bin")] == [None], "a new ETag: no Range, start over"
    assert not result.resumed
    assert_clean(dest, new)


def test_resume_across_runs_fetches_only_the_missing_bytes(tmp_path, site):
    root, files = site
    data = files["big.bin"]
    dest = tmp_path / "out" / "big.bin"
    with FileServer(root, rate=3 * MiB) as fs:
        fs.rule("/big.bin", status=None)

        import threading

        def cut_off():  # the server goes away after ~2 MiB
            while fs.bytes_sent("/big.bin") < 2 * MiB:
                time.sleep(0.01)
            fs.rule("/big.bin", status=404)

        thread = threading.Thread(target=cut_off)
        thread.start()
        with pytest.raises(SdsetupError):
            fetch(tmp_path, [fs.url("big.bin")], "big.bin", data)
        thread.join()
        kept = load_state(state_path(dest)).done.total()
        assert kept >= 1 * MiB
        fs.rule("/big.bin", status=None)
        fs.reset_log()
        result = fetch(tmp_path, [fs.url("big.bin")], "big.bin", data)
        again = fs.bytes_sent("/big.bin")
        ranged = gets(fs, "/big.bin")
    assert result.resumed
    assert all(r.range and r.if_range for r in ranged)
    assert again <= len(data) - kept + 256 * 1024
    assert_clean(dest, data)


# -- several sources -----------------------------------------------------------------------------
def test_404_mirror_is_demoted_and_the_next_one_used(tmp_path, site):
    root, files = site
    with FileServer(root) as good, FileServer(tmp_path / "out-of-site-does-not-exist") as empty:
        result = fetch(tmp_path, [empty.url("big.bin"), good.url("big.bin")], "big.bin", files["big.bin"])
        assert [r.status for r in empty.requests("/big.bin")] == [404]
        assert result.urls_used == (good.url("big.bin"),)
    assert_clean(result.path, files["big.bin"])


def test_mirror_with_another_size_is_not_used(tmp_path, site):
    root, files = site
    other = tmp_path / "other"
    other.mkdir()
    (other / "big.bin").write_bytes(files["big.bin"][:-1])
    with FileServer(root) as good, FileServer(other) as short:
        result = fetch(tmp_path, [short.url("big.bin"), good.url("big.bin")], "big.bin", size=len(files["big.bin"]))
        assert gets(short, "/big.bin") == []
    assert_clean(result.path, files["big.bin"])


@pytest.mark.parametrize("fast_latency", [0.0, 0.3], ids=["together", "fast-one-answers-late"])
def test_slow_mirror_next_to_a_fast_one(tmp_path, site, fast_latency):
    root, files = site
    # With latency the fast mirror joins after every connection is busy on the slow one: connections
    # must move over to it.
    with FileServer(root, rate=64 * 1024) as slow, FileServer(root, delay=fast_latency) as fast:
        began = time.monotonic()
        result = fetch(tmp_path, [slow.url("big.bin"), fast.url("big.bin")], "big.bin", files["big.bin"])
        took = time.monotonic() - began
        slow_bytes = slow.bytes_sent("/big.bin")
    # All of it from the slow one would take 6 MiB / (4 x 64 KiB/s) = 24 s.
    assert took < 8
    assert slow_bytes < len(files["big.bin"]) / 4
    assert_clean(result.path, files["big.bin"])


def test_dead_mirror_plus_flaky_one_arrives_verified(tmp_path, site):
    root, files = site
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/big.bin"
    settings = settings_for(tmp_path, timeout=1.0)
    with FileServer(root, rate=8 * MiB) as flaky:
        flaky.chaos("/big.bin", probability=0.35, seed=7)
        result = fetch(tmp_path, [dead, flaky.url("big.bin")], "big.bin", files["big.bin"], settings=settings,
                       policy=RetryPolicy(tries=10, base=0.05, cap=0.5))
        faults = [r.fault for r in flaky.requests("/big.bin") if r.fault]
    assert len(faults) >= 3, "the chaos actually happened"
    assert result.sha256 == sha(files["big.bin"])
    assert_clean(result.path, files["big.bin"])


def test_redirect_to_a_cdn_fetches_ranges_from_the_cdn(tmp_path, site):
    root, files = site
    with FileServer(root) as cdn, FileServer(tmp_path) as hub:
        hub.rule("/org/model/resolve/main/big.bin", redirect=cdn.url("big.bin"))
        result = fetch(tmp_path, [hub.url("org/model/resolve/main/big.bin")], "big.bin", files["big.bin"])
        hub_gets = gets(hub, "/org/model/resolve/main/big.bin")
        cdn_ranged = [r for r in gets(cdn, "/big.bin") if r.range]
    assert len(hub_gets) == 0, "segments go to the redirect target, not through the hub each time"
    assert len(cdn_ranged) >= 3
    assert_clean(result.path, files["big.bin"])


# -- server quirks -----------------------------------------------------------------------------------
def test_head_refused_probes_with_a_one_byte_get(tmp_path, site):
    root, files = site
    with FileServer(root, head=False) as fs:
        result = fetch(tmp_path, [fs.url("big.bin")], "big.bin", files["big.bin"])
        first_get = gets(fs, "/big.bin")[0]
    assert first_get.range == "bytes=0-0" and first_get.status == 206
    assert_clean(result.path, files["big.bin"])


def test_weak_etag_is_not_sent_in_if_range(tmp_path, site):
    root, files = site
    with FileServer(root, weak_etag=True) as fs:
        fs.script("/small.bin", Fault.reset(after=100_000))
        result = fetch(tmp_path, [fs.url("small.bin")], "small.bin", files["small.bin"])
        resumed = gets(fs, "/small.bin")[1]
    assert resumed.status == 206 and resumed.if_range and not resumed.if_range.startswith(("W/", '"'))  # a date
    assert_clean(result.path, files["small.bin"])


def test_server_without_ranges_is_one_stream_restarted_after_a_reset(tmp_path, site):
    root, files = site
    with FileServer(root, ranges=False) as fs:
        fs.script("/big.bin", None, Fault.reset(after=1 * MiB))  # the first GET is the 0-0 probe
        result = fetch(tmp_path, [fs.url("big.bin")], "big.bin", files["big.bin"])
        seen = [(r.range, r.status) for r in gets(fs, "/big.bin")]
    assert [s for s in seen if s[0] != "bytes=0-0"] == [(None, 200), (None, 200)]
    assert_clean(result.path, files["big.bin"])


def test_unknown_size_chunked_stream(tmp_path, site):
    root, files = site
    with FileServer(root, chunked=True, ranges=False) as fs:
        result = fetch(tmp_path, [fs.url("small.bin")], "small.bin", files["small.bin"])
    assert result.size == SIZE
    assert_clean(result.path, files["small.bin"])


def test_expected_size_no_source_has_is_an_integrity_error(tmp_path, site):
    root, files = site
    with FileServer(root) as fs:
        with pytest.raises(SdsetupError) as caught:
            fetch(tmp_path, [fs.url("small.bin")], "small.bin", size=SIZE + 1)
    assert caught.value.exit_code == ExitCode.INTEGRITY and str(SIZE) in caught.value.message


def test_told_size_larger_than_the_free_space_fails_before_any_request(tmp_path, site):
    root, files = site
    with FileServer(root) as fs:
        with pytest.raises(SdsetupError) as caught:
            fetch(tmp_path, [fs.url("small.bin")], "small.bin", size=1 << 60)
        assert fs.requests() == []
    assert caught.value.exit_code == ExitCode.DISK
    assert not (tmp_path / "out" / "small.bin").exists()


def test_free_space_check_names_needed_and_free(tmp_path, site):
    root, files = site
    big = root / "sparse.bin"
    with open(big, "wb") as handle:  # a sparse file larger than the disk's free space
        from sdsetup.fsutil import free_bytes

        handle.truncate(free_bytes(tmp_path) + 10 * 1024**3)
    with FileServer(root) as fs:
        with pytest.raises(SdsetupError) as caught:
            fetch(tmp_path, [fs.url("sparse.bin")], "sparse.bin")
        assert gets(fs, "/sparse.bin") == []
    error = caught.value
    assert error.exit_code == ExitCode.DISK
    assert "needs" in error.message and "free" in error.message
    assert error.details["needed_bytes"] > error.details["free_bytes"]


# -- file:// and many files -----------------------------------------------------------------------
def test_file_url_is_copied_and_verified(tmp_path, site):
    root, files = site
    result = fetch(tmp_path, [(root / "small.bin").as_uri()], "small.bin", files["small.bin"])
    assert_clean(result.path, files["small.bin"])
    with pytest.raises(SdsetupError) as caught:
        fetch(tmp_path, [(root / "big.bin").as_uri()], "other.bin", files["small.bin"])
    assert caught.value.exit_code == ExitCode.INTEGRITY and not (tmp_path / "out" / "other.bin").exists()


def test_missing_local_copy_falls_back_to_the_network(tmp_path, site):
    root, files = site
    with FileServer(root) as fs:
        result = fetch(tmp_path, [(root / "missing.bin").as_uri(), fs.url("small.bin")], "small.bin", files["small.bin"])
        assert result.urls_used == (fs.url("small.bin"),)
    assert_clean(result.path, files["small.bin"])


def test_download_many_keeps_order_and_raises_the_first_error_after_the_others(tmp_path, site):
    from sdsetup.net.download import download_many

    root, files = site
    settings = settings_for(tmp_path)
    with FileServer(root) as fs:
        specs = [
            FileSpec((fs.url("big.bin"),), tmp_path / "many" / "big.bin", sha256=sha(files["big.bin"])),
            FileSpec((fs.url("small.bin"),), tmp_path / "many" / "small.bin", sha256=sha(files["small.bin"])),
            FileSpec((fs.url("small.bin"),), tmp_path / "many" / "small.bin", sha256=sha(files["small.bin"])),
        ]
        results = download_many(specs, build_session(settings), settings, parallel=2, progress=False, policy=FAST)
        assert [r.path.name for r in results] == ["big.bin", "small.bin", "small.bin"]
        assert len(gets(fs, "/small.bin")) == 1, "one destination listed twice is fetched once"
        bad = [FileSpec((fs.url("nope.bin"),), tmp_path / "many" / "nope.bin"), FileSpec((fs.url("small.bin"),), tmp_path / "many2" / "small.bin")]
        with pytest.raises(SdsetupError) as caught:
            download_many(bad, build_session(settings), settings, parallel=2, progress=False, policy=FAST)
    assert caught.value.exit_code == ExitCode.NETWORK and "nope.bin" in caught.value.message
    assert (tmp_path / "many2" / "small.bin").read_bytes() == files["small.bin"]


def test_progress_bar_goes_to_stderr_only_when_asked(tmp_path, site, capsys):
    root, files = site
    settings = settings_for(tmp_path)
    with FileServer(root) as fs:
        spec = FileSpec((fs.url("big.bin"),), tmp_path / "bar" / "big.bin", sha256=sha(files["big.bin"]))
        download(spec, build_session(settings), settings, progress=True, policy=FAST)
        shown = capsys.readouterr()
        quiet = FileSpec((fs.url("big.bin"),), tmp_path / "quiet" / "big.bin", sha256=sha(files["big.bin"]))
        download(quiet, build_session(settings), settings, progress=False, policy=FAST)
        silent = capsys.readouterr()
    assert "big.bin" in shown.err and "100%" in shown.err and "6.00M" in shown.err
    assert shown.out == "" and silent.out == "" and silent.err == ""


def test_server_without_validators_resumes_without_if_range(tmp_path, site):
    root, files = site
    with FileServer(root, etag=False, last_modified=False) as fs:
        fs.script("/small.bin", Fault.reset(after=100_000))
        result = fetch(tmp_path, [fs.url("small.bin")], "small.bin", files["small.bin"])
        seen = [(r.range, r.if_range, r.status) for r in gets(fs, "/small.bin")]
    assert seen == [(None, None, 200), ("bytes=100000-299999", None, 206)]
    assert_clean(result.path, files["small.bin"])


def test_positional_writes_without_pwrite(tmp_path, site, monkeypatch):
    """Windows has no os.pwrite/pwritev: the lock + seek + write path assembles the same file."""
    from sdsetup.net import partfile

    monkeypatch.setattr(partfile, "_HAS_PWRITE", False)
    monkeypatch.delattr(os, "pwritev", raising=False)
    root, files = site
    with FileServer(root, rate=8 * MiB) as fs:
        result = fetch(tmp_path, [fs.url("big.bin")], "big.bin", files["big.bin"])
        assert len({r.client for r in gets(fs, "/big.bin")}) >= 3
    assert_clean(result.path, files["big.bin"])


@pytest.mark.parametrize("proxy", ["http://127.0.0.1:1", "socks5h://127.0.0.1:1"])
def test_a_dead_proxy_is_named_as_the_proxy(tmp_path, site, proxy):
    """A helpdesk reading 'connection refused' for the file's URL checks the wrong machine."""
    root, files = site
    with FileServer(root) as fs:
        settings = settings_for(tmp_path, proxy=proxy)
        with pytest.raises(SdsetupError) as info:
            fetch(tmp_path, [fs.url("small.bin")], "small.bin", files["small.bin"], settings=settings,
                  policy=RetryPolicy(tries=1, base=0.01, cap=0.01))
    assert info.value.exit_code == ExitCode.NETWORK
    assert "proxy" in info.value.message and "refused" in info.value.message
