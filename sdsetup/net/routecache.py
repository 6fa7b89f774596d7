"""The routing cache: the last decision of `decide.choose_routes`, kept for `CACHE_SECONDS` so a rerun
does not measure again. One JSON file in the cache dir:
{"version", "key", "saved", "channels": {ch: {"order": [[name, url]], "route": {...}}}}.

A damaged, stale, foreign or empty entry is a miss (measure again), never an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Iterable, Mapping

from sdsetup.net.decide import Route
from sdsetup.net.mirror_profiles import Mirror
from sdsetup.settings import CHANNELS

CACHE_NAME = "mirror-routes.json"
CACHE_SECONDS = 3600.0
CACHE_VERSION = 2  # 2: routes carry the measured rate


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
            order = tuple(by_key[(name, url)] for name, url in entry["order"])
            if not order:
                return None  # an empty order routes nowhere: measure again (it once made every command exit 70)
            channels[channel] = order
            r = entry["route"]
            rate = r.get("rate_bps")
            routes[channel] = Route(channel, str(r["source"]), f"{r['reason']} (measured {age / 60:.0f} min ago)",
                                    r.get("probe_ms"), cached=True,
                                    rate_bps=float(rate) if isinstance(rate, (int, float)) else None)
        return channels, routes
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # missing, damaged or from another version: measure again


def save_cache(path: Path, key: str, channels: Mapping[str, tuple[Mirror, ...]], routes: Mapping[str, Route], *,
               now: float | None = None) -> None:
    """Best effort (a read-only cache dir only means the next run measures again); atomic replace."""
    doc = {
        "version": CACHE_VERSION,
        "key": key,
        "saved": time.time() if now is None else now,
        "channels": {ch: {"order": [[m.name, m.url] for m in channels[ch]],
                          "route": {"source": routes[ch].source, "reason": routes[ch].reason,
                                    "probe_ms": routes[ch].probe_ms, "rate_bps": routes[ch].rate_bps}}
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
