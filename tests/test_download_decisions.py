"""The download engine's pure decisions, by table: ranges, planning and stealing, retries, validators,
what an answer means, whether a partial file may be resumed, which source gets the next request."""

from __future__ import annotations

import random

import pytest

from sdsetup.errors import ExitCode

from sdsetup.net.probe import Validator, etag_opaque, judge, parse_content_range, same_version
from sdsetup.net.retry import RetryPolicy, backoff_delay, classify_status, parse_retry_after
from sdsetup.net.segments import MIN_SEGMENT, MIN_STEAL, MiB, Planner, RangeSet, block_size, connections_for
from sdsetup.net.sidecar import ResumeState, load_state, resume_from, save_state
from sdsetup.net.sources import Source, SourceError, far_slower, pick_source


# -- ranges ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "adds, merged",
    [
        ([(0, 10), (10, 20)], [[0, 20]]),  # touching ranges merge
        ([(10, 20), (0, 5)], [[0, 5], [10, 20]]),
        ([(0, 5), (10, 20), (4, 11)], [[0, 20]]),  # a bridge merges three
        ([(5, 5)], []),  # empty ignored
        ([(0, 100), (20, 30)], [[0, 100]]),  # contained
    ],
)
def test_rangeset_merges(adds, merged):
    ranges = RangeSet()
    for start, end in adds:
        ranges.add(start, end)
    assert ranges.to_json() == merged


def test_rangeset_missing_prefix_and_total():
    ranges = RangeSet([(0, 10), (20, 30)])
    assert ranges.missing(40) == [(10, 20), (30, 40)]
    assert ranges.prefix_end() == 10
    assert ranges.total() == 20
    assert not ranges.covers(30)
    ranges.add(10, 40)
    assert ranges.covers(40) and ranges.missing(40) == []
    assert RangeSet([(5, 10)]).prefix_end() == 0


# -- planning ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "size, remaining, wanted, ranges, expected",
    [
        (100 * MiB, None, 8, True, 8),
        (100 * MiB, None, 8, False, 1),  # no ranges: one stream
        (3 * MiB, None, 8, True, 1),  # small file: one stream
        (None, None, 8, True, 1),  # unknown size
        (100 * MiB, 2 * MiB, 8, True, 2),  # resuming with little left: at least 1 MiB per connection
    ],
)
def test_connections_for(size, remaining, wanted, ranges, expected):
    assert connections_for(size, remaining, wanted, ranges) == expected


def test_planner_hands_out_blocks_in_file_order_then_steals_the_back_half():
    size = 16 * MiB
    planner = Planner(size, RangeSet(), connections=2)
    assert planner.block == block_size(size, 2) == 2 * MiB
    tasks = []
    while planner.pending:
        tasks.append(planner.next_task())
    assert [(t.pos, t.end) for t in tasks] == [(i * 2 * MiB, (i + 1) * 2 * MiB) for i in range(8)]
    for task in tasks[:-1]:  # all but the last are finished
        planner.claim(task, task.remaining)
        planner.release(task)
    last = tasks[-1]
    planner.claim(last, 512 * 1024)  # the slow connection got 512 KiB of its 2 MiB
    stolen = planner.next_task()
    assert stolen is not None and stolen.end == size and last.end == stolen.pos
    assert stolen.pos - last.pos >= MIN_STEAL and stolen.remaining >= MIN_STEAL
    # What the first connection had not claimed is cut off; nothing overlaps, nothing is lost.
    assert last.pos + last.remaining == stolen.pos


def test_planner_skips_what_is_done_and_requeues_what_a_broken_connection_left():
    done = RangeSet([(0, 3 * MiB)])
    planner = Planner(8 * MiB, done, connections=1)
    task = planner.next_task()
    assert task.pos == 3 * MiB
    planner.claim(task, 100)
    planner.release(task)  # the connection broke after 100 bytes
    again = planner.next_task()
    assert again.pos == 3 * MiB + 100


