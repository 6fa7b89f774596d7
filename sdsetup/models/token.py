"""The Civitai API token: read from the environment, sent to Civitai hosts only.

comfy-cli reads `CIVITAI_API_TOKEN` (Comfy-Org/comfy-cli, `comfy_cli/command/models/models.py`); we read
that name, then `CIVITAI_TOKEN`. The token travels as an `Authorization: Bearer` header, never in a URL
(URLs reach logs and progress lines). A Civitai host is civitai.com or a subdomain, or a host the
user's own `[[rewrite]]` rules put in place of https://civitai.com/ (the user named it as Civitai).
requests drops the header when a redirect leaves the host (the download CDN), and this hook adds it
only where `allowed` says, so the CDN never sees it."""

from __future__ import annotations

from typing import Iterable, Mapping
from urllib.parse import urlsplit

ENV_NAMES = ("CIVITAI_API_TOKEN", "CIVITAI_TOKEN")


def token_from_env(env: Mapping[str, str]) -> str | None:
    for name in ENV_NAMES:
        value = (env.get(name) or "").strip()
        if value:
            return value
    return None


def _netloc(url: str) -> tuple[str, int | None]:
    parts = urlsplit(url)
    return (parts.hostname or "").lower(), parts.port


def civitai_hosts(rewrite_targets: Iterable[str]) -> tuple[tuple[str, int | None], ...]:
    """(host, port) pairs that stand for Civitai: the user's rewrite targets for https://civitai.com/."""
    return tuple(_netloc(url) for url in rewrite_targets if url)


def is_civitai_host(url: str, extra: Iterable[tuple[str, int | None]] = ()) -> bool:
    """Pure: may the token go to this URL? Only https to civitai.com (and its subdomains), or an exact
    (host, port) the user's rewrite rules named."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and (host == "civitai.com" or host.endswith(".civitai.com")):
        return True
    return (host, parts.port) in set(extra)


class CivitaiAuth:
    """A requests auth hook (callable on each PreparedRequest): the Bearer header for Civitai hosts only."""

    def __init__(self, token: str, extra_hosts: Iterable[tuple[str, int | None]] = ()) -> None:
        self._token = token
        self._extra = tuple(extra_hosts)

    def __call__(self, request):
        if is_civitai_host(request.url, self._extra):
            request.headers["Authorization"] = f"Bearer {self._token}"
        else:
            request.headers.pop("Authorization", None)
        return request

    def __repr__(self) -> str:  # never the token
        return "CivitaiAuth(<token>)"
