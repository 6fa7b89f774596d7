"""Automatic routing, wired in one direction: catalogue -> measure -> decide -> (cache) -> the plan.

`RouteInputs` is everything routing needs from the settings, read once by the plan (`select_mirrors`);
no step below takes the settings. `route_auto` builds the targets from the catalogue, has them measured
(`measure.probe_all`, injected as `probe`), decides (`decide.choose_routes`, pure) and keeps the result
in the route cache (`routecache.py`) for an hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.i18n import t
from sdsetup.net import routecache
from sdsetup.net.decide import BUDGET_SECONDS, Route, SourceCheck, choose_routes
from sdsetup.net.mirror_profiles import Catalog, Mirror
from sdsetup.net.rewrite import rewrite_for
from sdsetup.redact import redact_url
from sdsetup.settings import CHANNELS

ProbeFn = Callable[[list[tuple]], "list[SourceCheck]"]
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy")


@dataclass(frozen=True)
class RouteInputs:
    """What routing needs to know about this machine's way out and where to keep its decision."""

    cache_dir: Path
    proxy: str | None  # --proxy / config (may carry a password: never shown)
    ca_bundle: str | None
    env_proxy: bool  # HTTP(S)_PROXY/ALL_PROXY set and no explicit proxy
    way_out: str | None  # the proxy in effect (explicit, else the environment's)


def effective_proxy(proxy: str | None, env: Mapping[str, str]) -> str | None:
    if proxy:
        return proxy
    for name in _PROXY_VARS:
        if env.get(name):
            return env[name]
    return None


def inputs_from(settings: Any, env: Mapping[str, str]) -> RouteInputs:
    """The one place routing reads the settings."""
    env_proxy = not settings.proxy and any(env.get(name) for name in _PROXY_VARS)
    from sdsetup.net.session import trust_store  # public CAs plus the user's: git probes verify with it

    return RouteInputs(Path(settings.cache_dir), settings.proxy, trust_store(settings), env_proxy,
                       effective_proxy(settings.proxy, env))


def pool_of(catalog: Catalog, fallback_profile: str = "cn") -> dict[str, tuple[Mirror, ...]]:
    official = catalog.profile("official").channels
    fallback = catalog.profile(fallback_profile).channels
    return {ch: tuple(official[ch][:1]) + tuple(m for m in fallback[ch] if m != official[ch][0]) for ch in CHANNELS}


def targets(catalog: Catalog, channels: Mapping[str, Iterable[Mirror]]) -> list[tuple[Mirror, str, str | None]]:
    """(mirror, URL to check, URL to time or None) per candidate: the channel's probe URL and rate file as
    that mirror serves them. A git-only GitHub candidate is timed by a shallow fetch of the probe repository."""
    out = []
    seen = set()
    for channel in CHANNELS:
        for mirror in channels.get(channel, ()):
            url = rewrite_for(mirror, catalog.probe_urls[channel])
            if not url or (channel, url) in seen:
                continue
            seen.add((channel, url))
            rate = catalog.rate_urls.get(channel)
            rate_url = rewrite_for(mirror, rate) if rate else None
            if rate_url is None and channel == "github" and "git" in mirror.serves and url.endswith(".git"):
                rate_url = url
            out.append((mirror, url, rate_url))
    return out


def measurer(inputs: RouteInputs, session_factory: Callable[[], Any], *, budget: float = BUDGET_SECONDS) -> ProbeFn:
    """The default measure step: targets -> checks, through the session `session_factory` makes (built
    from the settings by the plan, once, when routing runs) and the proxy and CA bundle of `inputs`."""

    def run(items: list[tuple]) -> list[SourceCheck]:
        from sdsetup.net.measure import probe_all

        return probe_all(session_factory(), items, budget=budget, proxy=inputs.proxy, ca_bundle=inputs.ca_bundle)

    return run


def route_auto(
    catalog: Catalog,
    inputs: RouteInputs,
    probe: ProbeFn,
    *,
    fallback_profile: str = "cn",
    use_cache: bool = True,
    now: float | None = None,
    proxy_check: Callable[[str], Any] | None = None,
) -> tuple[dict[str, tuple[Mirror, ...]], dict[str, Route], tuple[str, ...]]:
    """Measure every candidate of the official profile and `fallback_profile`, decide, cache for an hour.

    When nothing answered at all and there is a proxy, `proxy_check` (measure.check_proxy) asks the proxy
    itself: a dead or stalled proxy is a network error that names it now, not ten minutes of git retries later."""
    official = catalog.profile("official").channels
    fallback = catalog.profile(fallback_profile).channels
    pool = pool_of(catalog, fallback_profile)
    key = routecache.cache_key(pool, inputs.proxy, inputs.env_proxy)
    path = routecache.cache_path(inputs.cache_dir)
    if use_cache:
        cached = routecache.load_cached(path, key, pool, now=now)
        if cached is not None:
            return cached[0], cached[1], ()
    checks = probe(targets(catalog, pool))
    channels, routes = choose_routes(official, fallback, checks)
    answered = any(check.ok for check in checks)
    if not answered and inputs.way_out and proxy_check is not None:
        verdict = proxy_check(inputs.way_out)
        if not verdict.ok:
            raise SdsetupError(
                t("the proxy {proxy} {detail}: no source of any channel could be reached through it",
                  proxy=redact_url(inputs.way_out), detail=verdict.detail),
                t("check that the proxy program runs and listens there (`sdsetup check --network`), or drop it "
                  "(--proxy / HTTPS_PROXY) and let sdsetup use mirrors (--mirror cn)"),
                ExitCode.NETWORK,
            )
    if use_cache and answered:  # "nothing answered" may be a passing outage: decide again next run
        routecache.save_cache(path, key, channels, routes, now=now)
    notes = tuple(f"{c.channel}: {c.name} {'ok' if c.ok else 'failed'} {c.method} {c.seconds * 1000:.0f} ms"
                  + (f", {c.rate_bps / 1e3:.0f} KB/s" if c.rate_bps is not None else "")
                  + (f" ({c.error})" if c.error else "") for c in checks)
    return channels, routes, notes