def test_planner_does_not_steal_tiny_rests():
    planner = Planner(8 * MiB, RangeSet([(0, 8 * MiB - MIN_SEGMENT)]), connections=1)
    task = planner.next_task()
    planner.claim(task, MIN_SEGMENT - MIN_STEAL)
    assert planner.next_task() is None


# -- retries -----------------------------------------------------------------------------------------
def test_backoff_grows_with_jitter_and_honours_retry_after():
    policy = RetryPolicy(base=1.0, cap=8.0)
    rng = random.Random(1)
    for failures, (low, high) in {1: (0.5, 1.0), 2: (1.0, 2.0), 3: (2.0, 4.0), 10: (4.0, 8.0)}.items():
        delays = [backoff_delay(failures, policy, rng=rng) for _ in range(50)]
        assert all(low <= d <= high for d in delays)
        assert len(set(delays)) > 1  # jitter
    assert backoff_delay(1, policy, retry_after=5, rng=rng) == 5
    assert backoff_delay(1, RetryPolicy(max_retry_after=10), retry_after=3600, rng=rng) == 10


@pytest.mark.parametrize(
    "value, expected",
    [("1", 1.0), (" 120 ", 120.0), ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0), ("soon", None), (None, None)],
)
def test_parse_retry_after(value, expected):
    from email.utils import parsedate_to_datetime

    now = parsedate_to_datetime("Wed, 21 Oct 2015 07:28:00 GMT").timestamp()
    assert parse_retry_after(value, now=now) == expected


@pytest.mark.parametrize("status, kind", [(200, "ok"), (206, "ok"), (503, "retry"), (429, "retry"), (404, "gone"), (403, "gone"), (400, "fail")])
def test_classify_status(status, kind):
    assert classify_status(status) == kind


# -- validators --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "etag, opaque",
    [('W/"abc"', '"abc"'), ('"abc"', '"abc"'), ('W/"W/x"', '"W/x"'), ("Wx", "Wx"), ('"/W"', '"/W"')],
)
def test_weak_etag_prefix_is_a_prefix_not_characters(etag, opaque):
    assert etag_opaque(etag) == opaque


def test_if_range_uses_a_strong_etag_else_last_modified():
    assert Validator('"a"', "Mon").if_range() == '"a"'
    assert Validator('W/"a"', "Mon").if_range() == "Mon"  # a weak ETag may not be used in If-Range
    assert Validator('W/"a"', None).if_range() is None
    assert Validator(None, None).if_range() is None


@pytest.mark.parametrize(
    "old, new, expected",
    [
        (Validator('"a"'), Validator('"a"'), True),
        (Validator('"a"'), Validator('W/"a"'), True),
        (Validator('"a"'), Validator('"b"'), False),
        (Validator(None, "Mon"), Validator(None, "Tue"), False),
        (Validator('"a"', "Mon"), Validator(None, "Mon"), True),
        (Validator(None, None), Validator('"a"'), None),
    ],
)
def test_same_version(old, new, expected):
    assert same_version(old, new) is expected


@pytest.mark.parametrize(
    "value, parsed",
    [("bytes 0-99/1000", (0, 99, 1000)), ("bytes 5-5/*", (5, 5, None)), ("bytes 9-3/10", None), ("items 0-1/2", None), (None, None)],
)
def test_parse_content_range(value, parsed):
    assert parse_content_range(value) == parsed


# One table of answers to `GET Range: bytes=100-199` of a 1000-byte file with ETag "v1".
KNOWN = Validator('"v1"', "Mon, 01 Jan 2024 00:00:00 GMT")


