"""Automatic routing, the decision (pure): which source serves each channel, in which order, and why.

The pipeline runs in one direction: the catalogue (`mirror_profiles.py`) names the candidates, the
measurement (`measure.py`) checks each one (does it answer, how fast does the host that serves the bytes
deliver a real file), this module decides from those measurements alone, `routecache.py` keeps the
decision for an hour, `autoroute.py` wires the steps together, and the plan (`mirrors.MirrorPlan`)
hands the ordered sources to pip, git and the download engine.

The rule: a source that answered is ranked by its measured rate (bytes/s of a ranged read of a real
file on the byte-serving host), latency breaking ties. A source far slower than the best - under
`FLOOR_BPS`, or under `FRACTION` of the best - is not chosen while a faster one exists; the official
host is kept last (it may come back), a mirror that is slow or failed is left out of the order.
No I/O here: the tests feed recorded measurements.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from sdsetup.net.mirror_profiles import Mirror
from sdsetup.settings import CHANNELS

BUDGET_SECONDS = 4.0  # all channels are measured at once; this bounds the wait of a command that needs the network
FLOOR_BPS = 256 * 1024  # under this, a source is slow whatever the others do (a 2.5 GB wheel would take hours)
FRACTION = 0.25  # under this share of the best measured rate, a source is far slower than the best
MIN_RATE_BYTES = 32 * 1024  # fewer body bytes than this say nothing about a rate (one TCP window)
BLOCK_BYTES = 4 * 1024 * 1024  # ranking weighs rate and latency by the time to fetch a block of this size
PREFER_OFFICIAL = 1.5  # a mirror goes before an official host that is not slow only when this much faster


@dataclass(frozen=True)
class SourceCheck:
    """One candidate measured once: reachable or not, how long it took, and (where a real file could be
    read from the host that serves the bytes) the rate of that read."""

    channel: str
    name: str
    url: str  # redacted
    ok: bool
    status: int | None
    latency_s: float | None  # until the response headers (or git's first answer) arrived
    seconds: float  # the whole check
    bytes: int
    error: str | None = None
    mirror: Mirror | None = field(default=None, compare=False, repr=False)
    method: str = "GET"  # GET (a small ranged request) or "git ls-remote"
    rate_bps: float | None = None  # measured on the byte-serving host (None: not measured)
    rate_url: str | None = None  # redacted: what the rate was measured on
    rate_note: str | None = None  # why no rate (no file on this source, the read failed, …)

    @property
    def throughput_bps(self) -> float | None:
        """The rate this source is ranked by: the byte host's read where measured, else None."""
        return self.rate_bps if self.ok else None

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "name": self.name,
            "url": self.url,
            "method": self.method,
            "ok": self.ok,
            "status": self.status,
            "latency_s": None if self.latency_s is None else round(self.latency_s, 4),
            "seconds": round(self.seconds, 4),
            "bytes": self.bytes,
            "throughput_bps": None if self.throughput_bps is None else round(self.throughput_bps),
            "rate_url": self.rate_url,
            "rate_note": self.rate_note,
            "error": self.error,
        }


@dataclass(frozen=True)
class Route:
    """Which source serves a channel first, and why (for people and --json)."""

    channel: str
    source: str  # the first candidate's name
    reason: str
    probe_ms: int | None = None  # the chosen source's check time; None when nothing was probed
    cached: bool = False
    rate_bps: float | None = None  # the chosen source's measured rate (None: not measured)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "reason": self.reason, "probe_ms": self.probe_ms, "cached": self.cached,
                "rate_bps": None if self.rate_bps is None else round(self.rate_bps)}


def human_rate(bps: float | None) -> str:
    """'11 MB/s', '98 KB/s' (decimal units, as download tools show them); '?' when unknown."""
    if bps is None:
        return "?"
    for unit, size in (("GB/s", 1e9), ("MB/s", 1e6), ("KB/s", 1e3)):
        if bps >= size:
            value = bps / size
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{bps:.0f} B/s"


def slow_limit(best_bps: float | None, *, floor: float = FLOOR_BPS, fraction: float = FRACTION) -> float:
    """The rate under which a source counts as slow, given the best measured rate (pure)."""
    return max(floor, fraction * best_bps) if best_bps else floor


def tier(check: SourceCheck, limit: float) -> int:
    """0: answered, measured, not slow; 1: answered, not measured; 2: answered but slow; 3: failed."""
    if not check.ok:
        return 3
    if check.rate_bps is None:
        return 1
    return 2 if check.rate_bps < limit else 0


def rank(checks: Iterable[SourceCheck], *, floor: float = FLOOR_BPS, fraction: float = FRACTION) -> list[SourceCheck]:
    """Best first: by tier, then the time a block would take (latency + BLOCK_BYTES / rate), then the name."""
    checks = list(checks)
    best = max((c.rate_bps for c in checks if c.ok and c.rate_bps is not None), default=None)
    limit = slow_limit(best, floor=floor, fraction=fraction)

    def key(check: SourceCheck) -> tuple:
        latency = check.latency_s if check.latency_s is not None else check.seconds
        if not check.ok:
            return (3, float("inf"), check.name)
        # The time one block would take: rate decides between a fast and a slow source, latency between
        # two that deliver alike (a far host's round trips cost each request).
        cost = latency + (BLOCK_BYTES / check.rate_bps if check.rate_bps else 0.0)
        return (tier(check, limit), cost, check.name)

    return sorted(checks, key=key)


