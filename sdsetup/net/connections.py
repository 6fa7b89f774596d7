"""The connection side of a file download: one thread per connection, each taking a task (a byte
range) from the planner, choosing a source, sending `GET` with `Range` + `If-Range`, judging the
answer (probe.judge) and writing what arrives at its offset in `DEST.part`.

Per connection: retries with backoff (the failure count resets when bytes arrive), Retry-After as a
cooldown of the source, a stall (no byte within settings.timeout) is a failure like a reset, a
source's failures demote it, and the task goes back to the planner for the others.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time

from typing import Callable

from sdsetup.net.jobstate import FileState, Phase
from sdsetup.net.partfile import DiskFull
from sdsetup.net.probe import Validator, describe_exception, judge
from sdsetup.net.segments import MiB, Task
from sdsetup.net.sources import RANGE_FAILURES, Source, SourceError, pick_source

log = logging.getLogger("sdsetup.download")

SAVE_EVERY = 1 * MiB  # sidecar saved after this many new bytes on one connection
READ_MIN = 64 * 1024  # read size where urllib3 has no read1
READ_MAX = 1 * MiB  # the most one read may return
BATCH = 1 * MiB  # bytes written per lock round / pwritev ...
MAX_PIECES = 256  # ... or this many reads ...
FLUSH_INTERVAL = 0.1  # ... or this many seconds, whichever comes first

_request_ids = itertools.count(1)


def _host(url: str) -> str | None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return None if not parts.hostname else parts.hostname + (f":{parts.port}" if parts.port else "")


class Stop(Exception):
    """The phase was stopped (restart, failure elsewhere, Ctrl-C): leave quietly."""


class ConnectionWorker:
    """One connection thread of a file's download: takes tasks from the phase's planner and writes
    what arrives into the file's part file. Everything it shares with the coordinator and the other
    workers is in the `FileState` record (guarded by its lock); the rest is its own."""

    def __init__(self, file: FileState, session, policy, timeouts, *, save: Callable[[], None],
                 disk_full: Callable[[DiskFull], BaseException]) -> None:
        self.file = file
        self.session = session
        self.policy = policy
        self.timeouts = timeouts
        self._save = save  # the coordinator's sidecar save (throttled there)
        self._disk_full_error = disk_full

    def run(self, phase: Phase) -> None:
        self._worker(phase)

    def _worker(self, phase: Phase) -> None:
        failures: dict[int, int] = {}
        try:
            while not phase.stopped:
                with self.file.lock:
                    task = phase.planner.next_task()
                if task is None:
                    return
                try:
                    keep_going = self._work(phase, task, failures)
                finally:
                    with self.file.lock:
                        phase.planner.release(task)
                        self.file.lock.notify_all()
                if not keep_going:
                    return
        except Stop:
            return
        except DiskFull as exc:
            with self.file.lock:
                if phase.failure is None:
                    phase.failure = self._disk_full_error(exc)
        except BaseException as exc:  # a bug: surface it in the coordinator, not as a silent thread death
            with self.file.lock:
                if phase.failure is None:
                    phase.failure = exc
        finally:
            with self.file.lock:
                self.file.lock.notify_all()

    def _work(self, phase: Phase, task: Task, failures: dict[int, int]) -> bool:
        """Fetch the task; False when this connection should end (no usable source, restart)."""
        while task.remaining > 0 and not phase.stopped:
            whole = task.pos == 0 and (self.file.size is None or task.end >= self.file.size)
            with self.file.lock:
                choice = pick_source(self.file.sources, time.monotonic(), need_ranges=not whole)
                if choice is None:
                    active = [s for s in self.file.sources if s.state == "active"]
                    if active and not whole and not any(s.ranges for s in active):
                        phase.want_stream = True
                    return False
            if isinstance(choice, float):
                self._wait(phase, min(choice, 1.0))
                continue
            source = choice
            try:
                self._request(phase, task, source, whole, failures)
            except SourceError as exc:
                if exc.kind == "size" and self.file.spec.size is not None:
                    # The expected size is given: this source holds another file; the rest carry on.
                    with self.file.lock:
                        source.state = "demoted"
                        source.reason = f"offers {exc.offered} bytes, expected {self.file.spec.size}"
                    log.info("%s: %s", source.label, source.reason)
                    continue
                if exc.kind in ("changed", "size"):
                    with self.file.lock:
                        phase.restart_reason = exc.message
                    return False
                if exc.kind == "demoted":
                    continue
                self._failed(source, exc, failures)
                if exc.kind == "norange" and not source.ranges_served:
                    continue  # ask again at once (or, after two, go on without ranges)
                count = failures.get(id(source), 0)
                self._wait(phase, self.policy.delay(max(1, count), exc.retry_after))
        return True

    def _wait(self, phase: Phase, seconds: float) -> None:
        if phase.stop_event.wait(seconds):
            raise Stop

    def _failed(self, source: Source, exc: SourceError, failures: dict[int, int]) -> None:
        count = failures.get(id(source), 0) + 1
        failures[id(source)] = count
        with self.file.lock:
            source.reason = exc.message
            if exc.kind == "norange":
                source.range_failures += 1
                if source.range_failures >= RANGE_FAILURES and not source.ranges_served:
                    source.ranges = False
                elif source.ranges_served and count >= self.policy.tries:
                    source.state = "demoted"  # served ranges before: now a broken source, not a range-less one
                    source.reason = f"{exc.message} ({count} tries in a row)"
            elif exc.kind in ("gone", "fail"):
                source.state = "demoted"
            elif exc.retry_after is not None and exc.retry_after > self.policy.max_retry_after:
                source.state = "demoted"
                source.reason = f"{exc.message} (asks to wait {exc.retry_after:.0f} s)"
            elif count >= self.policy.tries:
                source.state = "demoted"
                source.reason = f"{exc.message} ({count} tries in a row)"
            if exc.retry_after is not None:
                source.cooldown_until = max(source.cooldown_until, time.monotonic() + exc.retry_after)
            self.file.lock.notify_all()
        log.info("%s: %s%s", source.label, exc.message, " (given up)" if source.state == "demoted" else "")

    def _request(self, phase: Phase, task: Task, source: Source, whole: bool, failures: dict[int, int]) -> None:
        import requests

        headers = {}
        if not whole:
            last = "" if self.file.size is None else str(task.end - 1)
            headers["Range"] = f"bytes={task.pos}-{last}"
            if_range = Validator(source.etag, source.last_modified).if_range()
            if if_range:
                headers["If-Range"] = if_range
        request_id = next(_request_ids)
        log.debug("%s: GET %s from %s", self.file.dest.name, headers.get("Range", "whole file"), source.label)
        with self.file.lock:
            source.open_since[request_id] = time.monotonic()
            task.source = source
        self.file.host = _host(source.fetch_url)
        try:
            try:
                response = self.session.get(source.fetch_url, headers=headers, stream=True, timeout=self.timeouts, allow_redirects=True)
            except requests.RequestException as exc:
                raise SourceError("retry", f"{describe_exception(exc)}") from None
            with response:
                try:
                    verdict = judge(
                        response.status_code,
                        response.headers,
                        start=task.pos,
                        end=task.end,
                        ranged=not whole,
                        size=self.file.size,
                        known=Validator(source.etag, source.last_modified),
                        html_ok=self.file.html_ok,
                    )
                except SourceError as exc:
                    if exc.kind in ("gone", "fail") and source.final_url:
                        # A redirect target (signed CDN link) may have expired: follow the redirect again.
                        source.final_url = None
                        raise SourceError("retry", exc.message + " (following the redirect again)", status=exc.status) from None
                    raise
                with self.file.lock:
                    if verdict.no_range:
                        source.range_failures += 1
                        if source.range_failures >= RANGE_FAILURES and not source.ranges_served:
                            source.ranges = False
                    elif not whole:
                        source.range_failures = 0
                        source.ranges_served = True
                self._stream(phase, task, source, response, verdict.body_end, failures)
        finally:
            with self.file.lock:
                task.source = None
                started = source.open_since.pop(request_id, None)
                if started is not None:
                    source.busy_seconds += time.monotonic() - started

    def _stream(self, phase: Phase, task: Task, source: Source, response, body_end: int | None, failures: dict[int, int]) -> None:
        """Read what the socket has (read1) and write it in batches (one lock round and one pwritev
        per batch, so the per-chunk loop stays cheap); what arrived before a break is still written."""
        raw = response.raw
        read1 = getattr(raw, "read1", None)  # urllib3 >= 2
        pieces: list[bytes] = []
        pending = 0
        unsaved = 0
        flushed_at = time.monotonic()
        while True:
            if phase.stopped:
                raise Stop
            if source.state != "active" or task.move:
                self._flush(phase, task, source, pieces, failures)
                task.move = False
                raise SourceError("demoted", "given up" if source.state != "active" else "moved to a less busy source")
            # Never read past the task's end (it shrinks when another connection steals the back half).
            want = max(1, min(READ_MAX, task.end - task.pos - pending))
            try:
                data = read1(want, decode_content=False) if read1 else raw.read(min(want, READ_MIN), decode_content=False)
            except Exception as exc:  # urllib3/socket errors: reset, timeout (a stall), truncated body
                self._flush(phase, task, source, pieces, failures)
                raise SourceError("retry", describe_exception(exc)) from None
            now = time.monotonic()
            if data:
                pieces.append(data)
                pending += len(data)
                task.received = pending
                if pending < min(BATCH, task.end - task.pos) and len(pieces) < MAX_PIECES and now - flushed_at < FLUSH_INTERVAL:
                    continue
            written, finished = self._flush(phase, task, source, pieces, failures)
            pieces, pending, flushed_at = [], 0, now
            unsaved += written
            if unsaved >= SAVE_EVERY:
                self._save()
                unsaved = 0
            if finished:
                return
            if not data:
                if self.file.size is None:
                    with self.file.lock:
                        phase.eof_at = task.pos
                        task.end = task.pos
                        self.file.lock.notify_all()
                    return
                if body_end is not None and task.pos >= min(body_end, task.end):
                    return  # the server sent a shorter range than asked: ask again for the rest
                raise SourceError("retry", "the connection closed before the end of the data")

    def _flush(self, phase: Phase, task: Task, source: Source, pieces: list[bytes], failures: dict[int, int]) -> tuple[int, bool]:
        """Write `pieces` at the task's position: (bytes written, whether the task is finished)."""
        total = sum(len(p) for p in pieces)
        if not total:
            return 0, task.pos >= task.end
        with self.file.lock:
            if phase.stopped:
                raise Stop
            offset, take = phase.planner.claim(task, total)
            task.received = 0
            phase.writing += 1
        try:
            if take:
                self.file.part.write_pieces(offset, pieces, take)
        finally:
            with self.file.lock:
                phase.writing -= 1
                if take:
                    phase.done.add(offset, offset + take)
                    phase.hasher.advance(phase.done.prefix_end())
                    source.bytes += take
                    self.file.transferred += take
                    self.file.written.append((offset, offset + take, source.index))
                    self.file.dirty = True
                    failures[id(source)] = 0
                if phase.stopped and not phase.writing:
                    self.file.lock.notify_all()  # _stop_phase waits for the last write
        return take, take < total or task.pos >= task.end