@pytest.mark.parametrize(
    "status, headers, ranged, outcome",
    [
        (206, {"Content-Range": "bytes 100-199/1000", "ETag": '"v1"'}, True, ("write", 100, 200)),
        (206, {"Content-Range": "bytes 100-149/1000"}, True, ("write", 100, 150)),  # shorter: ask again
        (206, {"Content-Range": "bytes 0-199/1000", "ETag": '"v1"'}, True, "norange"),  # wrong start
        (206, {"Content-Range": "bytes 100-199/2000"}, True, "size"),  # another size
        (206, {"Content-Range": "bytes 100-199/1000", "ETag": '"v2"'}, True, "changed"),
        (200, {"Content-Length": "1000", "ETag": '"v1"'}, True, "norange"),  # Range ignored
        (200, {"Content-Length": "1000", "ETag": '"v2"'}, True, "changed"),  # If-Range failed: new file
        (200, {"Content-Length": "1000"}, False, ("write", 0, 1000)),
        (200, {"Content-Length": "999"}, False, "size"),
        (416, {"Content-Range": "bytes */50"}, True, "changed"),
        (503, {"Retry-After": "2"}, True, "retry"),
        (429, {}, True, "retry"),
        (404, {}, True, "gone"),
        (400, {}, True, "fail"),
    ],
)
def test_judge_answers_to_a_ranged_request(status, headers, ranged, outcome):
    start = 100 if ranged else 0
    if isinstance(outcome, tuple):
        verdict = judge(status, headers, start=start, end=200, ranged=ranged, size=1000, known=KNOWN)
        assert ("write", verdict.start, verdict.body_end) == outcome
    else:
        with pytest.raises(SourceError) as caught:
            judge(status, headers, start=start, end=200, ranged=ranged, size=1000, known=KNOWN)
        assert caught.value.kind == outcome
        if status == 503:
            assert caught.value.retry_after == 2.0


def test_judge_accepts_a_whole_file_answer_to_a_range_from_zero():
    verdict = judge(200, {"Content-Length": "1000"}, start=0, end=500, ranged=True, size=1000, known=Validator())
    assert verdict.no_range and verdict.start == 0


# -- resume ------------------------------------------------------------------------------------------
URL = "https://mirror.example/f.bin"


def _state(**changes):
    values = dict(size=1000, sha256=None, urls=[URL], validators={URL: Validator('"v1"')}, done=RangeSet([(0, 400)]))
    values.update(changes)
    return ResumeState(**values)


@pytest.mark.parametrize(
    "state, kwargs, kept, reason",
    [
        (None, {}, 0, "no earlier"),
        (_state(), {}, 400, "resumed"),
        (_state(), {"validators_now": {URL: Validator('"v2"')}}, 0, "changed"),
        (_state(), {"size": 2000, "part_size": 2000}, 0, "size changed"),
        (_state(), {"part_size": None}, 0, ".part file"),
        (_state(sha256="a" * 64), {"sha256": "b" * 64}, 0, "sha256 changed"),
        # another mirror than last time: only with a sha256 to check the mix
        (_state(), {"validators_now": {"https://other.example/f.bin": Validator('"x"')}}, 0, "no source in common"),
        (_state(sha256="a" * 64), {"sha256": "a" * 64, "validators_now": {"https://other.example/f.bin": Validator()}}, 400, "resumed"),
        (_state(validators={URL: Validator()}), {"validators_now": {URL: Validator()}}, 400, "resumed"),  # no validator at all
    ],
)
def test_resume_decision(state, kwargs, kept, reason):
    args = dict(size=1000, sha256=None, part_size=1000, validators_now={URL: Validator('"v1"')})
    args.update(kwargs)
    done, why = resume_from(state, **args)
    assert done.total() == kept
    assert reason in why


def test_sidecar_round_trip_and_damage(tmp_path):
    path = tmp_path / "f.bin.part.json"
    save_state(path, _state(sha256="c" * 64))
    loaded = load_state(path)
    assert loaded.done == RangeSet([(0, 400)]) and loaded.validators[URL] == Validator('"v1"') and loaded.sha256 == "c" * 64
    path.write_text("{not json")
    assert load_state(path) is None
    path.write_text('{"format": "other"}')
    assert load_state(path) is None


# -- sources -----------------------------------------------------------------------------------------
def _source(index, **changes):
    source = Source(f"https://m{index}.example/f", index, state="active", ranges=True)
    for key, value in changes.items():
        setattr(source, key, value)
    return source


