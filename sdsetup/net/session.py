"""The one HTTP session, built from Settings and passed to whatever talks HTTP.

Proxy: --proxy/SDSETUP_PROXY wins; otherwise requests honours HTTP(S)_PROXY/ALL_PROXY/NO_PROXY.
TLS verification is always on; a custom CA bundle is added, never a way to turn it off. SDSETUP_CA_BUNDLE
wins over REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE (requests would let those override it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sdsetup.settings import Settings

if TYPE_CHECKING:  # requests is imported lazily so `sdsetup --help` stays fast
    import requests


def proxies_for(settings: Settings) -> dict[str, str]:
    if not settings.proxy:
        return {}
    return {"http": settings.proxy, "https": settings.proxy}


def trust_store(settings: Settings) -> str | None:
    """The CA file sdsetup, git and pip verify with when `ca_bundle` is set: certifi's public CAs plus
    the user's (README: ca_bundle *adds* a corporate CA; alone it would make every public server fail).
    Written once per content into the cache; the user's file as it is when certifi is missing or the
    cache cannot be written. None without ca_bundle (each tool's own default store)."""
    if not settings.ca_bundle:
        return None
    import hashlib

    try:
        import certifi

        public = Path(certifi.where()).read_bytes()
        extra = Path(settings.ca_bundle).read_bytes()
    except (ImportError, OSError):
        return settings.ca_bundle
    combined = public.rstrip(b"\n") + b"\n\n# added by sdsetup from " + str(settings.ca_bundle).encode("utf-8", "replace") + b"\n" + extra
    path = Path(settings.cache_dir) / "ca" / f"{hashlib.sha256(combined).hexdigest()[:16]}.pem"
    try:
        if not path.is_file():
            from sdsetup.fsutil import atomic_write_bytes

            atomic_write_bytes(path, combined)
    except OSError:
        return settings.ca_bundle
    return str(path)


def build_session(settings: Settings, *, pool_size: int | None = None) -> "requests.Session":
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    session.headers["User-Agent"] = settings.user_agent
    # Accept-Encoding identity: byte ranges and sizes must refer to the file, not a gzip stream.
    session.headers["Accept-Encoding"] = "identity"
    size = pool_size or max(16, settings.connections * 2)
    adapter = HTTPAdapter(pool_connections=size, pool_maxsize=size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if settings.proxy:
        session.proxies.update(proxies_for(settings))
        # An explicit proxy must not be bypassed by NO_PROXY or env proxies picked per request.
        session.trust_env = False
        if settings.ca_bundle:
            session.verify = trust_store(settings)
        else:
            import certifi  # requests' own CA store; trust_env=False would otherwise drop REQUESTS_CA_BUNDLE

            import os

            session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or certifi.where()
    elif settings.ca_bundle:
        session.verify = trust_store(settings)
        _pin_verify(session, session.verify)
    return session


def _pin_verify(session: "requests.Session", ca_bundle: str) -> None:
    """requests merges REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE over `session.verify` when trust_env is on (it
    must stay on for HTTP(S)_PROXY/NO_PROXY); a request that states its CA is left alone, so state ours."""
    merge = session.merge_environment_settings

    def merge_keeping_our_ca(url, proxies, stream, verify, cert):
        if verify is None or verify is True:
            verify = ca_bundle
        return merge(url, proxies, stream, verify, cert)

    session.merge_environment_settings = merge_keeping_our_ca  # type: ignore[method-assign]


def timeouts(settings: Settings) -> tuple[float, float]:
    """(connect, read) timeouts: connecting should be quick; the read timeout is the stall timeout."""
    return (min(10.0, settings.timeout), settings.timeout)


# A probe (HEAD, or one byte) that has no answer in this long is a dead source (or proxy) for now:
# the next source is tried rather than waiting the whole stall timeout.
PROBE_READ = 10.0


def probe_timeouts(settings: Settings) -> tuple[float, float]:
    return (min(10.0, settings.timeout), min(PROBE_READ, settings.timeout))


def proxy_for(session, url: str) -> str | None:
    """The proxy a request to `url` goes through (--proxy, or the environment's), or None."""
    from urllib.parse import urlsplit

    scheme = urlsplit(url).scheme.lower()
    chosen = (getattr(session, "proxies", None) or {}).get(scheme)
    if chosen:
        return chosen
    if getattr(session, "trust_env", False):
        from requests.utils import get_environ_proxies

        return get_environ_proxies(url).get(scheme) or get_environ_proxies(url).get("all")
    return None
