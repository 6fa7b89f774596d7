"""Is it the proxy or the host? `check --network` and the one line for a first network failure.

`network_report(settings)` (effects: the proxy handshake and the routing probes) checks the configured
proxy with a real handshake (HTTP CONNECT, or the SOCKS5 greeting) and then every channel's official
host and its cn mirrors through it, at once, within a few seconds. `network_items(report)` (pure) turns
that into check items; a proxy that does not answer is never "ok", and neither is a channel probed
through it. `explain_failure` (pure) words the first network failure of any command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping
from urllib.parse import urlsplit

from sdsetup.i18n import N_, t
from sdsetup.net.measure import ProxyVerdict, check_proxy
from sdsetup.redact import redact_text, redact_url
from sdsetup.settings import CHANNELS

if TYPE_CHECKING:  # types only: importing these here would slow start-up or make a circle
    from sdsetup.settings import Settings

__all__ = ["ProxyVerdict", "check_proxy", "explain_failure", "network_items", "network_report"]
_NEXT_STEP_HOST = N_("run `sdsetup mirrors probe` to see which sources answer; behind a firewall use --mirror cn "
                   "(or --proxy URL for a proxy that reaches the official hosts)")
# check --network has tried the official host and every cn mirror already
_NOTHING_ANSWERS = N_("neither the official host nor a cn mirror answers from here: use a proxy that reaches them "
                    "(--proxy URL), or add a mirror you can reach to a profile in your config file (docs/mirrors.md)")
_NEXT_STEP_PROXY = N_("check that the proxy program runs and listens there (`sdsetup check --network`), "
                    "or drop it (--proxy / HTTPS_PROXY) and use --mirror cn")


def network_report(settings: Settings, *, env: Mapping[str, str] | None = None, probe: Callable | None = None,
                   proxy_check: Callable[[str], ProxyVerdict] = check_proxy) -> dict[str, Any]:
    """Probe the proxy (when there is one) and every channel (official host and cn pool) through it."""
    import os

    from sdsetup.net import autoroute
    from sdsetup.net.decide import choose_routes, ranked_by_channel
    from sdsetup.net.mirror_profiles import load_catalog

    env = os.environ if env is None else env
    inputs = autoroute.inputs_from(settings, env)
    proxy = inputs.way_out
    verdict = proxy_check(proxy) if proxy else None
    catalog = load_catalog(settings)
    official = catalog.profile("official").channels
    fallback = catalog.profile("cn").channels
    pool = autoroute.pool_of(catalog)
    if probe is None:
        from sdsetup.net.session import build_session

        probe = autoroute.measurer(inputs, lambda: build_session(settings, pool_size=48))
    checks = probe(autoroute.targets(catalog, pool))
    _channels, routes = choose_routes(official, fallback, checks)
    ranked = ranked_by_channel(checks)
    return {
        "proxy": verdict.to_json() if verdict else None,
        "proxy_from": "settings" if settings.proxy else ("environment" if proxy else None),
        "channels": {
            ch: {
                "official": official[ch][0].name,
                "official_ok": any(c.ok and c.mirror == official[ch][0] for c in ranked.get(ch, [])),
                "route": routes[ch].to_json(),
                "reachable": [c.name for c in ranked.get(ch, []) if c.ok],
                "checks": [c.to_json() for c in ranked.get(ch, [])],
            }
            for ch in CHANNELS
        },
    }


def network_items(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Check items ({id, name, status, value, fix}) from network_report: pure."""
    items = []
    proxy = report.get("proxy")
    proxy_dead = bool(proxy) and not proxy["ok"]
    if proxy:
        items.append({"id": "network-proxy", "name": t("proxy"), "status": "ok" if proxy["ok"] else "fail",
                      "value": f"{proxy['url']}: {proxy['detail']}", "fix": None if proxy["ok"] else t(_NEXT_STEP_PROXY)})  # i18n: keep
    for channel, info in report["channels"].items():
        route = info["route"]
        if info["official_ok"]:
            status, value, fix = "ok", t("{host} answers ({ms} ms)", host=info["official"], ms=route["probe_ms"]), None
        elif info["reachable"]:
            status = "warn"
            value = t("{host} does not answer; {source} does ({ms} ms)", host=info["official"], source=route["source"],
                      ms=route["probe_ms"])
            fix = t("nothing to do: installs route {channel} to {source} by themselves (or pass --mirror cn)",
                    channel=channel, source=route["source"])
        else:
            status = "fail"
            value = t("no source answers ({host}: {error})", host=info["official"], error=_first_error(info))
            fix = (t("the proxy does not answer: {next_step}", next_step=t(_NEXT_STEP_PROXY)) if proxy_dead
                   else t(_NOTHING_ANSWERS))
        if proxy_dead and status == "ok":  # impossible by construction; never call a dead proxy's route fine
            status = "warn"
        items.append({"id": f"network-{channel}", "name": t("network {channel}", channel=channel), "status": status, "value": value, "fix": fix})
    return items


def _first_error(info: Mapping[str, Any]) -> str:
    for check in info["checks"]:
        if check["name"] == info["official"] and check.get("error"):
            return check["error"]
    return "no answer"


def explain_failure(url: str, error: str, *, proxy: str | None = None) -> tuple[str, str]:
    """(error line, hint) for the first network failure: whether the proxy or the host failed, once,
    bounded, redacted, and the next step."""
    host = urlsplit(url).hostname or redact_url(url)
    reason = redact_text(" ".join(str(error).split()))[:160]
    proxy_failed = proxy is not None and any(word in reason.lower() for word in ("proxy", "tunnel", "407"))
    if proxy_failed:
        return (t("the proxy {proxy} failed on the way to {host}: {reason}", proxy=redact_url(proxy), host=host, reason=reason),
                t(_NEXT_STEP_PROXY))
    if proxy:
        return (t("could not reach {host} (through the proxy {proxy}, which answered): {reason}", host=host,
                  proxy=redact_url(proxy), reason=reason), t(_NEXT_STEP_HOST))
    return t("could not reach {host}: {reason}", host=host, reason=reason), t(_NEXT_STEP_HOST)
