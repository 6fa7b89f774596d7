"""A line on stderr while a step is quiet: "waiting for WHAT: N so far from HOST", at most once per
`every` seconds (15 by default) and only after that long without one, so a user without a progress
bar (--json, a log file, a non-terminal stderr) never stares at minutes of silence.

Any step can use it (the download engine does, for every file, when no progress bar is shown):

    from sdsetup.net.heartbeat import Heartbeat

    with Heartbeat("git clone https://github.com/…", status=lambda: (received_bytes, "github.com")):
        run_the_slow_thing()

`status()` is called from the heartbeat's thread: it returns (bytes so far or None, host or None) and
must be cheap and thread-safe (read a counter). `line(...)` and `due(...)` are the pure parts.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable, TextIO

EVERY = 15.0

Status = Callable[[], "tuple[int | None, str | None]"]


def line(what: str, done: int | None, host: str | None, total: int | None = None) -> str:
    from sdsetup.fsutil import human_bytes
    from sdsetup.i18n import t

    # whole sentences, not fragments: word order differs between languages
    if done is None:
        return t("waiting for {what} from {host}", what=what, host=host) if host else t("waiting for {what}", what=what)
    if total:
        if host:
            return t("waiting for {what}: {done} of {total} so far from {host}", what=what, done=human_bytes(done),
                     total=human_bytes(total), host=host)
        return t("waiting for {what}: {done} of {total} so far", what=what, done=human_bytes(done), total=human_bytes(total))
    if host:
        return t("waiting for {what}: {done} so far from {host}", what=what, done=human_bytes(done), host=host)
    return t("waiting for {what}: {done} so far", what=what, done=human_bytes(done))


def due(last: float, now: float, every: float = EVERY) -> bool:
    """A heartbeat is due after `every` seconds since the step last said something."""
    return now - last >= every


class Heartbeat:
    def __init__(self, what: str, *, status: Status | None = None, total: int | None = None, every: float | None = None,
                 enabled: bool = True, stream: TextIO | None = None) -> None:
        self.what = what
        self.status = status or (lambda: (None, None))
        self.total = total
        self.every = EVERY if every is None else every
        self.enabled = enabled
        self.stream = stream
        self.last = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def said_something(self) -> None:
        """The step printed something itself: the silence starts again."""
        self.last = time.monotonic()

    def beat(self, now: float | None = None) -> str | None:
        """Print the heartbeat when it is due; returns the line printed (None when not due)."""
        now = time.monotonic() if now is None else now
        if not self.enabled or not due(self.last, now, self.every):
            return None
        try:
            done, host = self.status()
        except Exception:  # a status callback must never break the step it reports on
            done, host = None, None
        text = line(self.what, done, host, self.total)
        stream = self.stream or sys.stderr
        stream.write(text + "\n")
        stream.flush()
        self.last = now
        return text

    def __enter__(self) -> "Heartbeat":
        self.last = time.monotonic()
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(min(1.0, self.every / 4)):
            self.beat()

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
