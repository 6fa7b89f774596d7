"""Is it the proxy or the host? `check --network` and the one line for a first network failure.

`network_report(settings)` (effects: the proxy handshake and the routing probes) checks the configured
proxy with a real handshake (HTTP CONNECT, or the SOCKS5 greeting) and then every channel's official
host and its cn mirrors through it, at once, within a few seconds. `network_items(report)` (pure) turns
that into check items; a proxy that does not answer is never "ok", and neither is a channel probed
through it. `explain_failure` (pure) words the first network failure of any command.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from sdsetup.redact import redact_text, redact_url
from sdsetup.settings import CHANNELS

PROXY_TIMEOUT = 4.0
_NEXT_STEP_HOST = ("run `sdsetup mirrors probe` to see which sources answer; behind a firewall use --mirror cn "
                   "(or --proxy URL for a proxy that reaches the official hosts)")
_NEXT_STEP_PROXY = ("check that the proxy program runs and listens there (`sdsetup check --network`), "
                    "or drop it (--proxy / HTTPS_PROXY) and use --mirror cn")


@dataclass(frozen=True)
class ProxyVerdict:
    url: str  # redacted
    ok: bool
    detail: str
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "ok": self.ok, "detail": self.detail, "ms": int(self.seconds * 1000)}


def _read_line(sock: socket.socket, deadline: float) -> bytes:
    data = b""
    while b"\r\n" not in data and len(data) < 4096:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        chunk = sock.recv(1024)
        if not chunk:
            break
        data += chunk
    return data


def check_proxy(proxy: str, *, target: str = "github.com:443", timeout: float = PROXY_TIMEOUT) -> ProxyVerdict:
    """A real handshake with the proxy: for http(s) proxies a CONNECT to `target` and its status line
    (any answer means the proxy works; 407 means it wants a login); for socks the SOCKS5 greeting."""
    import base64
    from urllib.parse import unquote

    shown = redact_url(proxy)
    parts = urlsplit(proxy)
    scheme = parts.scheme.lower()
    port = parts.port or (1080 if scheme.startswith("socks") else 443 if scheme == "https" else 8080)
    start = time.monotonic()
    deadline = start + timeout

    def verdict(ok: bool, detail: str) -> ProxyVerdict:
        return ProxyVerdict(shown, ok, detail, time.monotonic() - start)

    try:
        sock = socket.create_connection((parts.hostname or "", port), timeout=timeout)
    except socket.timeout:
        return verdict(False, f"no connection within {timeout:.0f} s")
    except OSError as exc:
        return verdict(False, f"refused or unreachable ({exc.strerror or exc})")
    with sock:
        try:
            if scheme.startswith("socks"):
                sock.sendall(b"\x05\x02\x00\x02")  # SOCKS5, methods: none, user/password
                reply = sock.recv(2) if deadline > time.monotonic() else b""
                if len(reply) == 2 and reply[0] == 5 and reply[1] in (0, 2):
                    return verdict(True, "answers (SOCKS5)")
                return verdict(False, "accepted the connection but did not answer as a SOCKS5 proxy")
            if scheme == "https":
                return verdict(True, "accepts connections (TLS proxy: handshake not checked)")
            request = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
            if parts.username:
                login = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
                request += f"Proxy-Authorization: Basic {base64.b64encode(login).decode()}\r\n"
            sock.sendall((request + "\r\n").encode())
            line = _read_line(sock, deadline).split(b"\r\n", 1)[0].decode("latin-1", "replace")
        except (TimeoutError, socket.timeout):
            return verdict(False, f"accepted the connection but did not answer within {timeout:.0f} s")
        except OSError as exc:
            return verdict(False, f"dropped the connection ({exc.strerror or exc})")
    fields = line.split()
    if len(fields) < 2 or not fields[0].startswith("HTTP/"):
        return verdict(False, "accepted the connection but did not answer as an HTTP proxy")
    if fields[1] == "407":
        return verdict(False, "wants a login (407): put user:password@ in the proxy URL")
    if fields[1].startswith("2"):
        return verdict(True, f"answers (CONNECT {target}: {fields[1]})")
    return verdict(True, f"answers, but could not reach {target} (HTTP {fields[1]})")


def effective_proxy(settings: Any, env: Mapping[str, str]) -> str | None:
    if settings.proxy:
        return settings.proxy
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy"):
        if env.get(name):
            return env[name]
    return None


def network_report(settings: Any, *, env: Mapping[str, str] | None = None, probe: Callable | None = None,
                   proxy_check: Callable[[str], ProxyVerdict] = check_proxy) -> dict[str, Any]:
    """Probe the proxy (when there is one) and every channel (official host and cn pool) through it."""
    import os

    from sdsetup.net.mirrors import load_catalog, probe_targets
    from sdsetup.net.routing import choose_routes, ranked_by_channel

    env = os.environ if env is None else env
    proxy = effective_proxy(settings, env)
    verdict = proxy_check(proxy) if proxy else None
    catalog = load_catalog(settings)
    official = catalog.profile("official").channels
    fallback = catalog.profile("cn").channels
    pool = {ch: tuple(official[ch][:1]) + tuple(m for m in fallback[ch] if m != official[ch][0]) for ch in CHANNELS}
    if probe is None:
        from sdsetup.net.reachability import prober

        probe = prober(settings)
    checks = probe(probe_targets(catalog, pool))
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
        items.append({"id": "network-proxy", "name": "proxy", "status": "ok" if proxy["ok"] else "fail",
                      "value": f"{proxy['url']}: {proxy['detail']}", "fix": None if proxy["ok"] else _NEXT_STEP_PROXY})
    for channel, info in report["channels"].items():
        route = info["route"]
        if info["official_ok"]:
            status, value, fix = "ok", f"{info['official']} answers ({route['probe_ms']} ms)", None
        elif info["reachable"]:
            status = "warn"
            value = f"{info['official']} does not answer; {route['source']} does ({route['probe_ms']} ms)"
            fix = f"nothing to do: installs route {channel} to {route['source']} by themselves (or pass --mirror cn)"
        else:
            status = "fail"
            value = f"no source answers ({info['official']}: {_first_error(info)})"
            fix = "the proxy does not answer: " + _NEXT_STEP_PROXY if proxy_dead else _NEXT_STEP_HOST
        if proxy_dead and status == "ok":  # impossible by construction; never call a dead proxy's route fine
            status = "warn"
        items.append({"id": f"network-{channel}", "name": f"network {channel}", "status": status, "value": value, "fix": fix})
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
        return f"the proxy {redact_url(proxy)} failed on the way to {host}: {reason}", _NEXT_STEP_PROXY
    via = f" (through the proxy {redact_url(proxy)}, which answered)" if proxy else ""
    return f"could not reach {host}{via}: {reason}", _NEXT_STEP_HOST