def test_pick_source_spreads_connections_and_respects_cooldown():
    a, b = _source(0), _source(1)
    assert pick_source([a, b], 10.0, need_ranges=True) is a
    a.open_since = {1: 9.0}
    assert pick_source([a, b], 10.0, need_ranges=True) is b  # fewest open requests
    b.cooldown_until = 12.0
    assert pick_source([a, b], 10.0, need_ranges=True) is a  # b is cooling down after a Retry-After
    a.cooldown_until = 11.0
    assert pick_source([a, b], 10.0, need_ranges=True) == pytest.approx(1.0)  # wait
    assert pick_source([_source(0, ranges=False)], 10.0, need_ranges=True) is None
    assert pick_source([_source(0, state="demoted")], 10.0, need_ranges=False) is None


def test_far_slower_demotes_only_a_much_slower_measured_source():
    fast = _source(0, bytes=50 * MiB, busy_seconds=5.0)  # 10 MiB/s per connection
    slow = _source(1, bytes=256 * 1024, busy_seconds=4.0)  # 64 KiB/s
    close = _source(2, bytes=20 * MiB, busy_seconds=5.0)  # 4 MiB/s: slower, not far slower
    young = _source(3, bytes=0, busy_seconds=0.2)  # not measured long enough
    assert far_slower([fast, slow, close, young], 100.0) == [slow]
    assert far_slower([slow], 100.0) == []  # never the last one


# -- after a sha256 mismatch: which blocks to fetch again (ledger.py) --------------------------------
from sdsetup.net.ledger import Ledger, ledger_block, next_step  # noqa: E402


@pytest.mark.parametrize("size, block", [(1, 1 * MiB), (64 * MiB, 1 * MiB), (4 * 1024 * MiB, 4 * MiB), (3 * 1024 * MiB + 5, 3 * MiB + 64 * 1024)])
def test_ledger_block_size(size, block):
    assert ledger_block(size) == block


def _ledger(copies: list[list[tuple[str, set[int]]]], current: list[str]) -> Ledger:
    ledger = Ledger(size=len(current) * MiB, block=MiB)
    for copy in copies:
        for index, (digest, sources) in enumerate(copy):
            ledger.record(index, digest, frozenset(sources))
    for index, digest in enumerate(current):
        ledger.current[index] = digest
    return ledger


@pytest.mark.parametrize(
    "copies, current, rounds, step",
    [
        ([[("a", {0}), ("b", {0})]], ["a", "b"], 0, ("repair", [0, 1])),  # one copy: nothing confirmed
        ([[("a", {0}), ("b", {0})], [("a", {0}), ("x", {0})]], ["a", "x"], 1, ("repair", [1])),  # block 1 disputed
        ([[("a", {0}), ("b", {0})], [("a", {0}), ("x", {0})], [("a", {0}), ("b", {0})]], ["a", "b"], 2, ("self-consistent", [])),
        ([[("a", {0})], [("b", {0})], [("c", {0})]], ["c"], 6, ("unstable", [])),
    ],
)
def test_next_repair_step(copies, current, rounds, step):
    assert next_step(_ledger(copies, current), rounds) == step


def test_a_source_given_up_stops_counting_even_in_mixed_copies():
    ledger = _ledger([[("bad", {0}), ("good", {0, 1})], [("bad", {0}), ("good", {1})]], ["bad", "good"])
    assert ledger.unsettled() == []
    ledger.forget(0)
    assert ledger.unsettled() == [0, 1]  # block 1's second vote came from a mixed copy with source 0
    assert ledger.ranges([0, 1]) == [(0, 2 * MiB)]


def test_a_half_rewritten_block_is_state_not_evidence():
    ledger = _ledger([[("a", {0})], [("a", {0})]], ["a"])
    ledger.record(0, "torn", None)
    assert ledger.unsettled() == [0] and ledger.votes(0) == 0


# -- the errors of a failed download (failures.py) ---------------------------------------------------
from sdsetup.net.failures import no_source_error, source_failures, summarize  # noqa: E402


