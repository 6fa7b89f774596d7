"""The record of one file's download, shared by its coordinator (filejob.py) and its connection
workers (connections.py) — pip's `_FileDownload` is the model: what is fetched (spec, destination,
expected hash), from where (every source with its own state: sources.Source), how far (size, bytes
so far, the ranges done in the current phase), and the lock that guards all of it.

Nothing here does I/O; the coordinator decides, the workers fetch, both through this record.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sdsetup.net.filespec import FileSpec
from sdsetup.net.prefixhash import PrefixHasher
from sdsetup.net.segments import Planner, RangeSet
from sdsetup.net.sources import Source

if TYPE_CHECKING:
    from sdsetup.net.partfile import PartFile


class Phase:
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


@dataclass(eq=False)
class FileState:
    """One file being assembled. Fields below `lock` change while connections run: read and write them
    holding `lock` (a Condition: workers notify the coordinator through it)."""

    spec: FileSpec
    dest: Path
    expected_sha: str | None
    html_ok: bool  # a web page is an acceptable answer (the file is one); otherwise a failed source
    lock: threading.Condition = field(default_factory=lambda: threading.Condition(threading.Lock()))
    size: int | None = None  # known from the spec, a probe, or the end of an unsized stream
    sources: list[Source] = field(default_factory=list)  # the sources in play (one during a repair round)
    all_sources: list[Source] = field(default_factory=list)  # every source of this file, in preference order
    part: "PartFile | None" = None
    phase: Phase | None = None
    transferred: int = 0  # body bytes written in this run
    resumed_bytes: int = 0  # bytes kept from an earlier run
    written: list[tuple[int, int, int]] = field(default_factory=list)  # (start, end, source index) this pass
    dirty: bool = False  # bytes written since the sidecar was last saved
    host: str | None = None  # where bytes (or a probe's answer) are awaited from: for the heartbeat

    def bytes_so_far(self) -> int:
        phase = self.phase
        return phase.done.total() if phase is not None else 0
