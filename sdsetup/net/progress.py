"""One progress bar per file on stderr (size, speed, ETA), or nothing at all.

The engine calls `update(done_bytes)` from its coordinator a few times a second (not per chunk).
The bar appears when the size is known (after the probe), so it starts with the right total."""

from __future__ import annotations

import sys
from typing import Callable

from sdsetup import events


class FileProgress:
    """The bar, and the same numbers as `file` events (sdsetup/events.py) for a listener such as the web page."""

    def __init__(self, enabled: bool, *, name: str, leave: bool = True, host: Callable[[], str | None] | None = None) -> None:
        self.enabled = enabled
        self.full_name = name
        self.name = name if len(name) <= 40 else name[:37] + "..."
        self.leave = leave
        self.host = host or (lambda: None)
        self._bar = None
        self._total: int | None = None
        self._done = 0
        self._started = False

    def _event(self, state: str) -> None:
        if events.listening():
            events.emit("file", name=self.full_name, done=self._done, total=self._total, host=self.host(), state=state)

    def start(self, total: int | None, initial: int) -> None:
        """(Re)start counting: the total (None: unknown) and the bytes already there."""
        self._total, self._done, self._started = total, initial, True
        self._event("start")
        if not self.enabled:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                initial=initial,
                desc=self.name,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=sys.stderr,
                leave=self.leave,
                dynamic_ncols=True,
                mininterval=0.2,
            )
        else:
            self._bar.reset(total=total)
            self._bar.update(initial)

    def update(self, done: int) -> None:
        if self._started and done != self._done:
            self._done = done
            self._event("update")
        if self._bar is not None and done != self._bar.n:
            self._bar.update(done - self._bar.n)

    def write(self, line: str) -> None:
        """A line above the bar (or plain on stderr without one)."""
        if self._bar is not None:
            self._bar.write(line, file=sys.stderr)
        else:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    def close(self) -> None:
        if self._started:
            self._started = False
            self._event("end")
        if self._bar is not None:
            self._bar.close()
            self._bar = None