@pytest.mark.parametrize(
    "reasons, exit_code, must, must_not",
    [
        ([("https://m/x", "HTTP 404 Not Found"), ("https://o/x", "connection reset (8 tries in a row)")], ExitCode.NETWORK,
         ["https://m/x: HTTP 404", "https://o/x: connection reset", "--mirror cn"], ["proxy did not answer"]),
        ([("https://m/x", "the proxy failed (connection refused)"), ("https://o/x", "the proxy failed (no answer in time (timed out))")],
         ExitCode.NETWORK, ["the proxy failed"], []),
        ([("https://m/x", "offers 5 bytes, expected 9"), ("https://o/x", "offers 7 bytes, expected 9")], ExitCode.INTEGRITY,
         ["no source offers the expected size"], []),
        ([(f"https://m{i}/x", "HTTP 503 Service Unavailable") for i in range(6)] + [("https://m0/x", "second reason")], ExitCode.NETWORK,
         ["https://m0/x: HTTP 503", "and 3 more source(s)"], ["https://m4/x", "second reason"]),
        ([("https://m/x", "x" * 1000)], ExitCode.NETWORK, ["…"], ["x" * 200]),
    ],
)
def test_no_source_error_table(reasons, exit_code, must, must_not):
    error = no_source_error("model.bin", reasons)
    text = f"{error.message}\n{error.hint}"
    assert error.exit_code == exit_code and "\n" not in error.message
    for piece in must:
        assert piece in text
    for piece in must_not:
        assert piece not in text
    assert len({d["url"] for d in error.details["sources"]}) == len(error.details["sources"]) == len({u for u, _ in reasons})


def test_proxy_hint_only_when_every_source_failed_at_the_proxy():
    error = no_source_error("m", [("https://a/x", "the proxy failed (connection refused)")])
    assert "proxy did not answer" in error.hint
    assert "proxy did not answer" not in no_source_error("m", [("https://a/x", "the proxy failed (refused)"), ("https://b/x", "HTTP 404")]).hint


def test_mismatch_error_names_both_hashes_and_every_source(tmp_path):
    error = source_failures("m.bin", [("https://a/m.bin", "sends bytes that do not match the sha256"), ("https://b/m.bin", "HTTP 403 Forbidden")],
                            expected_sha="e" * 64, actual_sha="a" * 64, dest=tmp_path / "m.bin")
    assert error.exit_code == ExitCode.INTEGRITY
    assert "e" * 64 in error.message and "a" * 64 in error.message
    assert "https://a/m.bin: sends bytes" in error.message and "https://b/m.bin: HTTP 403" in error.message
    assert summarize([("u", "r"), ("u", "s")]) == "u: r"


from pathlib import Path  # noqa: E402

from sdsetup.net import failures  # noqa: E402


@pytest.mark.parametrize(
    "error, code, pieces",
    [
        (failures.file_url_folder_error(["/srv/models"], "m.bin"), ExitCode.USAGE, ["/srv/models: a file:// URL must name a file", "file:///srv/models/m.bin"]),
        (failures.local_copies_error("m.bin", ["/b/m.bin: sha256 aa, expected bb"]), ExitCode.INTEGRITY, ["none of the local copies of m.bin", "bundle verify"]),
        (failures.local_copies_error("m.bin", ["/b/m.bin: not found"]), ExitCode.NETWORK, ["/b/m.bin: not found"]),
        (failures.keeps_changing_error("m.bin", "the file changed on the server", 3), ExitCode.NETWORK, ["3 times in a row", "try again later"]),
        (failures.not_enough_space_error("m.bin", 3 * MiB, MiB, Path("/data")), ExitCode.DISK, ["needs 3.0 MiB more, 1.0 MiB free in /data", "free up space"]),
        (failures.disk_full_error(Path("/data/m.bin.part"), Path("/data"), None), ExitCode.DISK, ["filled up while writing /data/m.bin.part (unknown free", "is kept"]),
        (failures.proxy_error("m.bin", "http://p:3128", [("https://a/m.bin", "no answer in time (timed out)")], seconds=10), ExitCode.NETWORK,
         ["the proxy http://p:3128 did not answer for any source of m.bin (no answer in 10 s", "run without it"]),
    ],
)
def test_error_builders(error, code, pieces):
    assert error.exit_code == code and error.hint and "\n" not in error.message
    text = f"{error.message} | {error.hint}"
    for piece in pieces:
        assert piece in text, text
