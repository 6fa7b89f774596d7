"""Credential redaction: proxy passwords, tokens and the user's home path never leave the machine.

Used by every place that prints, logs or packs text: the logger's filter, error messages that quote
a URL, the doctor's support bundle.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

# scheme://user:password@host  ->  scheme://user:***@host (also user-only userinfo that looks like a token)
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:@/\s]+):(?P<password>[^@/\s]+)@")
_TOKENS = [
    re.compile(r"\bhf_[A-Za-z0-9]{20,}\b"),  # Hugging Face
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}\b"),  # GitHub
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}\b"),
    re.compile(r"\bsk-[A-Za-z0-9]{20,}\b"),
    re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}\b"),  # GitLab
]
# scheme://TOKEN@host: a user name alone is how git and HTTP clients send a token (GitHub, GitLab,
# Hugging Face): masked when it looks like one (long, with a digit, or a known token prefix).
_TOKEN_USER = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:@/\s]+)@")
_AUTH_HEADER = re.compile(r"(?i)\b(authorization|proxy-authorization|x-api-key)(\s*[:=]\s*)(\S+(?:\s+\S+)?)")
# A bare value ends before a closing quote of its surroundings (`set "HF_TOKEN=x"`).
_KEY_VALUE = re.compile(r"(?i)\b([A-Z0-9_]*(?:TOKEN|PASSWORD|PASSWD|SECRET|API_KEY|SIGNATURE))(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|\S*[^\s\"'])")
# the same keys as URL query parameters (signed CDN redirects, ?token=): the value ends at & or # (or a
# quote: a URL never holds a raw one, the text around it may; a quoted value is _KEY_VALUE's)
_QUERY_SECRET = re.compile(r"(?i)(?<![A-Za-z0-9])([A-Za-z0-9_-]*(?:token|password|passwd|secret|api_key|signature)=)(?![\"'])[^&#\s\"']*")


def looks_like_token(user: str) -> bool:
    """A URL user name that is really a credential: a known token shape, or long and with a digit."""
    from urllib.parse import unquote

    user = unquote(user or "")
    if any(pattern.fullmatch(user) for pattern in _TOKENS):
        return True
    return len(user) >= 16 and any(c.isdigit() for c in user) and not any(c in user for c in " ")


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***; the user name stays (it helps the helpdesk), unless
    the user name is itself a token (`https://TOKEN@host`)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if parts.query:
        parts = parts._replace(query=_QUERY_SECRET.sub(lambda m: m[1] + MASK, parts.query))
        url = urlunsplit(parts)
    if parts.password is None:
        if parts.username and looks_like_token(parts.username):
            host = parts.netloc.rpartition("@")[2]
            return urlunsplit((parts.scheme, f"{MASK}@{host}", parts.path, parts.query, parts.fragment))
        return url
    # host[:port] kept as written: parsing the port would raise on a typo (host:99999) in the very
    # error message that reports it, and hostname drops an IPv6 address's brackets
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{parts.username}:{MASK}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def mask_key_value(m: re.Match) -> str:
    """The replacement for one _KEY_VALUE match."""
    value = m[3]
    quote = value[0] if value[0] in "\"'" else ""  # a quoted value stays quoted (JSON, shell) around the mask
    return f"{m[1]}{m[2]}{quote}{MASK}{quote}"


def redact_text(text: str, secrets: tuple[str, ...] | list[str] = (), home: str | None = None) -> str:
    """Mask URL passwords, known token shapes, auth headers, KEY=secret pairs, extra secrets and home."""
    if not text:
        return text
    out = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    out = _TOKEN_USER.sub(lambda m: f"{m['scheme']}{MASK}@" if looks_like_token(m["user"]) else m[0], out)
    out = _QUERY_SECRET.sub(lambda m: m[1] + MASK, out)
    for pattern in _TOKENS:
        out = pattern.sub(MASK, out)
    out = _AUTH_HEADER.sub(lambda m: f"{m[1]}{m[2]}{MASK}", out)
    out = _KEY_VALUE.sub(mask_key_value, out)
    for secret in secrets:
        if secret and len(secret) >= 3:
            out = out.replace(secret, MASK)
    if home:
        out = redact_home(out, home)
    return out


def redact_home(text: str, home: str | None = None) -> str:
    """Replace the user's home directory (which carries their name) with ~."""
    home = home or os.path.expanduser("~")
    if not home or home in ("/", "~") or len(home) < 3:
        return text
    variants = {home, home.replace("\\", "/"), home.replace("/", "\\"), str(Path(home))}
    for variant in sorted(variants, key=len, reverse=True):
        text = text.replace(variant, "~")
    return text


def secrets_in_url(url: str | None) -> list[str]:
    """The password (and a long user name used as a token) in a URL, to mask wherever it appears."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = []
    if parts.username and not parts.password and looks_like_token(parts.username):
        from urllib.parse import unquote

        found += [parts.username] + ([unquote(parts.username)] if unquote(parts.username) != parts.username else [])
    if parts.password:
        found.append(parts.password)
        from urllib.parse import unquote

        if unquote(parts.password) != parts.password:
            found.append(unquote(parts.password))
    return found
