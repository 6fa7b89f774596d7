"""Which bytes of a file are done, which are still to fetch, and who fetches them next.

Pure bookkeeping (no I/O), used under the download's lock:
- `RangeSet`: sorted, merged half-open byte ranges [start, end) — the bytes already in `DEST.part`.
- `Planner`: hands out the missing bytes as blocks **in file order** (so the contiguous prefix, which
  the hasher follows, grows while downloading) and, when nothing is left to hand out, lets an idle
  connection steal the back half of the largest range still in flight.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field
from typing import Iterable

KiB = 1024
MiB = 1024 * KiB

# A file is split over several connections only when it is at least this big, and each connection
# gets at least MIN_SEGMENT: below that the extra requests cost more than they bring.
SEGMENT_THRESHOLD = 4 * MiB
MIN_SEGMENT = 1 * MiB
# Blocks are handed out in order; this many blocks per connection keeps the tail short, the cap keeps
# the per-request overhead (one round trip per block) small on slow links.
BLOCKS_PER_CONNECTION = 4
MAX_BLOCK = 32 * MiB
# Stealing splits a range in two halves of at least this size.
MIN_STEAL = 512 * KiB
ALIGN = 64 * KiB

UNKNOWN_END = 1 << 62  # the end of a task whose file size is not known (read to EOF)


class RangeSet:
    """Sorted, non-overlapping, merged half-open ranges."""

    def __init__(self, ranges: Iterable[Iterable[int]] = ()) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in ranges:
            self.add(int(start), int(end))

    def add(self, start: int, end: int) -> None:
        if end <= start:
            return
        # Every range that touches or overlaps [start, end) is merged into it.
        left = bisect.bisect_left(self._ends, start)
        right = bisect.bisect_right(self._starts, end)
        if left < right:
            start = min(start, self._starts[left])
            end = max(end, self._ends[right - 1])
        self._starts[left:right] = [start]
        self._ends[left:right] = [end]

    def __iter__(self):
        return iter(zip(self._starts, self._ends))

    def __len__(self) -> int:
        return len(self._starts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RangeSet) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"RangeSet({self.to_json()})"

    def total(self) -> int:
        return sum(e - s for s, e in self)

    def prefix_end(self) -> int:
        """How many bytes from offset 0 are done without a gap."""
        return self._ends[0] if self._starts and self._starts[0] == 0 else 0

    def covers(self, size: int) -> bool:
        return self.prefix_end() >= size

    def missing(self, size: int) -> list[tuple[int, int]]:
        """The gaps in [0, size)."""
        gaps, position = [], 0
        for start, end in self:
            if start >= size:
                break
            if start > position:
                gaps.append((position, start))
            position = max(position, end)
        if position < size:
            gaps.append((position, size))
        return gaps

    def clipped(self, size: int) -> "RangeSet":
        return RangeSet((s, min(e, size)) for s, e in self if s < size)

    def to_json(self) -> list[list[int]]:
        return [[s, e] for s, e in self]


def block_size(size: int, connections: int) -> int:
    """The size of the blocks handed out in order: about BLOCKS_PER_CONNECTION per connection."""
    raw = -(-size // max(1, connections * BLOCKS_PER_CONNECTION))
    raw = max(MIN_SEGMENT, min(MAX_BLOCK, raw))
    return -(-raw // ALIGN) * ALIGN


def connections_for(size: int | None, remaining: int | None, wanted: int, ranges: bool) -> int:
    """How many connections a file deserves: one when ranges are not supported, the size is unknown or
    the file is small; otherwise `wanted`, but no more than one per MIN_SEGMENT of what is left."""
    if not ranges or size is None or size < SEGMENT_THRESHOLD:
        return 1
    left = size if remaining is None else remaining
    return max(1, min(wanted, left // MIN_SEGMENT))


_task_ids = itertools.count(1)


@dataclass(eq=False)
class Task:
    """One request's worth of work: bytes [pos, end). `pos` advances as bytes are claimed, `end`
    shrinks when another connection steals the back half."""

    pos: int
    end: int
    id: int = field(default_factory=lambda: next(_task_ids))
    source: object | None = None  # the source its current request goes to
    move: bool = False  # asked to continue from a less busy source
    received: int = 0  # bytes read from the socket but not claimed yet (the connection's batch)

    @property
    def remaining(self) -> int:
        return max(0, self.end - self.pos)

    @property
    def unreceived(self) -> int:
        """What the connection has not even read yet: the part worth stealing."""
        return max(0, self.end - self.pos - self.received)


class Planner:
    """Hands out the missing ranges of a file. Not thread-safe: the caller holds its lock."""

    def __init__(self, size: int | None, done: RangeSet, connections: int, *, ranges: bool = True) -> None:
        self.size = size
        if size is None or not ranges:  # one stream: the whole rest is one task
            self.pending: list[tuple[int, int]] = [(0, UNKNOWN_END)] if size is None else done.missing(size)
            self.block = UNKNOWN_END
        else:
            self.pending = done.missing(size)
            self.block = block_size(size, connections)
        self.active: list[Task] = []

    def next_task(self) -> Task | None:
        """The next block in file order, else half of the largest range in flight, else None."""
        if self.pending:
            start, end = self.pending[0]
            stop = end if end - start <= self.block + MIN_SEGMENT // 2 else start + self.block
            if stop >= end:
                self.pending.pop(0)
            else:
                self.pending[0] = (stop, end)
            task = Task(start, stop)
            self.active.append(task)
            return task
        return self.steal()

    def steal(self) -> Task | None:
        if self.size is None or not self.active:
            return None
        victim = max(self.active, key=lambda t: t.unreceived)
        if victim.unreceived < 2 * MIN_STEAL:
            return None
        start = victim.pos + victim.received
        middle = start + victim.unreceived // 2
        middle = max(start + MIN_STEAL, (middle // ALIGN) * ALIGN)
        task = Task(middle, victim.end)
        victim.end = middle
        self.active.append(task)
        return task

    def steal_possible(self) -> bool:
        return self.size is not None and any(t.unreceived >= 2 * MIN_STEAL for t in self.active)

    def claim(self, task: Task, count: int) -> tuple[int, int]:
        """Reserve up to `count` bytes at the front of `task`: (offset, how many may be written)."""
        offset = task.pos
        take = max(0, min(count, task.end - task.pos))
        task.pos += take
        return offset, take

    def release(self, task: Task) -> None:
        """The connection gives the task back: whatever it did not fetch goes back to the queue."""
        if task in self.active:
            self.active.remove(task)
        if task.pos < task.end:
            self._requeue(task.pos, task.end)
            task.end = task.pos

    def _requeue(self, start: int, end: int) -> None:
        bisect.insort(self.pending, (start, end))
        merged: list[tuple[int, int]] = []
        for s, e in self.pending:
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        self.pending = merged

    def idle(self) -> bool:
        return not self.pending and not self.active
