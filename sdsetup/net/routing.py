"""Automatic routing (pure decisions + the ranking cache): which source serves each channel, and why.

With no `--mirror`, sdsetup checks per channel whether the official host answers (a real probe, see
`reachability.py`) and, where it does not, takes the best reachable candidate of the fallback pool
(`cn`), ranked by the same probe. The result is a `Route` per channel, which the plan shows to people
and in `--json`. A ranking is kept in the cache dir for `CACHE_SECONDS` so a rerun does not probe again.

This module imports only the profile data; the probe is injected (mirrors.select_mirrors passes one).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from sdsetup.net.mirror_profiles import Mirror
from sdsetup.settings import CHANNELS

CACHE_NAME = "mirror-routes.json"
CACHE_SECONDS = 3600.0
CACHE_VERSION = 1
BUDGET_SECONDS = 4.0  # all channels are probed at once; this bounds the wait of a command that needs the network


@dataclass(frozen=True)
class SourceCheck:
    """One candidate probed once: reachable or not, and how long the probe took."""

    channel: str
    name: str
    url: str  # redacted
    ok: bool
    status: int | None
    latency_s: float | None  # until the response headers (or git's first answer) arrived
    seconds: float  # the whole probe
    bytes: int
    error: str | None = None
    mirror: Mirror | None = field(default=None, compare=False, repr=False)
    method: str = "GET"  # GET (a small ranged request) or "git ls-remote"

    @property
    def throughput_bps(self) -> float | None:
        body_seconds = self.seconds - (self.latency_s or 0.0)
        if not self.ok or self.bytes <= 0 or body_seconds <= 0:
            return None
        return self.bytes / body_seconds

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
            "error": self.error,
        }


@dataclass(frozen=True)
class Route:
    """Which source serves a channel first, and why (for people and --json)."""

    channel: str
    source: str  # the first candidate's name
    reason: str
    probe_ms: int | None = None  # the chosen source's probe time; None when nothing was probed
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "reason": self.reason, "probe_ms": self.probe_ms, "cached": self.cached}


def rank_key(check: SourceCheck) -> tuple:
    """Reachable first, then by the time the probe took (latency + transfer), then by name."""
    return (0 if check.ok else 1, check.seconds if check.ok else float("inf"), check.name)


def rank(checks: Iterable[SourceCheck]) -> list[SourceCheck]:
    return sorted(checks, key=rank_key)


def ranked_by_channel(checks: Iterable[SourceCheck]) -> dict[str, list[SourceCheck]]:
    by_channel: dict[str, list[SourceCheck]] = {}
    for check in checks:
        by_channel.setdefault(check.channel, []).append(check)
    return {ch: rank(by_channel[ch]) for ch in CHANNELS if ch in by_channel}


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(round(seconds * 1000))


def choose_routes(
    official: Mapping[str, tuple[Mirror, ...]],
    fallback: Mapping[str, tuple[Mirror, ...]],
    checks: Iterable[SourceCheck],
    channels: Iterable[str] = CHANNELS,
) -> tuple[dict[str, tuple[Mirror, ...]], dict[str, Route]]:
    """Pure: per channel, the official host when it answered; else the reachable fallback candidates,
    best first, then the fallback candidates the probe could not test (e.g. a release-only GitHub proxy:
    its files may still serve), with the official host kept last (it may come back)."""
    ranked = ranked_by_channel(checks)
    out: dict[str, tuple[Mirror, ...]] = {}
    routes: dict[str, Route] = {}
    for channel in channels:
        upstream = official[channel][0]
        results = ranked.get(channel, [])
        up = next((r for r in results if r.mirror == upstream), None)
        if up is not None and up.ok:
            out[channel] = official[channel]
            routes[channel] = Route(channel, upstream.name, f"{upstream.name} answered ({up.method})", _ms(up.seconds))
            continue
        why = up.error if up is not None and up.error else "not probed"
        reachable = [r for r in results if r.ok and r.mirror is not None and r.mirror != upstream]
        probed = {r.mirror for r in results}
        untested = tuple(m for m in fallback.get(channel, ()) if m not in probed and m != upstream)
        if reachable:
            best = reachable[0]
            out[channel] = tuple(r.mirror for r in reachable) + untested + official[channel]  # type: ignore[misc]
            routes[channel] = Route(channel, best.name, f"{upstream.name} did not answer ({why}); "
                                    f"{best.name} answered fastest of {len(results) - 1} mirror(s)", _ms(best.seconds))
        else:
            out[channel] = official[channel]
            routes[channel] = Route(channel, upstream.name, f"{upstream.name} did not answer ({why}) and no mirror "
                                    f"answered either; trying {upstream.name} anyway")
    return out, routes


# ---------------------------------------------------------------------------------------------------
# The ranking cache: {"version", "key", "saved", "channels": {ch: {"order": [names], "route": {...}}}}


def cache_key(pool: Mapping[str, Iterable[Mirror]], proxy: str | None, env_proxy: bool) -> str:
    """Changes when the candidates or the way out (proxy) change; the proxy only as a digest."""
    doc = {
        "pool": {ch: [[m.name, m.url] for m in pool.get(ch, ())] for ch in CHANNELS},
        "proxy": hashlib.sha256((proxy or "").encode()).hexdigest() if proxy else None,
        "env_proxy": env_proxy,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def cache_path(cache_dir: Path) -> Path:
    return Path(cache_dir) / CACHE_NAME


def load_cached(path: Path, key: str, pool: Mapping[str, tuple[Mirror, ...]], *, now: float | None = None,
                max_age: float = CACHE_SECONDS) -> tuple[dict[str, tuple[Mirror, ...]], dict[str, Route]] | None:
    """The cached routing when it is fresh and was made for the same candidates; else None."""
    now = time.time() if now is None else now
    try:
        doc = json.loads(path.read_text("utf-8"))
        if doc.get("version") != CACHE_VERSION or doc.get("key") != key:
            return None
        age = now - float(doc["saved"])
        if not 0 <= age <= max_age:
            return None
        channels: dict[str, tuple[Mirror, ...]] = {}
        routes: dict[str, Route] = {}
        for channel in CHANNELS:
            entry = doc["channels"][channel]
            by_key = {(m.name, m.url): m for m in pool[channel]}
            channels[channel] = tuple(by_key[(name, url)] for name, url in entry["order"])
            r = entry["route"]
            routes[channel] = Route(channel, str(r["source"]), f"{r['reason']} (probed {age / 60:.0f} min ago)",
                                    r.get("probe_ms"), cached=True)
        return channels, routes
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # missing, damaged or from another version: probe again


def save_cache(path: Path, key: str, channels: Mapping[str, tuple[Mirror, ...]], routes: Mapping[str, Route], *,
               now: float | None = None) -> None:
    """Best effort (a read-only cache dir only means the next run probes again); atomic replace."""
    doc = {
        "version": CACHE_VERSION,
        "key": key,
        "saved": time.time() if now is None else now,
        "channels": {ch: {"order": [[m.name, m.url] for m in channels[ch]],
                          "route": {"source": routes[ch].source, "reason": routes[ch].reason, "probe_ms": routes[ch].probe_ms}}
                     for ch in CHANNELS if ch in channels and ch in routes},
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".routes-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(doc, handle, indent=1)
        os.replace(tmp, path)
    except OSError:
        pass
