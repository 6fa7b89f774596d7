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

import errno
import sys
import threading
from pathlib import Path
from typing import Iterable

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.net.destlock import dest_lock
from sdsetup.net.filejob import TICK, DownloadResult, FileJob
from sdsetup.net.filespec import FileSpec
from sdsetup.net.localcopy import is_file_url
from sdsetup.net.retry import DEFAULT_POLICY, RetryPolicy
from sdsetup.redact import redact_url
from sdsetup.settings import Settings
from sdsetup.i18n import t

__all__ = ["DownloadResult", "download", "download_many"]

_MALLOC_TUNED = False


def _tune_malloc() -> None:
    """Keep large buffers out of glibc's heap arenas (once per process, Linux/glibc only).

    Every connection reads and writes megabyte buffers from its own thread; glibc raises its mmap
    threshold after the first such buffer is freed, so later ones land in per-thread arenas that keep
    the freed memory: 1 GiB over 8 connections held 80 MB RSS. A fixed threshold (which also turns the
    raising off) gives each big buffer back when it is freed: 64 MB, with several sources too."""
    global _MALLOC_TUNED
    if _MALLOC_TUNED or not sys.platform.startswith("linux"):
        return
    _MALLOC_TUNED = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 256 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # musl or no libc.so.6: its allocator, its behaviour
        pass


def _validate_spec(spec: FileSpec) -> str | None:
    if not spec.urls:
        raise SdsetupError(t("no URL given for {name}", name=spec.name), t("give at least one http(s):// or file:// URL"),
                           ExitCode.USAGE)
    for url in spec.urls:
        if not (url.lower().startswith(("http://", "https://")) or is_file_url(url)):
            raise SdsetupError(t("{url}: not an http(s):// or file:// URL", url=redact_url(url)), t("check the URL"),
                               ExitCode.USAGE)
    if spec.sha256 is None:
        return None
    digest = spec.sha256.strip().lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise SdsetupError(t("'{sha256}' is not a sha256 (64 hex digits) for {name}", sha256=spec.sha256, name=spec.name),
                           t("check the hash"), ExitCode.USAGE)
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
    _tune_malloc()
    dest = Path(spec.dest).absolute()
    show = progress_enabled(settings.quiet) if progress is None else bool(progress)
    from sdsetup.fsutil import check_destination, file_in_the_way

    blocking = file_in_the_way(dest)
    if blocking is not None:
        raise SdsetupError(t("{blocking} is a file, not a folder", blocking=blocking),
                           t("give an output path that is not inside the file {blocking}", blocking=blocking), ExitCode.USAGE)
    check_destination(dest)  # device nodes, FIFOs, /proc, /sys, names too long, read-only folders
    if dest.is_dir():
        raise SdsetupError(t("{dest} is a directory", dest=dest), t("give the path of the file to write"), ExitCode.USAGE)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SdsetupError(
            t("cannot create the folder {parent}: {strerror}", parent=dest.parent, strerror=exc.strerror or exc),
            t("check the path and its permissions, or choose another output folder"),
            ExitCode.DISK if getattr(exc, "errno", None) == 28 else ExitCode.USAGE,
        ) from None

    def on_wait(message: str) -> None:
        if not settings.quiet:
            sys.stderr.write(f"{message} ...\n")
            sys.stderr.flush()

    try:
        with dest_lock(dest, timeout=lock_timeout, on_wait=on_wait, cancel=cancel) as held:
            job = FileJob(spec, dest, expected_sha, session, settings, show=show, policy=policy or DEFAULT_POLICY, cancel=cancel, leave_bar=leave_bar)
            result = job.run()
            held.done()
            return result
    except PermissionError as exc:
        raise SdsetupError(
            t("cannot write {filename}: permission denied", filename=exc.filename or dest),
            t("choose a folder you can write to, or fix the permissions of {parent}", parent=dest.parent),
            ExitCode.USAGE,
        ) from None
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.ENAMETOOLONG):
            raise
        raise SdsetupError(
            t("cannot write {filename}: {strerror}", filename=exc.filename or dest, strerror=exc.strerror),
            t("choose another output folder or a shorter name (-o)"),
            ExitCode.USAGE,
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
