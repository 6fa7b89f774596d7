"""One progress bar per file on stderr (size, speed, ETA), or nothing at all.

The engine calls `update(done_bytes)` from its coordinator a few times a second (not per chunk)."""

from __future__ import annotations

import sys


class FileProgress:
    def __init__(self, enabled: bool, *, name: str, total: int | None = None, initial: int = 0, leave: bool = True) -> None:
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                initial=initial,
                desc=name if len(name) <= 40 else name[:37] + "...",
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=sys.stderr,
                leave=leave,
                dynamic_ncols=True,
                mininterval=0.2,
            )

    def start(self, total: int | None, initial: int) -> None:
        """(Re)start counting: a new total (learnt from the server) and what is already there."""
        if self._bar is not None:
            self._bar.reset(total=total)
            self._bar.update(initial)

    def update(self, done: int) -> None:
        if self._bar is not None and done != self._bar.n:
            self._bar.update(done - self._bar.n)

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
