"""Mirror probing (effects): fetch each candidate's small known file concurrently, time it, rank.

The decisions (which URL to fetch for a candidate, how to rank results, what `auto` picks from the
results) are pure functions in mirrors.py and below; this module only does the HTTP.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from sdsetup.net.mirrors import Catalog, Mirror, probe_targets, rank_key
from sdsetup.redact import redact_text, redact_url, secrets_in_url
from sdsetup.settings import CHANNELS, Settings

if TYPE_CHECKING:
    import requests

# Short on purpose: a mirror that takes longer than this to answer a tiny file is not worth using.
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 5.0
MAX_BYTES = 256 * 1024
MAX_SECONDS = 8.0


@dataclass(frozen=True)
class ProbeResult:
    channel: str
    name: str
    url: str  # redacted
    ok: bool
    status: int | None
    latency_s: float | None  # until the response headers arrived
    seconds: float  # the whole probe
    bytes: int
    error: str | None = None
    mirror: Mirror | None = field(default=None, compare=False, repr=False)

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
            "ok": self.ok,
            "status": self.status,
            "latency_s": None if self.latency_s is None else round(self.latency_s, 4),
            "seconds": round(self.seconds, 4),
            "bytes": self.bytes,
            "throughput_bps": None if self.throughput_bps is None else round(self.throughput_bps),
            "error": self.error,
        }


def _describe(exc: BaseException, secrets: list[str]) -> str:
    import requests

    if isinstance(exc, requests.exceptions.ProxyError):
        kind = "proxy refused or unreachable"
    elif isinstance(exc, requests.exceptions.ConnectTimeout):
        kind = "connect timed out"
    elif isinstance(exc, (requests.exceptions.ReadTimeout, TimeoutError)):
        kind = "timed out"
    elif isinstance(exc, requests.exceptions.SSLError):
        kind = "TLS error"
    elif isinstance(exc, requests.exceptions.ConnectionError):
        kind = "connection failed"
    else:
        kind = type(exc).__name__
    text = str(exc)
    # requests nests urllib3's story several levels deep; the OS reason at the bottom is what helps.
    errno = re.findall(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    status = re.search(r"\b(\d{3} [A-Z][A-Za-z ]+)", text) if "Tunnel connection failed" in text else None
    detail = errno[-1].strip() if errno else status.group(1).strip() if status else text.splitlines()[0][:160] if text else ""
    return redact_text(f"{kind}: {detail}" if detail else kind, secrets)


def probe_one(session: "requests.Session", mirror: Mirror, url: str, *, connect_timeout: float = CONNECT_TIMEOUT,
              read_timeout: float = READ_TIMEOUT, max_bytes: int = MAX_BYTES, max_seconds: float = MAX_SECONDS,
              secrets: list[str] | None = None) -> ProbeResult:
    secrets = list(secrets or []) + secrets_in_url(url)
    start = time.monotonic()
    latency = None
    received = 0
    try:
        with session.get(url, stream=True, timeout=(connect_timeout, read_timeout), allow_redirects=True) as response:
            latency = time.monotonic() - start
            if response.status_code >= 400:
                return ProbeResult(mirror.channel, mirror.name, redact_url(url), False, response.status_code, latency,
                                   time.monotonic() - start, 0, f"HTTP {response.status_code}", mirror)
            for chunk in response.iter_content(64 * 1024):
                received += len(chunk)
                if received >= max_bytes or time.monotonic() - start > max_seconds:
                    break
            return ProbeResult(mirror.channel, mirror.name, redact_url(url), True, response.status_code, latency,
                               time.monotonic() - start, received, None, mirror)
    except Exception as exc:  # any failure is a verdict about this mirror, never a crash of the probe
        return ProbeResult(mirror.channel, mirror.name, redact_url(url), False, None, latency,
                           time.monotonic() - start, received, _describe(exc, secrets), mirror)


def probe_all(session: "requests.Session", targets: Iterable[tuple[Mirror, str]], *, secrets: list[str] | None = None,
              **limits: Any) -> list[ProbeResult]:
    """Probe every target at once; results in the order of `targets`."""
    targets = list(targets)
    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(32, len(targets))) as pool:
        futures = [pool.submit(probe_one, session, mirror, url, secrets=secrets, **limits) for mirror, url in targets]
        return [future.result() for future in futures]


def ranked_by_channel(results: Iterable[ProbeResult]) -> dict[str, list[ProbeResult]]:
    by_channel: dict[str, list[ProbeResult]] = {}
    for result in results:
        by_channel.setdefault(result.channel, []).append(result)
    order = {ch: i for i, ch in enumerate(CHANNELS)}
    return {
        ch: sorted(items, key=lambda r: rank_key(r.to_json()))
        for ch, items in sorted(by_channel.items(), key=lambda kv: order.get(kv[0], 99))
    }


def _session(settings: Settings, session: "requests.Session | None") -> "requests.Session":
    if session is not None:
        return session
    from sdsetup.net.session import build_session

    return build_session(settings, pool_size=32)


def probe_channels(settings: Settings, catalog: Catalog, channels: Mapping[str, Iterable[Mirror]],
                   session: "requests.Session | None" = None, **limits: Any) -> dict[str, list[ProbeResult]]:
    """Probe every candidate in `channels`; ranked per channel, best first."""
    targets = probe_targets(catalog, channels)
    results = probe_all(_session(settings, session), targets, secrets=secrets_in_url(settings.proxy), **limits)
    return ranked_by_channel(results)


def choose_auto(official: Mapping[str, tuple[Mirror, ...]], ranked: Mapping[str, list[ProbeResult]]
                ) -> tuple[dict[str, tuple[Mirror, ...]], list[str]]:
    """Pure: keep a channel official when its host answered; else the reachable mirrors, best first,
    with the official host kept last (it may come back)."""
    channels: dict[str, tuple[Mirror, ...]] = {}
    notes = []
    for channel in CHANNELS:
        upstream = official[channel][0]
        results = ranked.get(channel, [])
        upstream_result = next((r for r in results if r.mirror == upstream), None)
        if upstream_result is not None and upstream_result.ok:
            channels[channel] = official[channel]
            notes.append(f"{channel}: {upstream.name} reachable ({upstream_result.seconds:.2f} s), no mirror needed")
            continue
        reachable = [r for r in results if r.ok and r.mirror is not None and r.mirror != upstream]
        why = upstream_result.error if upstream_result else "not probed"
        if reachable:
            channels[channel] = tuple(r.mirror for r in reachable) + official[channel]  # type: ignore[misc]
            notes.append(f"{channel}: {upstream.name} unreachable ({why}); using {reachable[0].name} "
                         f"({reachable[0].seconds:.2f} s)")
        else:
            channels[channel] = official[channel]
            notes.append(f"{channel}: {upstream.name} unreachable ({why}) and no mirror answered; staying with {upstream.name}")
    return channels, notes


def auto_channels(catalog: Catalog, settings: Settings, session: "requests.Session | None" = None,
                  *, fallback_profile: str = "cn", **limits: Any) -> tuple[dict[str, tuple[Mirror, ...]], list[str]]:
    """`--mirror auto`: probe the official hosts and the fallback profile's mirrors in one concurrent round."""
    official = catalog.profile("official").channels
    fallback = catalog.profile(fallback_profile).channels
    combined = {ch: tuple(official[ch][:1]) + tuple(m for m in fallback[ch] if m != official[ch][0]) for ch in CHANNELS}
    ranked = probe_channels(settings, catalog, combined, session, **limits)
    return choose_auto(official, ranked)


def ranked_json(ranked: Mapping[str, list[ProbeResult]]) -> dict[str, list[dict[str, Any]]]:
    return {ch: [r.to_json() for r in results] for ch, results in ranked.items()}


