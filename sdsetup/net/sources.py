"""The sources (mirror URLs) of one file during one download, and the pure choices about them:
which source the next request goes to, and which sources are far slower than the best.

A source is `active` until it is demoted (gone, failing, far slower, different size); a demoted
source takes no new requests and its ranges continue from the others, keeping what is done.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from sdsetup.redact import redact_url


class SourceError(Exception):
    """One source could not give the bytes asked for. `kind`:
    retry (try again later), gone (404 & co), fail (other status), changed (file differs from the
    one being assembled), size (the source has a file of another size), norange (ranges not
    usable), demoted (the source was given up meanwhile)."""

    def __init__(self, kind: str, message: str, *, status: int | None = None, retry_after: float | None = None,
                 offered: int | None = None, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out  # no answer in time (connect or read): a dead host, or a proxy that stalls
        self.kind = kind
        self.offered = offered  # kind "size": the size this source has
        self.message = message
        self.status = status
        self.retry_after = retry_after


@dataclass(eq=False)
class Source:
    url: str
    index: int  # preference: 0 is the first URL given
    final_url: str | None = None
    size: int | None = None
    ranges: bool = False
    etag: str | None = None
    last_modified: str | None = None
    state: str = "new"  # new (not probed yet) | active | demoted
    reason: str | None = None  # why it was demoted, or the last error
    range_failures: int = 0  # ranged answers in a row that ignored the Range or started elsewhere
    ranges_served: bool = False  # it answered a range correctly in this run: later glitches are errors
    cooldown_until: float = 0.0  # Retry-After: no request before this (monotonic seconds)
    bytes: int = 0  # body bytes written from this source
    busy_seconds: float = 0.0  # finished request time (from sending to the last byte)
    open_since: dict[int, float] = field(default_factory=dict)  # request id -> monotonic start
    cap: int | None = None  # the most requests open at once here (a university mirror's limit)
    # (monotonic time, bytes, connection seconds) sampled by the coordinator: the recent rate, so a
    # source that slows mid-file is seen slowing now, not averaged with its fast start
    samples: collections.deque = field(default_factory=lambda: collections.deque(maxlen=64))
    demoted_at: float | None = None  # when it was given up for slowness (it may be re-admitted once)
    readmitted: bool = False

    @property
    def label(self) -> str:
        return redact_url(self.url)

    @property
    def fetch_url(self) -> str:
        return self.final_url or self.url

    def connection_seconds(self, now: float) -> float:
        return self.busy_seconds + sum(now - start for start in self.open_since.values())

    def rate(self, now: float) -> tuple[float, float]:
        """(bytes per second per connection, seconds of connection time measured), over the last
        RECENT seconds once that much is sampled, else since the start."""
        seconds = self.connection_seconds(now)
        old = next((s for s in self.samples if now - s[0] <= RECENT), None)
        if old is not None and now - old[0] >= RECENT / 2 and seconds - old[2] > 0:
            return (self.bytes - old[1]) / (seconds - old[2]), seconds
        return (self.bytes / seconds if seconds > 0 else 0.0), seconds

    def wall_rate(self, now: float) -> float:
        """Bytes per second from this source over the recent samples, all its connections together."""
        old = next((s for s in self.samples if now - s[0] <= RECENT), None)
        if old is None or now - old[0] <= 0:
            return 0.0
        return (self.bytes - old[1]) / (now - old[0])

    def sample(self, now: float) -> None:
        if not self.open_since:
            self.samples.clear()  # idle: the recent rate is that of its next busy stretch
            return
        self.samples.append((now, self.bytes, self.connection_seconds(now)))

    def sampled_for(self, now: float) -> float:
        """How long this source has been sampled while it had requests open."""
        return now - self.samples[0][0] if self.samples else 0.0


def pick_source(sources: list[Source], now: float, *, need_ranges: bool) -> Source | float | None:
    """The active source with the fewest open requests (ties: the preferred one), skipping sources
    cooling down after a Retry-After. Returns seconds to wait when every usable source is cooling
    down, None when no usable source is left."""
    usable = [s for s in sources if s.state == "active" and (s.ranges or not need_ranges)]
    if not usable:
        return None
    ready = [s for s in usable if s.cooldown_until <= now]
    if not ready:
        return max(0.0, min(s.cooldown_until for s in usable) - now)
    open_ok = [s for s in ready if s.cap is None or len(s.open_since) < s.cap]
    if not open_ok:
        return 0.2  # every source is at its connection cap: wait for one to free up
    return min(open_ok, key=lambda s: (len(s.open_since), s.index))


# Ranged answers in a row without the asked-for range before a source that never served one
# counts as not serving ranges.
RANGE_FAILURES = 2

# A source is "far slower" when its per-connection speed is below the best one's divided by this,
# measured over at least MIN_MEASURE seconds of its own connection time.
SLOW_FACTOR = 4.0  # the same share of the best as routing's decide.FRACTION
MIN_MEASURE = 1.5
MIN_BEST_BYTES = 512 * 1024
RECENT = 3.0  # seconds of samples the recent rate is taken over
# Under this (bytes/s, the whole source) for FLOOR_SECONDS while another source could serve, a source is
# left for that one even before the other is measured (routing's decide.FLOOR_BPS)
FLOOR_BPS = 256 * 1024
FLOOR_SECONDS = 3.0
READMIT_SECONDS = 20.0  # a source given up for slowness is tried once more after this (it may have recovered)


def far_slower(sources: list[Source], now: float, *, factor: float = SLOW_FACTOR, min_seconds: float = MIN_MEASURE) -> list[Source]:
    """Active sources to demote for slowness (never the last active one, never the fastest)."""
    active = [s for s in sources if s.state == "active"]
    if len(active) < 2:
        return []
    rates = {id(s): s.rate(now) for s in active}
    measured = [s for s in active if rates[id(s)][1] >= min_seconds or s.bytes >= MIN_BEST_BYTES]
    if not measured:
        return []
    best = max(measured, key=lambda s: rates[id(s)][0])
    best_rate = rates[id(best)][0]
    if best.bytes < MIN_BEST_BYTES or best_rate <= 0:
        return []
    return [
        s
        for s in active
        if s is not best and rates[id(s)][1] >= min_seconds and rates[id(s)][0] * factor < best_rate
    ]


def under_floor(sources: list[Source], now: float, *, floor: float = FLOOR_BPS, seconds: float = FLOOR_SECONDS) -> list[Source]:
    """Active sources delivering under `floor` bytes/s (all their connections together) for `seconds`
    while another active source, not known to be as slow, could take their work."""
    active = [s for s in sources if s.state == "active"]
    if len(active) < 2:
        return []
    slow = [s for s in active if s.open_since and s.sampled_for(now) >= seconds and s.wall_rate(now) < floor]
    if not slow:
        return []
    others = [s for s in active if s not in slow]
    return slow if others else []


def readmit(sources: list[Source], now: float, *, after: float = READMIT_SECONDS) -> list[Source]:
    """Sources given up for slowness long enough ago to be tried again (once each)."""
    out = []
    for source in sources:
        if source.state == "demoted" and source.demoted_at is not None and not source.readmitted \
                and now - source.demoted_at >= after:
            out.append(source)
    return out
