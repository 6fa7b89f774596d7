"""One lock per destination (`DEST.lock`, a `filelock`), so two sdsetup processes never assemble the
same file at once: the second waits, then finds the file done; or, given a timeout, says who holds it.

The holder writes `DEST.lock.owner` (pid, host, start time) for the waiter's message. After a file was
placed successfully the lock files are removed; a waiter that then wins the lock of the removed file
notices (the path is gone), and takes the lock again.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.i18n import t

POLL = 0.25


def lock_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".lock")


def owner_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".lock.owner")


def describe_holder(dest: Path) -> str:
    try:
        info = json.loads(owner_path(dest).read_text("utf-8"))
    except (OSError, ValueError):
        return "another process (its pid is not recorded yet)"
    since = time.strftime("%H:%M:%S", time.localtime(float(info.get("started", 0) or 0)))
    return f"sdsetup process {info.get('pid')} on {info.get('host')} (since {since})"


class DestLock:
    """Held while a destination is being checked or assembled; `done()` marks success."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.succeeded = False

    def done(self) -> None:
        self.succeeded = True


@contextmanager
def dest_lock(
    dest: Path,
    *,
    timeout: float | None = None,
    on_wait: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[DestLock]:
    """Take the lock of `dest`; wait forever when timeout is None, else raise BUSY naming the holder."""
    from filelock import FileLock, Timeout

    path = lock_path(dest)
    deadline = None if timeout is None else time.monotonic() + timeout
    told = False
    while True:
        lock = FileLock(str(path))
        try:
            remaining = POLL if deadline is None else max(0.0, min(POLL, deadline - time.monotonic()))
            lock.acquire(timeout=remaining)
        except Timeout:
            holder = describe_holder(dest)
            if not told and on_wait is not None:
                on_wait(t("waiting for {holder}, which is downloading {name}", holder=holder, name=dest.name))
                told = True
            if deadline is not None and time.monotonic() >= deadline:
                raise SdsetupError(
                    t("{dest} is being downloaded by {holder}", dest=dest, holder=holder),
                    t("wait for it to finish (sdsetup waits by default), or stop that process and run again"),
                    ExitCode.BUSY,
                    details={"lock": str(path)},
                ) from None
            if cancel is not None and cancel.is_set():
                raise KeyboardInterrupt from None
            continue
        if not path.exists():  # the previous holder finished and removed the lock file: take the new one
            lock.release()
            continue
        break
    handle = DestLock(dest)
    try:
        try:
            owner_path(dest).write_text(
                json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}), "utf-8"
            )
        except OSError:
            pass  # only the waiter's message loses detail
        yield handle
    finally:
        # Removed after a failure too (an empty DEST.lock is litter); a waiter holding the old file
        # notices that the path is gone and takes a new lock (above).
        for leftover in (owner_path(dest), path):
            try:
                leftover.unlink()
            except OSError:
                pass
        lock.release()