def ranked_by_channel(checks: Iterable[SourceCheck]) -> dict[str, list[SourceCheck]]:
    by_channel: dict[str, list[SourceCheck]] = {}
    for check in checks:
        by_channel.setdefault(check.channel, []).append(check)
    return {ch: rank(by_channel[ch]) for ch in CHANNELS if ch in by_channel}


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(round(seconds * 1000))


def _what(check: SourceCheck) -> str:
    if check.rate_bps is not None:
        return f"{check.name} {human_rate(check.rate_bps)}"
    return f"{check.name} answered ({check.method})"


def choose_routes(
    official: Mapping[str, tuple[Mirror, ...]],
    fallback: Mapping[str, tuple[Mirror, ...]],
    checks: Iterable[SourceCheck],
    channels: Iterable[str] = CHANNELS,
    *,
    floor: float = FLOOR_BPS,
    fraction: float = FRACTION,
) -> tuple[dict[str, tuple[Mirror, ...]], dict[str, Route]]:
    """Per channel: the answering candidates best first (see `rank`), slow mirrors and failed ones left
    out, then the fallback candidates that could not be checked (a release-only GitHub proxy: its files
    may still serve), with the official host kept (last unless it is the best)."""
    ranked = ranked_by_channel(checks)
    out: dict[str, tuple[Mirror, ...]] = {}
    routes: dict[str, Route] = {}
    for channel in channels:
        upstream = official[channel][0]
        results = ranked.get(channel, [])
        best_rate = max((c.rate_bps for c in results if c.ok and c.rate_bps is not None), default=None)
        limit = slow_limit(best_rate, floor=floor, fraction=fraction)
        up = next((r for r in results if r.mirror == upstream), None)
        answered = [r for r in results if r.ok and r.mirror is not None]
        probed = {r.mirror for r in results}
        untested = tuple(m for m in fallback.get(channel, ()) if m not in probed and m != upstream)
        if not answered:
            why = up.error if up is not None and up.error else "not probed"
            out[channel] = official[channel]
            routes[channel] = Route(channel, upstream.name, f"{upstream.name} did not answer ({why}) and no mirror "
                                    f"answered either; trying {upstream.name} anyway")
            continue
        if up is not None and up.ok and tier(answered[0], limit) == 1 and tier(up, limit) == 1:
            # Nothing timed (no rate file on any source): the official host, which answered, is not
            # second to a mirror on latency alone.
            answered = [up] + [r for r in answered if r is not up]
        if (up is not None and up.ok and answered[0] is not up and tier(up, limit) == 0 and tier(answered[0], limit) == 0
                and (answered[0].rate_bps or 0.0) < PREFER_OFFICIAL * (up.rate_bps or 0.0)):
            answered = [up] + [r for r in answered if r is not up]  # measurement noise does not move a channel
        best = answered[0]
        everyone_slow = tier(best, limit) == 2
        # The order the engine and pip get: every answering source that is not slow (all of them when all
        # are slow), the untested fallbacks, the official host last unless it is among the chosen.
        keep = [r for r in answered if tier(r, limit) < 2 or everyone_slow]
        order = [r.mirror for r in keep] + list(untested)
        if upstream not in order:
            order += list(official[channel])
        out[channel] = tuple(dict.fromkeys(order))  # type: ignore[arg-type]
        routes[channel] = Route(channel, best.name, _reason(upstream, up, best, answered, limit, everyone_slow, len(results)),
                                _ms(best.latency_s if best.latency_s is not None else best.seconds), rate_bps=best.rate_bps)
    return out, routes


def _reason(upstream: Mirror, up: SourceCheck | None, best: SourceCheck, answered: list[SourceCheck], limit: float,
            everyone_slow: bool, probed: int) -> str:
    if everyone_slow:
        down = "" if up is None or up.ok else f"{upstream.name} did not answer ({up.error or 'no answer'}); "
        return f"{down}every source is slow (under {human_rate(limit)}); {_what(best)} is the fastest of {len(answered)}"
    if best.mirror == upstream:
        others = [r for r in answered if r is not best]
        return f"{_what(best)}" + (f", fastest of {len(answered)}" if others else "")
    if up is None or not up.ok:
        why = up.error if up is not None and up.error else "not probed"
        return f"{upstream.name} did not answer ({why}); {_what(best)}, fastest of {probed - 1} mirror(s)"
    if up.rate_bps is not None and up.rate_bps < limit:
        return f"{upstream.name} is slow ({human_rate(up.rate_bps)}); {_what(best)}, fastest of {len(answered)}"
    return f"{_what(best)}, fastest of {len(answered)} ({_what(up)})"
