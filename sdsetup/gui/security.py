"""Who may talk to the local server (pure; app.py applies it to every request).

The server listens on 127.0.0.1 only, but any web page the user opens can make the browser send
requests there, and a DNS-rebinding page can even read the answers. So:
- every request carries the random token, in the `X-Sdsetup-Token` header or the `token` query
  parameter (never a cookie: a cookie is sent along with a forged cross-site request);
- the Host header must name this server (127.0.0.1:PORT or localhost:PORT): a rebinding page's
  requests carry its own host name;
- an Origin header, when the browser sends one, must be this server's.
"""

from __future__ import annotations

import hmac
import secrets

TOKEN_HEADER = "x-sdsetup-token"
TOKEN_QUERY = "token"
LOCAL_NAMES = ("127.0.0.1", "localhost")


def new_token() -> str:
    return secrets.token_urlsafe(24)


def allowed_hosts(port: int) -> set[str]:
    return {f"{name}:{port}" for name in LOCAL_NAMES}


def host_ok(host: str | None, port: int) -> bool:
    return bool(host) and host.strip().lower() in allowed_hosts(port)


def origin_ok(origin: str | None, port: int) -> bool:
    """No Origin (a top-level navigation, curl) is fine; a present one must be ours ("null" is not)."""
    if origin is None:
        return True
    return origin.strip().lower() in {f"http://{host}" for host in allowed_hosts(port)}


def token_ok(given: str | None, token: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("utf-8"))


def refusal(*, host: str | None, origin: str | None, header_token: str | None, query_token: str | None,
            token: str, port: int) -> str | None:
    """Why a request is refused (None: it may proceed)."""
    if not host_ok(host, port):
        return "host"
    if not origin_ok(origin, port):
        return "origin"
    if not (token_ok(header_token, token) or token_ok(query_token, token)):
        return "token"
    return None
