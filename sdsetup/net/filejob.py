"""One file, start to end: already there? a local copy? otherwise probe the sources, decide what
of an earlier run can be kept, run phases of connections (connections.py) until every byte is in
`DEST.part`, verify size and sha256 (fetching once more on a mismatch), move it into place.

The coordinator (the caller's thread) wakes a few times a second: progress, slow sources,
rebalancing connections over sources, periodic sidecar saves, and Ctrl-C.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.fsutil import free_bytes, human_bytes
from sdsetup.net.connections import ConnectionWorker
from sdsetup.net.jobstate import FileState, Phase
from sdsetup.net import failures
from sdsetup.net.filespec import FileSpec
from sdsetup.net.ledger import Ledger, next_step
from sdsetup.net.localcopy import copy_verified, file_url_path, is_file_url
from sdsetup.net.partfile import DiskFull, PartFile
from sdsetup.net.prefixhash import PrefixHasher
from sdsetup.net.probe import Validator, probe, same_version
from sdsetup.net.progress import FileProgress
from sdsetup.net.retry import RetryPolicy
from sdsetup.net.segments import SEGMENT_THRESHOLD, Planner, RangeSet, connections_for
from sdsetup.net.sidecar import ResumeState, load_state, part_path, remove_state, resume_from, save_state, state_path
from sdsetup.net.sources import Source, SourceError, far_slower, readmit, under_floor
from sdsetup.redact import redact_url
from sdsetup.settings import Settings
from sdsetup.i18n import t as _t

log = logging.getLogger("sdsetup.download")

SAVE_INTERVAL = 1.0  # sidecar saved at least this often (seconds) while bytes arrive
TICK = 0.2  # coordinator: progress, slowness checks, periodic saves
MAX_RESTARTS = 3  # "the file changed on the server" restarts within one attempt
HASH_CACHE = "hashes.json"
SILENT_ROUNDS = 2  # probe rounds in which no source answered at all before giving up


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    sha256: str
    size: int
    bytes_transferred: int  # body bytes received in this run
    urls_used: tuple[str, ...]  # sources that supplied bytes (redacted)
    resumed: bool  # bytes from an earlier run were kept
    seconds: float
    cached: bool  # the file was already there, verified; nothing fetched

    def to_json(self) -> dict:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "size": self.size,
            "bytes_transferred": self.bytes_transferred,
            "urls_used": list(self.urls_used),
            "resumed": self.resumed,
            "seconds": round(self.seconds, 3),
            "cached": self.cached,
        }



class _Restart(Exception):
    """The file changed on the server: assemble it again from scratch."""


class FileJob:
    """Fetches one FileSpec to its destination; the caller holds the destination's lock."""

    def __init__(self, spec: FileSpec, dest: Path, expected_sha: str | None, session, settings: Settings, *, show: bool,
                 policy: RetryPolicy, cancel: threading.Event | None, leave_bar: bool) -> None:
        from sdsetup.net.session import probe_timeouts, timeouts

        self.file = FileState(spec, dest, expected_sha, html_ok=dest.name.lower().endswith((".html", ".htm")))
        self.session = session
        self.settings = settings
        self.policy = policy
        self.cancel = cancel or threading.Event()
        self.timeouts = timeouts(settings)
        self.probe_timeouts = probe_timeouts(settings)
        self.part_path = part_path(dest)
        self.state_path = state_path(dest)
        self.save_lock = threading.Lock()
        self.started = time.monotonic()
        self.show = show
        self.leave_bar = leave_bar
        self.bar: FileProgress | None = None
        self.restart_reason: str | None = None
        self.saved_validators: dict[str, Validator] = {}
        self.prober: threading.Thread | None = None
        self.last_save = 0.0
        # (the source left, its rate, when, every source's bytes then): said once the next one is timed
        self.switch_note: tuple[str, float, float, dict[int, int]] | None = None

    # -- the whole file ------------------------------------------------------------------------
    def run(self) -> DownloadResult:
        cached = self._already_there()
        if cached is not None:
            return cached
        file_urls = [u for u in self.file.spec.urls if is_file_url(u)]
        http_urls = [u for u in self.file.spec.urls if not is_file_url(u)]
        local_problems: list[str] = []
        folders: list[str] = []
        for url in file_urls:
            result = self._copy_local(url, local_problems, folders)
            if result is not None:
                return result
        if not http_urls and folders and len(folders) == len(local_problems):
            # Every local source names a folder: the user gave the wrong path, the network is not involved.
            raise failures.file_url_folder_error(folders, self.file.spec.name)
        if not http_urls:
            raise failures.local_copies_error(self.file.spec.name, local_problems)
        from sdsetup.net.heartbeat import Heartbeat

        self.bar = FileProgress(self.show, name=self.file.spec.name, leave=self.leave_bar, host=self._serving_hosts)
        # Without a bar (--json, a non-terminal stderr) a quiet wait still says what it waits for.
        beat = Heartbeat(redact_url(http_urls[0]), status=self._heartbeat_status,
                         enabled=not self.show and not self.settings.quiet)
        try:
            with beat:
                return self._fetch_verified(http_urls)
        finally:
            self.bar.close()

    def _serving_hosts(self) -> str | None:
        """The hosts bytes came from, most first ("a, b"); before any byte, the one being probed."""
        serving = sorted((s for s in self.file.sources if s.bytes), key=lambda s: -s.bytes)
        hosts = list(dict.fromkeys(host_of(s.fetch_url) for s in serving))
        return ", ".join(h for h in hosts if h) or self.file.host

    def _heartbeat_status(self) -> tuple[int | None, str | None]:
        phase = self.file.phase
        return (phase.done.total() if phase is not None else 0), self.file.host

    def _hash_cache(self):
        from sdsetup.hashing import HashCache

        return HashCache(self.settings.cache_dir / HASH_CACHE)

    def _result(self, sha: str, size: int, *, cached: bool, urls: tuple[str, ...] = ()) -> DownloadResult:
        return DownloadResult(self.file.dest, sha, size, self.file.transferred, urls, self.file.resumed_bytes > 0, time.monotonic() - self.started, cached)

    def _already_there(self) -> DownloadResult | None:
        """A file at dest with the right sha256 (or the right size when no sha256 is known) is kept."""
        if not self.file.dest.is_file():
            return None
        size = self.file.dest.stat().st_size
        if self.file.spec.size is not None and size != self.file.spec.size:
            return None
        if self.file.expected_sha is None and self.file.spec.size is None:
            return None  # decided after probing, when the size is known
        try:
            digest, _ = self._hash_cache().sha256(self.file.dest)
        except OSError:
            return None
        if self.file.expected_sha is not None and digest != self.file.expected_sha:
            log.info("%s exists but its sha256 is %s, expected %s: fetching again", self.file.dest, digest, self.file.expected_sha)
            return None
        return self._result(digest, size, cached=True)

    def _copy_local(self, url: str, problems: list[str], folders: list[str]) -> DownloadResult | None:
        try:
            digest, size = copy_verified(url, self.part_path, size=self.file.spec.size)
        except SourceError as exc:
            problems.append(exc.message)
            if exc.kind == "folder":
                folders.append(str(file_url_path(url)))
            return None
        except DiskFull as exc:
            raise self._disk_full_error(exc) from None
        if self.file.expected_sha and digest != self.file.expected_sha:
            problems.append(f"{redact_url(url)}: sha256 {digest}, expected {self.file.expected_sha}")
            _unlink(self.part_path)
            return None
        os.replace(self.part_path, self.file.dest)
        remove_state(self.file.dest)
        self._remember(digest)
        self.file.transferred = size
        return self._result(digest, size, cached=False, urls=(redact_url(url),))

    def _remember(self, digest: str) -> None:
        try:
            self._hash_cache().remember(self.file.dest, digest)
        except OSError:
            pass

    def _fetch_verified(self, urls: list[str]) -> DownloadResult:
        self.file.written = []
        try:
            digest, size = self._assemble(urls)
        except _Cached as cached:
            return cached.result
        if self.file.expected_sha is None or digest == self.file.expected_sha:
            return self._finish(digest, size)
        if self.file.spec.size is None:
            # Known hash, unknown size: the size came from the first source that answered. When that one
            # was wrong, the sources it made look wrong (another size) are the ones to assemble from.
            others = [s.url for s in self.file.all_sources if s.size is not None and s.size != size
                      and (s.reason or "").startswith("offers ")]
            if others:
                wrong = [s.label for s in self.file.all_sources if s.size == size]
                log.warning("%s: sha256 mismatch at %d bytes from %s; assembling again from the sources that offer "
                            "another size", self.file.dest, size, ", ".join(wrong))
                _unlink(self.part_path)
                remove_state(self.file.dest)
                self.file.written = []
                self.file.size = None  # the next first source tells it again
                try:
                    digest, size = self._assemble(others + [u for u in urls if u not in others])
                except _Cached as cached:  # pragma: no cover - the destination was checked before
                    return cached.result
                if digest == self.file.expected_sha:
                    return self._finish(digest, size)
        return self._converge(digest, size)

    def _finish(self, digest: str, size: int) -> DownloadResult:
        if self.file.spec.size is not None and size != self.file.spec.size:  # pragma: no cover - sizes are enforced earlier
            raise SdsetupError(_t("{name}: got {size} bytes, expected {expected}", name=self.file.spec.name, size=size,
                                  expected=self.file.spec.size), None, ExitCode.INTEGRITY)
        used = tuple(s.label for s in self.file.all_sources if s.bytes > 0)
        if self.switch_note is not None:  # the file finished before the next source was timed: its average since
            _label, _rate, when, then = self.switch_note
            seconds = max(1e-3, time.monotonic() - when)
            gained = {s.label: (s.bytes - then.get(id(s), 0)) / seconds for s in self.file.all_sources}
            to = max(gained, key=gained.get) if gained else None
            if to is not None and gained[to] > 0:
                self._say_switch(self.switch_note, to, gained[to])
        os.replace(self.part_path, self.file.dest)
        remove_state(self.file.dest)
        self._remember(digest)
        log.info("%s: done, %d bytes, sha256 %s, from %s", self.file.dest, size, digest, ", ".join(used))
        return self._result(digest, size, cached=False, urls=used)

    # -- after a sha256 mismatch: find the bad blocks (ledger.py) ---------------------------------
    def _converge(self, digest: str, size: int) -> DownloadResult:
        """Repair rounds, one source at a time, each re-fetching only the blocks no second copy
        confirmed; a source that agrees with itself on wrong bytes is given up and the next one
        repairs. Fails (exit 4) only when every source has failed."""
        used = ", ".join(s.label for s in self.file.all_sources if s.bytes > 0)
        log.warning("%s: sha256 mismatch (expected %s, got %s) from %s: looking for the bad blocks", self.file.dest,
                    self.file.expected_sha, digest, used)
        ledger = Ledger.for_size(size)
        self._observe(ledger, complete=True, every_block=True)
        self.file.size = size
        bad_bytes: dict[int, str] = {}
        broken: set[int] = set()  # sources whose repair round failed (network): not asked again
        while True:
            candidates = [s for s in self.file.all_sources if s.index not in bad_bytes and s.index not in broken
                          and s.state != "demoted"]
            # A source given up only for being slow may still have the right bytes: last in line.
            candidates += [s for s in self.file.all_sources if s.index not in bad_bytes and s.index not in broken
                           and s.state == "demoted" and (s.reason or "").startswith("far slower")]
            if not candidates:
                _unlink(self.part_path)  # a copy no source could repair is not worth resuming
                remove_state(self.file.dest)
                raise self._mismatch_error(digest, bad_bytes)
            source = candidates[0]
            self.file.sources = [source]
            if source.state == "new" and (self._probe_source(source) is not None or source.state != "active"):
                source.state = "demoted"
                broken.add(source.index)
                continue
            rounds = 0
            while True:
                step, blocks = next_step(ledger, rounds)
                if step == "self-consistent":
                    bad_bytes[source.index] = f"sends bytes that do not match the sha256 (the file is {digest})"
                    ledger.forget(source.index)
                    break
                if step == "unstable":
                    bad_bytes[source.index] = f"sends different bytes for the same ranges each time ({rounds} repair rounds)"
                    break
                rounds += 1
                log.info("%s: repair round %d from %s: %d block(s) of %s", self.file.dest, rounds, source.label, len(blocks),
                         human_bytes(ledger.block))
                try:
                    digest = self._repair_round(source, ledger, blocks)
                except (SdsetupError, _Restart) as exc:
                    if isinstance(exc, SdsetupError) and exc.exit_code in (ExitCode.DISK, ExitCode.USAGE):
                        raise  # not the source's fault
                    broken.add(source.index)
                    source.state = "demoted"
                    source.reason = source.reason or (exc.message if isinstance(exc, SdsetupError) else str(exc))
                    break
                if digest == self.file.expected_sha:
                    log.info("%s: repaired after %d round(s) from %s", self.file.dest, rounds, source.label)
                    return self._finish(digest, size)

    def _repair_round(self, source: Source, ledger: Ledger, blocks: list[int]) -> str:
        """Fetch `blocks` again from `source` into DEST.part; the whole file's sha256 after it."""
        keep = RangeSet()
        position = 0
        for start, end in ledger.ranges(blocks):
            keep.add(position, start)
            position = end
        keep.add(position, ledger.size)
        done = keep
        self.file.written = []
        self.restart_reason = None
        source.state = "active"
        self.file.part = PartFile(self.part_path)
        complete = False
        try:
            self.file.part.prepare(ledger.size, fresh=False)
            digest, _ = self._fill(done)
            complete = True
            return digest
        except DiskFull as exc:
            raise self._disk_full_error(exc) from None
        finally:
            self.file.part.close()
            self.file.part = None
            self._observe(ledger, complete=complete, every_block=False)

    def _observe(self, ledger: Ledger, *, complete: bool, every_block: bool) -> None:
        """Digest the blocks this pass wrote (or all) into the ledger; a block counts as a copy only
        when this pass wrote all of it and finished."""
        covered: dict[int, RangeSet] = {}
        sources: dict[int, set[int]] = {}
        with self.file.lock:
            written = list(self.file.written)
        for start, end, index in written:
            for block in ledger.blocks_in(start, end):
                lo, hi = ledger.span(block)
                covered.setdefault(block, RangeSet()).add(max(lo, start), min(hi, end))
                sources.setdefault(block, set()).add(index)
        blocks = range(ledger.count()) if every_block else sorted(covered)
        fd = os.open(self.part_path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            for block in blocks:
                lo, hi = ledger.span(block)
                whole = complete and block in covered and covered[block].total() >= hi - lo
                ledger.record(block, _digest_range(fd, lo, hi), frozenset(sources[block]) if whole else None)
        finally:
            os.close(fd)

    def _mismatch_error(self, digest: str, bad_bytes: dict[int, str]) -> SdsetupError:
        from sdsetup.net.failures import source_failures

        reasons = [(s.label, bad_bytes.get(s.index) or s.reason or "not used") for s in self.file.all_sources]
        for label, reason in reasons:
            log.warning("%s: %s", label, reason)
        return source_failures(self.file.spec.name, reasons, expected_sha=self.file.expected_sha, actual_sha=digest, dest=self.file.dest)

    # -- one assembled copy ----------------------------------------------------------------------
    def _assemble(self, urls: list[str]) -> tuple[str, int]:
        """Fetch every byte into DEST.part; returns (sha256, size) of what was assembled."""
        restarts = 0
        while True:
            caps = dict(self.file.spec.source_caps)
            self.file.sources = [Source(url, index, cap=caps.get(url)) for index, url in enumerate(urls)]
            self.file.all_sources = list(self.file.sources)
            try:
                return self._assemble_once()
            except _Restart as restart:
                self.restart_reason = str(restart)
                restarts += 1
                reason = self.restart_reason or "the file changed on the server"
                log.warning("%s: %s; starting over (%d)", self.file.dest, reason, restarts)
                _unlink(self.part_path)
                remove_state(self.file.dest)
                self.file.resumed_bytes = 0
                if restarts >= MAX_RESTARTS:
                    raise failures.keeps_changing_error(self.file.spec.name, reason, restarts) from None

    def _assemble_once(self) -> tuple[str, int]:
        self.file.resumed_bytes = 0
        self.prober = None
        saved = load_state(self.state_path)
        self.saved_validators = dict(saved.validators) if saved else {}
        if self.file.spec.size is not None:  # told the size: no need to ask a server whether it fits
            self.file.size = self.file.spec.size
            self._check_free_space(RangeSet(saved.done.clipped(self.file.size)) if saved and saved.size == self.file.size else RangeSet())
        primary = self._probe_first(saved)
        self.file.size = self.file.spec.size if self.file.spec.size is not None else primary.size
        if self.file.expected_sha is None and self.file.spec.size is None and self.file.size is not None and self.file.dest.is_file():
            if self.file.dest.stat().st_size == self.file.size:  # nothing else to check against: the size agrees
                try:
                    digest, _ = self._hash_cache().sha256(self.file.dest)
                    return_cached = self._result(digest, self.file.size, cached=True)
                except OSError:
                    return_cached = None
                if return_cached is not None:
                    raise _Cached(return_cached)
        part_size = self.part_path.stat().st_size if self.part_path.is_file() else None
        done, why = resume_from(
            saved,
            size=self.file.size,
            sha256=self.file.expected_sha,
            part_size=part_size,
            validators_now={primary.label: Validator(primary.etag, primary.last_modified)},
        )
        if done.total() and not primary.ranges:
            done, why = RangeSet(), f"{primary.label} does not support ranges"
        log.info("%s: %s (size %s, %s)", self.file.dest, why, self.file.size, "ranges" if primary.ranges else "no ranges")
        self.file.resumed_bytes = done.total()
        self._check_free_space(done)
        self.file.part = PartFile(self.part_path)
        try:
            try:
                self.file.part.prepare(self.file.size, fresh=done.total() == 0)
            except DiskFull as exc:
                raise self._disk_full_error(exc) from None
            self._start_prober()
            return self._fill(done)
        finally:
            self.file.part.close()
            self.file.part = None

    def _fill(self, done: RangeSet) -> tuple[str, int]:
        """Run phases until every byte is in DEST.part: (sha256, size) of the whole file."""
        streams = 0
        while True:
            outcome = self._run_phase(done)
            if outcome == "stream":
                streams += 1
                if streams > self.policy.tries:
                    raise self._no_source_error()
                log.info("%s: no source serves ranges; one stream from the start", self.file.dest)
                done = RangeSet()
                self.file.resumed_bytes = 0
                self.file.part.prepare(self.file.size, fresh=True)
                continue
            return outcome

    def _check_free_space(self, done: RangeSet) -> None:
        if self.file.size is None:
            return
        held = 0
        if done.total() and self.part_path.is_file():
            held = getattr(self.part_path.stat(), "st_blocks", 0) * 512
        needed = max(0, self.file.size - held)
        free = free_bytes(self.file.dest.parent)
        if free is not None and needed > free:
            raise failures.not_enough_space_error(self.file.spec.name, needed, free, self.file.dest.parent)

    def _disk_full_error(self, exc: DiskFull) -> SdsetupError:
        return failures.disk_full_error(exc.path, self.file.dest.parent, free_bytes(self.file.dest.parent))

    # -- sources ---------------------------------------------------------------------------------
    def _probe_source(self, source: Source) -> SourceError | None:
        """Probe one source and activate it when it agrees with the file being assembled."""
        self.file.host = host_of(source.url)
        try:
            found = probe(self.session, source.url, self.probe_timeouts, html_ok=self.file.html_ok)
        except SourceError as exc:
            proxy = self._proxy(source)
            if proxy and "proxy" not in exc.message:
                exc.message = f"{exc.message} (through the proxy {redact_url(proxy)})"
            with self.file.lock:
                source.reason = exc.message
                if exc.kind != "retry":
                    source.state = "demoted"
            log.info("%s: probe failed: %s", source.label, exc.message)
            return exc
        with self.file.lock:
            expected = self.file.spec.size if self.file.spec.size is not None else self.file.size
            validator = found.validator
            saved = self.saved_validators.get(source.label)
            if expected is not None and found.size is not None and found.size != expected:
                source.state = "demoted"
                source.reason = f"offers {found.size} bytes, expected {expected}"
                source.size = found.size
            elif saved is not None and self.file.resumed_bytes and _changed(saved, validator):
                source.state = "demoted"
                source.reason = "has another version of the file than the earlier part"
            else:
                source.final_url = found.final_url if found.final_url != source.url else None
                source.size = found.size
                source.ranges = found.ranges
                source.etag, source.last_modified = validator.etag, validator.last_modified
                source.state = "active"
                source.reason = None
            log.info("%s: %s", source.label, source.reason or f"probed by {found.method}: size {found.size}, ranges {found.ranges}")
            self.file.lock.notify_all()
        return None

    def _probe_first(self, saved: ResumeState | None) -> Source:
        """Probe sources in order until one answers (retrying the ones that may come back).

        A small file of known size with nothing to resume skips the probe: its one GET tells as much
        (one round trip less per wheel on a slow link); a failing first source is demoted as usual."""
        if self.file.spec.size is not None and self.file.spec.size < SEGMENT_THRESHOLD and saved is None:
            first = self.file.sources[0]
            with self.file.lock:
                first.state, first.size, first.ranges = "active", self.file.spec.size, False
            return first
        pending = list(self.file.sources)
        silent_rounds = 0
        for round_number in range(1, self.policy.tries + 1):
            retry_later: list[Source] = []
            waits: list[float] = []
            errors: list[SourceError] = []
            for source in pending:
                error = self._probe_source(source)
                if source.state == "active":
                    return source
                if error is not None:
                    errors.append(error)
                if error is not None and error.kind == "retry":
                    retry_later.append(source)
                    if error.retry_after is not None:
                        waits.append(error.retry_after)
            if not retry_later:
                break
            if errors and all(e.timed_out or "proxy failed" in e.message for e in errors):
                proxies = {self._proxy(s) for s in pending}
                if len(proxies) == 1 and None not in proxies:
                    # Every source, through the same proxy, and no answer: the proxy is the cause.
                    from sdsetup.net.failures import proxy_error

                    raise proxy_error(self.file.spec.name, redact_url(proxies.pop()), [(s.label, s.reason or "") for s in pending],
                                      seconds=self.probe_timeouts[1])
                silent_rounds += 1
                if silent_rounds >= SILENT_ROUNDS:
                    break  # no source has answered at all, twice: not worth minutes more
            pending = retry_later
            if round_number < self.policy.tries:
                self._sleep(self.policy.delay(round_number, max(waits) if waits else None))
        raise self._no_source_error()

    def _proxy(self, source: Source) -> str | None:
        from sdsetup.net.session import proxy_for

        try:
            return proxy_for(self.session, source.url)
        except Exception:  # pragma: no cover - an odd environment proxy setting must not break a download
            return None

    def _start_prober(self) -> None:
        """Probe the other sources in the background; each one that agrees joins in."""
        rest = [s for s in self.file.sources if s.state == "new"]
        if not rest:
            return

        def probe_rest() -> None:
            pending = rest
            for round_number in range(1, 4):
                retry = [s for s in pending if self._probe_source(s) is not None and s.state == "new"]
                if not retry or self.cancel.is_set():
                    break
                pending = retry
                time.sleep(self.policy.delay(round_number))
            with self.file.lock:
                for source in rest:
                    if source.state == "new":
                        source.state = "demoted"
                self.file.lock.notify_all()

        self.prober = threading.Thread(target=probe_rest, name=f"probe {self.file.dest.name}", daemon=True)
        self.prober.start()

    def _no_source_error(self) -> SdsetupError:
        from sdsetup.net.failures import no_source_error

        reasons = [(s.label, s.reason) for s in self.file.all_sources if s.reason]
        done = self.file.phase.done.total() if self.file.phase is not None else 0
        for label, reason in reasons:
            log.warning("%s: %s", label, reason)
        return no_source_error(self.file.spec.name, reasons, kept_bytes=done)

    # -- one phase of connections ----------------------------------------------------------------
    def _run_phase(self, done: RangeSet):
        usable_ranges = any(s.state == "active" and s.ranges for s in self.file.sources)
        remaining = None if self.file.size is None else self.file.size - done.total()
        wanted = self.settings.connections
        if self.file.spec.max_connections:
            wanted = max(1, min(wanted, self.file.spec.max_connections))
        connections = connections_for(self.file.size, remaining, wanted, usable_ranges)
        hasher = PrefixHasher(self.part_path, done.prefix_end())
        phase = Phase(Planner(self.file.size, done, connections, ranges=usable_ranges), done, hasher, connections)
        self.file.phase = phase
        self.bar.start(self.file.size, done.total())
        log.info("%s: %d connection(s), %s to fetch", self.file.dest, connections, human_bytes(remaining) if remaining is not None else "unknown size")
        self._save(force=True)
        try:
            while True:
                self._keep_workers(phase)
                with self.file.lock:
                    self.file.lock.wait(TICK)
                if self.cancel.is_set():
                    raise KeyboardInterrupt
                self.bar.update(phase.done.total())
                self._check_slow()
                self._rebalance(phase)
                if phase.failure is not None:
                    raise phase.failure
                if phase.restart_reason is not None:
                    raise _Restart(phase.restart_reason)
                if phase.want_stream:
                    self._stop_phase(phase)
                    hasher.stop()
                    return "stream"
                if self._complete(phase):
                    self._stop_phase(phase)
                    self._save(force=True)
                    self.bar.update(self.file.size)
                    return hasher.result(self.file.size), self.file.size
                if not any(w.is_alive() for w in phase.workers) and not self._work_possible(phase):
                    raise self._no_source_error()
                if time.monotonic() - self.last_save >= SAVE_INTERVAL and self.file.dirty:
                    self._save()
        except BaseException:
            self._stop_phase(phase)
            hasher.stop()
            if self.file.size is not None:
                self._save(force=True)
            raise

    def _complete(self, phase: Phase) -> bool:
        with self.file.lock:
            if self.file.size is None:
                if phase.eof_at is None or phase.writing:
                    return False
                self.file.size = phase.eof_at
            return phase.done.covers(self.file.size) and phase.writing == 0

    def _work_possible(self, phase: Phase) -> bool:
        """Could new connections make progress? (A source may still join, or come out of cooldown.)"""
        with self.file.lock:
            if any(s.state == "active" for s in self.file.sources):
                return True
            return self.prober is not None and self.prober.is_alive()

    def _keep_workers(self, phase: Phase) -> None:
        with self.file.lock:
            phase.workers = [w for w in phase.workers if w.is_alive()]
            has_work = bool(phase.planner.pending) or phase.planner.steal_possible()
            usable = any(s.state == "active" for s in self.file.sources)
            missing = phase.connections - len(phase.workers)
        if phase.stopped or not usable or missing <= 0 or not has_work:
            return
        for _ in range(missing):
            connection = ConnectionWorker(self.file, self.session, self.policy, self.timeouts, save=self._save,
                                          disk_full=self._disk_full_error)
            worker = threading.Thread(target=connection.run, args=(phase,), name=f"dl {self.file.dest.name}", daemon=True)
            phase.workers.append(worker)
            worker.start()

    def _stop_phase(self, phase: Phase) -> None:
        with self.file.lock:
            phase.stopped = True
            phase.stop_event.set()
            while phase.writing:
                self.file.lock.wait(0.05)

    def _check_slow(self) -> None:
        """Drop a source far slower than the best (or crawling under the floor while another could serve),
        its ranges continuing from the others; try one given up long ago once more; say a switch in one line."""
        now = time.monotonic()
        with self.file.lock:
            for source in self.file.sources:
                source.sample(now)
            slow = {id(s): (s, "far") for s in far_slower(self.file.sources, now)}
            slow.update({id(s): (s, "floor") for s in under_floor(self.file.sources, now) if id(s) not in slow})
            for source, why in slow.values():
                rate, _ = source.rate(now)
                wall = source.wall_rate(now) or rate
                source.state = "demoted"
                source.demoted_at = now
                source.reason = (f"far slower than the other sources ({human_bytes(rate)}/s per connection)" if why == "far"
                                 else f"far slower than the other sources ({human_bytes(wall)}/s, under the floor)")
                log.info("%s: %s", source.label, source.reason)
                if self.switch_note is None:
                    self.switch_note = (source.label, wall, now, {id(s): s.bytes for s in self.file.all_sources})
            for source in readmit(self.file.sources, now):
                source.state, source.readmitted, source.reason = "active", True, None
                source.samples.clear()
                log.info("%s: tried again after %.0f s", source.label, now - (source.demoted_at or now))
                self.file.lock.notify_all()
            note = self.switch_note
            best = max((s for s in self.file.sources if s.state == "active" and s.sampled_for(now) >= 1.0),
                       key=lambda s: s.wall_rate(now), default=None)
        if note is not None and best is not None and best.wall_rate(now) > 0:
            self._say_switch(note, best.label, best.wall_rate(now))

    def _say_switch(self, note: tuple, to_label: str, to_rate: float) -> None:
        """'pypi.org 98 KB/s → mirrors.aliyun.com 11 MB/s': one line, on stderr and in the log."""
        from sdsetup.net.decide import human_rate

        self.switch_note = None
        line = _t("{slow_host} {slow_rate} → {fast_host} {fast_rate}", slow_host=host_of(note[0]) or note[0],
                  slow_rate=human_rate(note[1]), fast_host=host_of(to_label) or to_label, fast_rate=human_rate(to_rate))
        log.info("%s: %s", self.file.dest.name, line)
        if not self.settings.quiet:
            if self.bar is not None:
                self.bar.write(line)
            else:  # pragma: no cover - the bar always exists while sources switch
                import sys

                sys.stderr.write(line + "\n")

    def _rebalance(self, phase: Phase) -> None:
        """Spread connections over the active sources (one move per tick, so counts settle): a
        source that joined late gets connections, and so gets measured."""
        with self.file.lock:
            active = [s for s in self.file.sources if s.state == "active" and s.ranges]
            if len(active) < 2:
                return
            busiest = max(active, key=lambda s: len(s.open_since))
            idlest = min(active, key=lambda s: len(s.open_since))
            if len(busiest.open_since) - len(idlest.open_since) < 2:
                return
            candidates = [t for t in phase.planner.active if t.source is busiest and not t.move]
            if candidates:
                max(candidates, key=lambda t: t.remaining).move = True

    def _sleep(self, seconds: float, event: threading.Event | None = None) -> None:
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if self.cancel.wait(min(left, TICK)):
                raise KeyboardInterrupt
            if event is not None and event.is_set():
                return

    # -- sidecar -------------------------------------------------------------------------------
    def _save(self, force: bool = False) -> None:
        phase = self.file.phase
        if phase is None or self.file.size is None:
            return
        with self.save_lock:
            with self.file.lock:
                if phase.stopped and not force:
                    return
                state = ResumeState(
                    size=self.file.size,
                    sha256=self.file.expected_sha,
                    urls=[s.label for s in self.file.sources],
                    validators={s.label: Validator(s.etag, s.last_modified) for s in self.file.sources if s.state == "active" or s.bytes},
                    done=RangeSet(phase.done),
                )
                self.file.dirty = False
                self.last_save = time.monotonic()
            try:
                save_state(self.state_path, state)
            except OSError as exc:
                log.warning("could not save %s: %s", self.state_path, exc)


class _Cached(Exception):
    def __init__(self, result: DownloadResult) -> None:
        super().__init__("cached")
        self.result = result


def _changed(old: Validator, new: Validator) -> bool:
    return same_version(old, new) is False


def host_of(url: str) -> str | None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if not parts.hostname:
        return None
    return parts.hostname + (f":{parts.port}" if parts.port else "")


def _digest_range(fd: int, start: int, end: int) -> str:
    import hashlib

    from sdsetup.net.partfile import read_at

    digest = hashlib.sha256()
    position = start
    while position < end:
        data = read_at(fd, position, min(4 * 1024 * 1024, end - position))
        if not data:
            break
        digest.update(data)
        position += len(data)
    return digest.hexdigest()


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
