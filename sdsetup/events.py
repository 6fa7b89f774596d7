"""Progress events: the one seam through which a long command tells a listener what the terminal shows.

The terminal's own output (step lines on stderr, one tqdm bar per download) stays as it is; the same
call sites also `emit()` an event here, and whoever listens (the local web page, `sdsetup gui`) gets
them. Nobody listening costs one empty-list check. Events arrive from any thread (downloads run in
parallel), so a sink must be thread-safe and quick (append to a queue); a sink that raises is ignored:
progress must never break the work it reports.

Kinds and fields:
- `line`: text (a progress line exactly as the terminal prints it), level ("say" or "detail")
- `step`: id, number, total, title, status (running, done, done-before, skipped, failed), seconds, reason
- `file`: name, done, total (None: unknown), host (the source it comes from, None before the probe),
  state (start, update, end)
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

Sink = Callable[[str, dict], None]

_sinks: list[Sink] = []
_lock = threading.Lock()


def listening() -> bool:
    return bool(_sinks)


def emit(kind: str, **fields: Any) -> None:
    if not _sinks:
        return
    for sink in list(_sinks):
        try:
            sink(kind, fields)
        except Exception:  # a listener's bug must not stop an install
            pass


@contextmanager
def sink(callback: Sink) -> Iterator[None]:
    """Send every event to `callback` while the block runs."""
    with _lock:
        _sinks.append(callback)
    try:
        yield
    finally:
        with _lock:
            _sinks.remove(callback)
