"""The download engine: every byte sdsetup brings in goes through `download` / `download_many`.

One file = an ordered list of source URLs (mirrors first, canonical last), optional sha256 and size,
a destination. The engine:
- probes a source (HEAD, or GET bytes=0-0) for size, range support and validator;
- fetches with N connections (settings.connections) into a preallocated `DEST.part`, blocks handed out
  in file order, idle connections stealing the back half of the largest range still in flight; one
  stream when ranges are not supported or the file is small;
- records the ranges done in `DEST.part.json` (see sidecar.py) at least every MiB per connection and
  resumes from it on the next run with Range + If-Range, restarting whatever could mix two versions;
- retries per connection (exponential backoff with jitter, Retry-After honoured, budget reset when
  bytes arrive), drops a connection that stalls for settings.timeout and re-queues its range;
- uses every source that agrees on the size; demotes one that errors, 404s, is far slower or reports
  another size, its ranges continuing from the others;
- verifies size and sha256 (hashed while downloading, see prefixhash.py), fetches once more preferring
  another source on a mismatch, and only then moves the file into place with os.replace;
- holds `DEST.lock` so two processes never assemble one file; checks free space first.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.fsutil import free_bytes, human_bytes
from sdsetup.net.destlock import dest_lock
from sdsetup.net.filespec import FileSpec
from sdsetup.net.localcopy import copy_verified, is_file_url
from sdsetup.net.partfile import DiskFull, PartFile
from sdsetup.net.prefixhash import PrefixHasher
from sdsetup.net.probe import Validator, describe_exception, judge, probe
from sdsetup.net.progress import FileProgress
from sdsetup.net.retry import DEFAULT_POLICY, RetryPolicy
from sdsetup.net.segments import SEGMENT_THRESHOLD, MiB, Planner, RangeSet, Task, connections_for
from sdsetup.net.sidecar import ResumeState, load_state, part_path, remove_state, resume_from, save_state, state_path
from sdsetup.net.sources import RANGE_FAILURES, Source, SourceError, far_slower, pick_source
from sdsetup.redact import redact_url
from sdsetup.settings import Settings

log = logging.getLogger("sdsetup.download")

SAVE_EVERY = 1 * MiB  # sidecar saved after this many new bytes on one connection
SAVE_INTERVAL = 1.0  # ... and at least this often (seconds) while bytes arrive
READ_MIN = 64 * 1024  # read size where urllib3 has no read1
READ_MAX = 1 * MiB  # the most one read may return
BATCH = 1 * MiB  # bytes written per lock round / pwritev ...
MAX_PIECES = 256  # ... or this many reads ...
FLUSH_INTERVAL = 0.1  # ... or this many seconds, whichever comes first
TICK = 0.2  # coordinator: progress, slowness checks, periodic saves
MAX_RESTARTS = 3  # "the file changed on the server" restarts within one attempt
VERIFY_ATTEMPTS = 2  # a sha256 mismatch is fetched once more, then it is an error
HASH_CACHE = "hashes.json"

_request_ids = itertools.count(1)


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


class _Stop(Exception):
    """The phase was stopped (restart, failure elsewhere, Ctrl-C): leave quietly."""


class _Restart(Exception):
    """The file changed on the server: assemble it again from scratch."""


def _validate_spec(spec: FileSpec) -> str | None:
    if not spec.urls:
        raise SdsetupError(f"no URL given for {spec.name}", "give at least one http(s):// or file:// URL", ExitCode.USAGE)
    for url in spec.urls:
        if not (url.lower().startswith(("http://", "https://")) or is_file_url(url)):
            raise SdsetupError(f"{redact_url(url)}: not an http(s):// or file:// URL", "check the URL", ExitCode.USAGE)
    if spec.sha256 is None:
        return None
    digest = spec.sha256.strip().lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise SdsetupError(f"'{spec.sha256}' is not a sha256 (64 hex digits) for {spec.name}", "check the hash", ExitCode.USAGE)
    return digest


def download(
    spec: FileSpec,
    session,
    settings: Settings,
    *,
    progress: bool | None = None,
    lock_timeout: float | None = None,
    policy: RetryPolicy | None = None,
    cancel: threading.Event | None = None,
    leave_bar: bool = True,
) -> DownloadResult:
    """Fetch one file to spec.dest (verified), or raise SdsetupError (NETWORK, INTEGRITY, DISK, BUSY).

    `lock_timeout`: seconds to wait for another process assembling the same file (None: wait).
    `cancel`: set by download_many to stop this download like Ctrl-C (KeyboardInterrupt).
    """
    from sdsetup.output import progress_enabled

    expected_sha = _validate_spec(spec)
    dest = Path(spec.dest).absolute()
    show = progress_enabled(settings.quiet) if progress is None else bool(progress)
    if dest.is_dir():
        raise SdsetupError(f"{dest} is a directory", "give the path of the file to write", ExitCode.USAGE)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SdsetupError(
            f"cannot create the folder {dest.parent}: {exc.strerror or exc}",
            "check the path and its permissions",
            ExitCode.DISK if getattr(exc, "errno", None) == 28 else ExitCode.FAILED,
        ) from None

    def on_wait(message: str) -> None:
        if not settings.quiet:
            sys.stderr.write(f"{message} ...\n")
            sys.stderr.flush()

    try:
        with dest_lock(dest, timeout=lock_timeout, on_wait=on_wait, cancel=cancel) as held:
            job = _FileJob(spec, dest, expected_sha, session, settings, show=show, policy=policy or DEFAULT_POLICY, cancel=cancel, leave_bar=leave_bar)
            result = job.run()
            held.done()
            return result
    except PermissionError as exc:
        raise SdsetupError(
            f"cannot write {exc.filename or dest}: permission denied",
            f"choose a folder you can write to, or fix the permissions of {dest.parent}",
            ExitCode.FAILED,
        ) from None


def _ensure_pool(session, needed: int) -> None:
    """Enough pooled connections for every parallel request, so none is opened and thrown away
    (and urllib3 does not warn "Connection pool is full")."""
    try:
        from requests.adapters import HTTPAdapter
    except ImportError:  # pragma: no cover
        return
    for prefix in ("https://", "http://"):
        adapter = getattr(session, "adapters", {}).get(prefix)
        if type(adapter) is HTTPAdapter and getattr(adapter, "_pool_maxsize", needed) < needed:
            session.mount(
                prefix,
                HTTPAdapter(pool_connections=getattr(adapter, "_pool_connections", 10), pool_maxsize=needed, max_retries=adapter.max_retries),
            )


def download_many(
    specs: Iterable[FileSpec],
    session,
    settings: Settings,
    *,
    parallel: int = 4,
    progress: bool | None = None,
    lock_timeout: float | None = None,
    policy: RetryPolicy | None = None,
) -> list[DownloadResult]:
    """Fetch many files, `parallel` at a time (large ones still use several connections each).

    Results come in the order of `specs` (a destination listed twice is fetched once). After the first
    error no new file is started; the ones running finish; then that first error is raised.
    Ctrl-C stops them all, keeping their .part files.
    """
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    specs = list(specs)
    if not specs:
        return []
    parallel = max(1, min(parallel, len(specs)))
    _ensure_pool(session, parallel * (settings.connections + 2))
    cancel = threading.Event()
    no_new = threading.Event()
    first_index: dict[Path, int] = {}
    for index, spec in enumerate(specs):
        first_index.setdefault(Path(spec.dest).absolute(), index)
    results: dict[int, DownloadResult] = {}
    errors: list[tuple[int, BaseException]] = []

    def one(index: int) -> DownloadResult | None:
        if no_new.is_set() or cancel.is_set():
            return None
        return download(specs[index], session, settings, progress=progress, lock_timeout=lock_timeout, policy=policy, cancel=cancel, leave_bar=False)

    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="sdsetup-dl")
    futures = {pool.submit(one, index): index for index in sorted(set(first_index.values()))}
    try:
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=TICK, return_when=FIRST_COMPLETED)
            for future in finished:
                index = futures[future]
                error = future.exception()
                if error is not None:
                    errors.append((index, error))
                    no_new.set()
                elif future.result() is not None:
                    results[index] = future.result()
    except BaseException:
        cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if errors:
        raise errors[0][1]
    return [results[first_index[Path(spec.dest).absolute()]] for spec in specs]


class _Phase:
    """One pass of connections over a planner. Stopping it is final: a connection of a stopped phase
    claims no more bytes, so nothing from it is written after `stop()` returns."""

    def __init__(self, planner: Planner, done: RangeSet, hasher: PrefixHasher, connections: int) -> None:
        self.planner = planner
        self.done = done
        self.hasher = hasher
        self.connections = connections
        self.stopped = False
        self.writing = 0  # bytes claimed but not yet marked done
        self.eof_at: int | None = None  # size learnt from the end of an unsized stream
        # What the connections report to the coordinator (per phase: a late connection of a stopped
        # phase must not steer the next one).
        self.failure: BaseException | None = None
        self.restart_reason: str | None = None
        self.want_stream = False
        self.workers: list[threading.Thread] = []
        self.stop_event = threading.Event()


class _FileJob:
    def __init__(self, spec: FileSpec, dest: Path, expected_sha: str | None, session, settings: Settings, *, show: bool,
                 policy: RetryPolicy, cancel: threading.Event | None, leave_bar: bool) -> None:
        from sdsetup.net.session import timeouts

        self.spec = spec
        self.dest = dest
        self.expected_sha = expected_sha
        self.session = session
        self.settings = settings
        self.policy = policy
        self.cancel = cancel or threading.Event()
        self.timeouts = timeouts(settings)
        self.part_path = part_path(dest)
        self.state_path = state_path(dest)
        self.lock = threading.Condition(threading.Lock())
        self.save_lock = threading.Lock()
        self.started = time.monotonic()
        self.transferred = 0
        self.resumed_bytes = 0
        self.show = show
        self.leave_bar = leave_bar
        self.bar: FileProgress | None = None
        self.sources: list[Source] = []
        self.size: int | None = None
        self.phase: _Phase | None = None
        self.part: PartFile | None = None
        self.restart_reason: str | None = None
        self.failover = False
        self.saved_validators: dict[str, Validator] = {}
        self.prober: threading.Thread | None = None
        self.last_save = 0.0
        self.dirty = False

    # -- the whole file ------------------------------------------------------------------------
    def run(self) -> DownloadResult:
        cached = self._already_there()
        if cached is not None:
            return cached
        file_urls = [u for u in self.spec.urls if is_file_url(u)]
        http_urls = [u for u in self.spec.urls if not is_file_url(u)]
        local_problems = []
        for url in file_urls:
            result = self._copy_local(url, local_problems)
            if result is not None:
                return result
        if not http_urls:
            raise SdsetupError(
                f"none of the local copies of {self.spec.name} could be used: " + "; ".join(local_problems),
                "check the offline bundle (sdsetup bundle verify) or give a URL to download from",
                ExitCode.INTEGRITY if any("sha256" in p or "bytes" in p for p in local_problems) else ExitCode.NETWORK,
            )
        self.bar = FileProgress(self.show, name=self.spec.name, leave=self.leave_bar)
        try:
            return self._fetch_verified(http_urls)
        finally:
            self.bar.close()

    def _hash_cache(self):
        from sdsetup.hashing import HashCache

        return HashCache(self.settings.cache_dir / HASH_CACHE)

    def _result(self, sha: str, size: int, *, cached: bool, urls: tuple[str, ...] = ()) -> DownloadResult:
        return DownloadResult(self.dest, sha, size, self.transferred, urls, self.resumed_bytes > 0, time.monotonic() - self.started, cached)

    def _already_there(self) -> DownloadResult | None:
        """A file at dest with the right sha256 (or the right size when no sha256 is known) is kept."""
        if not self.dest.is_file():
            return None
        size = self.dest.stat().st_size
        if self.spec.size is not None and size != self.spec.size:
            return None
        if self.expected_sha is None and self.spec.size is None:
            return None  # decided after probing, when the size is known
        try:
            digest, _ = self._hash_cache().sha256(self.dest)
        except OSError:
            return None
        if self.expected_sha is not None and digest != self.expected_sha:
            log.info("%s exists but its sha256 is %s, expected %s: fetching again", self.dest, digest, self.expected_sha)
            return None
        return self._result(digest, size, cached=True)

    def _copy_local(self, url: str, problems: list[str]) -> DownloadResult | None:
        try:
            digest, size = copy_verified(url, self.part_path, size=self.spec.size)
        except SourceError as exc:
            problems.append(exc.message)
            return None
        except DiskFull as exc:
            raise self._disk_full_error(exc) from None
        if self.expected_sha and digest != self.expected_sha:
            problems.append(f"{redact_url(url)}: sha256 {digest}, expected {self.expected_sha}")
            _unlink(self.part_path)
            return None
        os.replace(self.part_path, self.dest)
        remove_state(self.dest)
        self._remember(digest)
        self.transferred = size
        return self._result(digest, size, cached=False, urls=(redact_url(url),))

    def _remember(self, digest: str) -> None:
        try:
            self._hash_cache().remember(self.dest, digest)
        except OSError:
            pass

    def _fetch_verified(self, urls: list[str]) -> DownloadResult:
        mismatches: list[tuple[str, tuple[str, ...]]] = []
        for attempt in range(1, VERIFY_ATTEMPTS + 1):
            self.failover = attempt > 1  # after a bad hash: one source at a time, no mixing
            try:
                digest, size = self._assemble(urls)
            except _Cached as cached:
                return cached.result
            used = tuple(s.label for s in self.sources if s.bytes > 0)
            if self.expected_sha is None or digest == self.expected_sha:
                if self.spec.size is not None and size != self.spec.size:  # pragma: no cover - sizes are enforced earlier
                    raise SdsetupError(f"{self.spec.name}: got {size} bytes, expected {self.spec.size}", None, ExitCode.INTEGRITY)
                os.replace(self.part_path, self.dest)
                remove_state(self.dest)
                self._remember(digest)
                log.info("%s: done, %d bytes, sha256 %s, from %s", self.dest, size, digest, ", ".join(used))
                return self._result(digest, size, cached=False, urls=used)
            log.warning("%s: sha256 mismatch (expected %s, got %s) from %s", self.dest, self.expected_sha, digest, ", ".join(used))
            mismatches.append((digest, used))
            _unlink(self.part_path)
            remove_state(self.dest)
            self.resumed_bytes = 0
            # Prefer the sources that did not supply this copy.
            labels = {s.label for s in self.sources if s.bytes > 0}
            urls = [u for u in urls if redact_url(u) not in labels] + [u for u in urls if redact_url(u) in labels]
        digest, used = mismatches[-1]
        raise SdsetupError(
            f"{self.spec.name}: sha256 mismatch: expected {self.expected_sha}, got {digest} "
            f"(from {', '.join(used)}; fetched {len(mismatches)} times)",
            "the source sends different bytes than expected; try another mirror (--mirror) or check the "
            f"expected hash; nothing was written to {self.dest}",
            ExitCode.INTEGRITY,
            details={"expected": self.expected_sha, "actual": digest, "urls": list(used)},
        )

    # -- one assembled copy ----------------------------------------------------------------------
    def _assemble(self, urls: list[str]) -> tuple[str, int]:
        """Fetch every byte into DEST.part; returns (sha256, size) of what was assembled."""
        restarts = 0
        while True:
            self.sources = [Source(url, index) for index, url in enumerate(urls)]
            try:
                return self._assemble_once()
            except _Restart as restart:
                self.restart_reason = str(restart)
                restarts += 1
                reason = self.restart_reason or "the file changed on the server"
                log.warning("%s: %s; starting over (%d)", self.dest, reason, restarts)
                _unlink(self.part_path)
                remove_state(self.dest)
                self.resumed_bytes = 0
                if restarts >= MAX_RESTARTS:
                    raise SdsetupError(
                        f"{self.spec.name}: {reason}, {restarts} times in a row",
                        "the file keeps changing on the server; try again later or use another mirror",
                        ExitCode.NETWORK,
                    ) from None

    def _assemble_once(self) -> tuple[str, int]:
        self.resumed_bytes = 0
        saved = load_state(self.state_path)
        self.saved_validators = dict(saved.validators) if saved else {}
        if self.spec.size is not None:  # told the size: no need to ask a server whether it fits
            self.size = self.spec.size
            self._check_free_space(RangeSet(saved.done.clipped(self.size)) if saved and saved.size == self.size else RangeSet())
        primary = self._probe_first(saved)
        self.size = self.spec.size if self.spec.size is not None else primary.size
        if self.expected_sha is None and self.spec.size is None and self.size is not None and self.dest.is_file():
            if self.dest.stat().st_size == self.size:  # nothing else to check against: the size agrees
                try:
                    digest, _ = self._hash_cache().sha256(self.dest)
                    return_cached = self._result(digest, self.size, cached=True)
                except OSError:
                    return_cached = None
                if return_cached is not None:
                    raise _Cached(return_cached)
        part_size = self.part_path.stat().st_size if self.part_path.is_file() else None
        done, why = resume_from(
            saved,
            size=self.size,
            sha256=self.expected_sha,
            part_size=part_size,
            validators_now={primary.label: Validator(primary.etag, primary.last_modified)},
        )
        if done.total() and not primary.ranges:
            done, why = RangeSet(), f"{primary.label} does not support ranges"
        log.info("%s: %s (size %s, %s)", self.dest, why, self.size, "ranges" if primary.ranges else "no ranges")
        self.resumed_bytes = done.total()
        self._check_free_space(done)
        self.part = PartFile(self.part_path)
        try:
            try:
                self.part.prepare(self.size, fresh=done.total() == 0)
            except DiskFull as exc:
                raise self._disk_full_error(exc) from None
            if not self.failover:
                self._start_prober()
            streams = 0
            while True:
                outcome = self._run_phase(done)
                if outcome == "stream":
                    streams += 1
                    if streams > self.policy.tries:
                        raise self._no_source_error()
                    log.info("%s: no source serves ranges; one stream from the start", self.dest)
                    done = RangeSet()
                    self.resumed_bytes = 0
                    self.part.prepare(self.size, fresh=True)
                    continue
                return outcome
        finally:
            self.part.close()
            self.part = None

    def _check_free_space(self, done: RangeSet) -> None:
        if self.size is None:
            return
        held = 0
        if done.total() and self.part_path.is_file():
            held = getattr(self.part_path.stat(), "st_blocks", 0) * 512
        needed = max(0, self.size - held)
        free = free_bytes(self.dest.parent)
        if free is not None and needed > free:
            raise SdsetupError(
                f"not enough free space for {self.spec.name}: needs {human_bytes(needed)} more, "
                f"{human_bytes(free)} free in {self.dest.parent}",
                "free up space there (or choose another folder) and run again",
                ExitCode.DISK,
                details={"needed_bytes": needed, "free_bytes": free, "path": str(self.dest.parent)},
            )

    def _disk_full_error(self, exc: DiskFull) -> SdsetupError:
        free = free_bytes(self.dest.parent)
        return SdsetupError(
            f"the disk filled up while writing {exc.path} ({human_bytes(free)} free in {self.dest.parent})",
            "free up space and run the same command again: the part already downloaded is kept",
            ExitCode.DISK,
            details={"path": str(exc.path), "free_bytes": free},
        )

    # -- sources ---------------------------------------------------------------------------------
    def _probe_source(self, source: Source) -> SourceError | None:
        """Probe one source and activate it when it agrees with the file being assembled."""
        try:
            found = probe(self.session, source.url, self.timeouts)
        except SourceError as exc:
            with self.lock:
                source.reason = exc.message
                if exc.kind != "retry":
                    source.state = "demoted"
            log.info("%s: probe failed: %s", source.label, exc.message)
            return exc
        with self.lock:
            expected = self.spec.size if self.spec.size is not None else self.size
            validator = found.validator
            saved = self.saved_validators.get(source.label)
            if expected is not None and found.size is not None and found.size != expected:
                source.state = "demoted"
                source.reason = f"offers {found.size} bytes, expected {expected}"
                source.size = found.size
            elif saved is not None and self.resumed_bytes and _changed(saved, validator):
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
            self.lock.notify_all()
        return None

    def _probe_first(self, saved: ResumeState | None) -> Source:
        """Probe sources in order until one answers (retrying the ones that may come back).

        A small file of known size with nothing to resume skips the probe: its one GET tells as much
        (one round trip less per wheel on a slow link); a failing first source is demoted as usual."""
        if self.spec.size is not None and self.spec.size < SEGMENT_THRESHOLD and saved is None and not self.failover:
            first = self.sources[0]
            with self.lock:
                first.state, first.size, first.ranges = "active", self.spec.size, False
            return first
        pending = list(self.sources)
        for round_number in range(1, self.policy.tries + 1):
            retry_later: list[Source] = []
            waits: list[float] = []
            for source in pending:
                error = self._probe_source(source)
                if source.state == "active":
                    return source
                if error is not None and error.kind == "retry":
                    retry_later.append(source)
                    if error.retry_after is not None:
                        waits.append(error.retry_after)
            if not retry_later:
                break
            pending = retry_later
            if round_number < self.policy.tries:
                self._sleep(self.policy.delay(round_number, max(waits) if waits else None))
        raise self._no_source_error()

    def _start_prober(self) -> None:
        """Probe the other sources in the background; each one that agrees joins in."""
        rest = [s for s in self.sources if s.state == "new"]
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
            with self.lock:
                for source in rest:
                    if source.state == "new":
                        source.state = "demoted"
                self.lock.notify_all()

        self.prober = threading.Thread(target=probe_rest, name=f"probe {self.dest.name}", daemon=True)
        self.prober.start()

    def _failover_next(self) -> bool:
        """One source at a time (after a bad hash): probe the next when none is active."""
        for source in self.sources:
            if source.state == "new":
                self._probe_source(source)
                if source.state == "active":
                    return True
        return False

    def _no_source_error(self) -> SdsetupError:
        reasons = [f"{s.label}: {s.reason}" for s in self.sources if s.reason]
        size_only = [s for s in self.sources if s.reason and "offers" in s.reason]
        done = self.phase.done.total() if self.phase is not None else 0
        if size_only and len(size_only) == len(self.sources):
            return SdsetupError(
                f"{self.spec.name}: no source offers the expected size ({'; '.join(reasons)})",
                "the expected size may be out of date, or the mirrors hold another version",
                ExitCode.INTEGRITY,
                details={"sources": reasons},
            )
        kept = f"; {human_bytes(done)} already downloaded is kept for the next run" if done else ""
        return SdsetupError(
            f"could not download {self.spec.name}: " + ("; ".join(reasons) or "no source answered"),
            "check the network, a proxy (--proxy) or a mirror (--mirror), then run the same command again" + kept,
            ExitCode.NETWORK,
            details={"sources": reasons},
        )

    # -- one phase of connections ----------------------------------------------------------------
    def _run_phase(self, done: RangeSet):
        usable_ranges = any(s.state == "active" and s.ranges for s in self.sources)
        remaining = None if self.size is None else self.size - done.total()
        connections = connections_for(self.size, remaining, self.settings.connections, usable_ranges)
        hasher = PrefixHasher(self.part_path, done.prefix_end())
        phase = _Phase(Planner(self.size, done, connections, ranges=usable_ranges), done, hasher, connections)
        self.phase = phase
        self.bar.start(self.size, done.total())
        log.info("%s: %d connection(s), %s to fetch", self.dest, connections, human_bytes(remaining) if remaining is not None else "unknown size")
        self._save(force=True)
        try:
            while True:
                self._keep_workers(phase)
                with self.lock:
                    self.lock.wait(TICK)
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
                    self.bar.update(self.size)
                    return hasher.result(self.size), self.size
                if not any(w.is_alive() for w in phase.workers) and not self._work_possible(phase):
                    raise self._no_source_error()
                if time.monotonic() - self.last_save >= SAVE_INTERVAL and self.dirty:
                    self._save()
        except BaseException:
            self._stop_phase(phase)
            hasher.stop()
            if self.size is not None:
                self._save(force=True)
            raise

    def _complete(self, phase: _Phase) -> bool:
        with self.lock:
            if self.size is None:
                if phase.eof_at is None or phase.writing:
                    return False
                self.size = phase.eof_at
            return phase.done.covers(self.size) and phase.writing == 0

    def _work_possible(self, phase: _Phase) -> bool:
        """Could new connections make progress? (A source may still join, or come out of cooldown.)"""
        with self.lock:
            if any(s.state == "active" for s in self.sources):
                return True
            if self.prober is not None and self.prober.is_alive():
                return True
        return self.failover and self._failover_next()

    def _keep_workers(self, phase: _Phase) -> None:
        with self.lock:
            phase.workers = [w for w in phase.workers if w.is_alive()]
            has_work = bool(phase.planner.pending) or phase.planner.steal_possible()
            usable = any(s.state == "active" for s in self.sources)
            missing = phase.connections - len(phase.workers)
        if phase.stopped or not usable or missing <= 0 or not has_work:
            return
        for _ in range(missing):
            worker = threading.Thread(target=self._worker, args=(phase,), name=f"dl {self.dest.name}", daemon=True)
            phase.workers.append(worker)
            worker.start()

    def _stop_phase(self, phase: _Phase) -> None:
        with self.lock:
            phase.stopped = True
            phase.stop_event.set()
            while phase.writing:
                self.lock.wait(0.05)

    def _check_slow(self) -> None:
        with self.lock:
            for source in far_slower(self.sources, time.monotonic()):
                rate, _ = source.rate(time.monotonic())
                source.state = "demoted"
                source.reason = f"far slower than the other sources ({human_bytes(rate)}/s per connection)"
                log.info("%s: %s", source.label, source.reason)

    def _rebalance(self, phase: _Phase) -> None:
        """Spread connections over the active sources (one move per tick, so counts settle): a
        source that joined late gets connections, and so gets measured."""
        with self.lock:
            active = [s for s in self.sources if s.state == "active" and s.ranges]
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
        phase = self.phase
        if phase is None or self.size is None:
            return
        with self.save_lock:
            with self.lock:
                if phase.stopped and not force:
                    return
                state = ResumeState(
                    size=self.size,
                    sha256=self.expected_sha,
                    urls=[s.label for s in self.sources],
                    validators={s.label: Validator(s.etag, s.last_modified) for s in self.sources if s.state == "active" or s.bytes},
                    done=RangeSet(phase.done),
                )
                self.dirty = False
                self.last_save = time.monotonic()
            try:
                save_state(self.state_path, state)
            except OSError as exc:
                log.warning("could not save %s: %s", self.state_path, exc)

    # -- one connection --------------------------------------------------------------------------
    def _worker(self, phase: _Phase) -> None:
        failures: dict[int, int] = {}
        try:
            while not phase.stopped:
                with self.lock:
                    task = phase.planner.next_task()
                if task is None:
                    return
                try:
                    keep_going = self._work(phase, task, failures)
                finally:
                    with self.lock:
                        phase.planner.release(task)
                        self.lock.notify_all()
                if not keep_going:
                    return
        except _Stop:
            return
        except DiskFull as exc:
            with self.lock:
                if phase.failure is None:
                    phase.failure = self._disk_full_error(exc)
        except BaseException as exc:  # a bug: surface it in the coordinator, not as a silent thread death
            with self.lock:
                if phase.failure is None:
                    phase.failure = exc
        finally:
            with self.lock:
                self.lock.notify_all()

    def _work(self, phase: _Phase, task: Task, failures: dict[int, int]) -> bool:
        """Fetch the task; False when this connection should end (no usable source, restart)."""
        while task.remaining > 0 and not phase.stopped:
            whole = task.pos == 0 and (self.size is None or task.end >= self.size)
            with self.lock:
                choice = pick_source(self.sources, time.monotonic(), need_ranges=not whole)
                if choice is None:
                    active = [s for s in self.sources if s.state == "active"]
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
                if exc.kind == "size" and self.spec.size is not None:
                    # The expected size is given: this source holds another file; the rest carry on.
                    with self.lock:
                        source.state = "demoted"
                        source.reason = f"offers {exc.offered} bytes, expected {self.spec.size}"
                    log.info("%s: %s", source.label, source.reason)
                    continue
                if exc.kind in ("changed", "size"):
                    with self.lock:
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

    def _wait(self, phase: _Phase, seconds: float) -> None:
        if phase.stop_event.wait(seconds):
            raise _Stop

    def _failed(self, source: Source, exc: SourceError, failures: dict[int, int]) -> None:
        count = failures.get(id(source), 0) + 1
        failures[id(source)] = count
        with self.lock:
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
            self.lock.notify_all()
        log.info("%s: %s%s", source.label, exc.message, " (given up)" if source.state == "demoted" else "")

    def _request(self, phase: _Phase, task: Task, source: Source, whole: bool, failures: dict[int, int]) -> None:
        import requests

        headers = {}
        if not whole:
            last = "" if self.size is None else str(task.end - 1)
            headers["Range"] = f"bytes={task.pos}-{last}"
            if_range = Validator(source.etag, source.last_modified).if_range()
            if if_range:
                headers["If-Range"] = if_range
        request_id = next(_request_ids)
        log.debug("%s: GET %s from %s", self.dest.name, headers.get("Range", "whole file"), source.label)
        with self.lock:
            source.open_since[request_id] = time.monotonic()
            task.source = source
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
                        size=self.size,
                        known=Validator(source.etag, source.last_modified),
                    )
                except SourceError as exc:
                    if exc.kind in ("gone", "fail") and source.final_url:
                        # A redirect target (signed CDN link) may have expired: follow the redirect again.
                        source.final_url = None
                        raise SourceError("retry", exc.message + " (following the redirect again)", status=exc.status) from None
                    raise
                with self.lock:
                    if verdict.no_range:
                        source.range_failures += 1
                        if source.range_failures >= RANGE_FAILURES and not source.ranges_served:
                            source.ranges = False
                    elif not whole:
                        source.range_failures = 0
                        source.ranges_served = True
                self._stream(phase, task, source, response, verdict.body_end, failures)
        finally:
            with self.lock:
                task.source = None
                started = source.open_since.pop(request_id, None)
                if started is not None:
                    source.busy_seconds += time.monotonic() - started

    def _stream(self, phase: _Phase, task: Task, source: Source, response, body_end: int | None, failures: dict[int, int]) -> None:
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
                raise _Stop
            if source.state != "active" or task.move:
                self._flush(phase, task, source, pieces, failures)
                task.move = False
                raise SourceError("demoted", "given up" if source.state != "active" else "moved to a less busy source")
            try:
                data = read1(READ_MAX, decode_content=False) if read1 else raw.read(READ_MIN, decode_content=False)
            except Exception as exc:  # urllib3/socket errors: reset, timeout (a stall), truncated body
                self._flush(phase, task, source, pieces, failures)
                raise SourceError("retry", describe_exception(exc)) from None
            now = time.monotonic()
            if data:
                pieces.append(data)
                pending += len(data)
                if pending < BATCH and len(pieces) < MAX_PIECES and now - flushed_at < FLUSH_INTERVAL:
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
                if self.size is None:
                    with self.lock:
                        phase.eof_at = task.pos
                        task.end = task.pos
                        self.lock.notify_all()
                    return
                if body_end is not None and task.pos >= min(body_end, task.end):
                    return  # the server sent a shorter range than asked: ask again for the rest
                raise SourceError("retry", "the connection closed before the end of the data")

    def _flush(self, phase: _Phase, task: Task, source: Source, pieces: list[bytes], failures: dict[int, int]) -> tuple[int, bool]:
        """Write `pieces` at the task's position: (bytes written, whether the task is finished)."""
        total = sum(len(p) for p in pieces)
        if not total:
            return 0, task.pos >= task.end
        with self.lock:
            if phase.stopped:
                raise _Stop
            offset, take = phase.planner.claim(task, total)
            phase.writing += 1
        try:
            if take:
                self.part.write_pieces(offset, pieces, take)
        finally:
            with self.lock:
                phase.writing -= 1
                if take:
                    phase.done.add(offset, offset + take)
                    phase.hasher.advance(phase.done.prefix_end())
                    source.bytes += take
                    self.transferred += take
                    self.dirty = True
                    failures[id(source)] = 0
                if phase.stopped and not phase.writing:
                    self.lock.notify_all()  # _stop_phase waits for the last write
        return take, take < total or task.pos >= task.end


class _Cached(Exception):
    def __init__(self, result: DownloadResult) -> None:
        super().__init__("cached")
        self.result = result


def _changed(old: Validator, new: Validator) -> bool:
    from sdsetup.net.probe import same_version

    return same_version(old, new) is False


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
