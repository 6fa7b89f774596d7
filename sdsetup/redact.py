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

# Linear time on any input (issue 23 item 12; tests/test_redact_linear.py): every pattern starts at a
# fixed string, or at the start of a run of the characters its first repetition accepts (a negative
# lookbehind of that class), and what one start scans ends where the next start's text begins. A name
# that must be a secret's (…_TOKEN, HF_TOKEN) is found as a whole word and judged in Python
# (`_sub_named`), never by nested repetitions that re-read the word once per underscore.

# scheme://user:password@host  ->  scheme://user:***@host. Found at "://"; the password runs to the last
# "@" before the path, so a literal "@" in it (p@ss) is masked whole.
_USERINFO = re.compile(r"""(?<=[a-zA-Z0-9+.-])://(?P<user>[^:@/\s]+):(?P<password>[^/\s"'<>]+)@""")
_TOKENS = [
    re.compile(r"\bhf_[A-Za-z0-9]{20,}\b"),  # Hugging Face
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}\b"),  # GitHub
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}\b"),
    re.compile(r"\bsk-[A-Za-z0-9]{20,}\b"),  # OpenAI, the older shape
    re.compile(r"(?<![\w-])sk-(?:proj|ant|svcacct|admin)-[A-Za-z0-9_-]{20,}"),  # OpenAI sk-proj-…, Anthropic sk-ant-api03-…
    re.compile(r"(?<![\w-])glpat-[A-Za-z0-9_-]{20,}"),  # GitLab
]
# scheme://TOKEN@host: a user name alone is how git and HTTP clients send a token (GitHub, GitLab,
# Hugging Face): masked when it looks like one (long, with a digit, or a known token prefix).
_TOKEN_USER = re.compile(r"(?<=[a-zA-Z0-9+.-])://(?P<user>[^:@/\s]+)@")
# A header's value, as a log line (`Authorization: Bearer x`), a Python dict or a JSON member
# (`'Authorization': 'Bearer x'`): a quoted value keeps its quotes around the mask (JSON stays JSON).
_AUTH_HEADER = re.compile(r"""(?i)\b(authorization|proxy-authorization|x-api-key)(["']?\s*[:=][ \t]*)"""
                          r"""("[^"\r\n]*"|'[^'\r\n]*'|[^\s"',;}]+(?:[ \t]+[^\s"',;}]+)?)""")
# Cookies: every name=value of the header is somebody's session; the whole rest of the line goes.
_COOKIE = re.compile(r"""(?i)(?<![\w-])((?:set-)?cookie)(["']?\s*:[ \t]*)("[^"\r\n]*"|'[^'\r\n]*'|[^\r\n"']+)""")
# NAME=value / NAME: value where NAME ends in TOKEN, PASSWORD, SECRET, API_KEY… (judged by _KEY_SUFFIXES).
# A bare value ends before a closing quote of its surroundings (`set "HF_TOKEN=x"`).
_KEY_NAME = re.compile(r"(?<!\w)([A-Za-z0-9_]+)(\s*[=:]\s*)")
_KEY_SUFFIXES = ("TOKEN", "PASSWORD", "PASSWD", "SECRET", "API_KEY", "SIGNATURE")
_KEY_VALUE = re.compile(r"""("[^"\n]*"|'[^'\n]*'|\S*[^\s"'])""")
# the same keys as URL query parameters (signed CDN redirects, ?token=): the value ends at & or # (or a
# quote: a URL never holds a raw one, the text around it may; a quoted value is _KEY_VALUE's). Any name
# ending in one of these words counts (x_token=), so the match starts at the word itself.
_QUERY_SECRET = re.compile(r"(?i)((?:token|password|passwd|secret|api_key|signature)=)(?![\"'])[^&#\s\"']*")
# The web UI's own login flags; the value follows a space, an "=", or (sysinfo's JSON list) '", "'. The
# value runs to the end of the argument: A1111 takes several logins as user1:pass1,user2:pass2.
_LOGIN_FLAG = re.compile(r"""(?<![\w-])(--(?:gradio-auth|api-auth|ngrok(?:-auth)?))(\s*=\s*|\s+|",\s*")("[^"\n]*"|'[^'\n]*'|[^\s"'\]]+)""")


def _masked(value: str) -> str:
    """MASK in the value's own quotes, if it had any."""
    quote = value[0] if value[:1] in ("\"", "'") and len(value) >= 2 and value[-1] == value[0] else ""
    return f"{quote}{MASK}{quote}"


def _sub_named(text: str, finder: re.Pattern, is_secret, value: re.Pattern) -> tuple[str, int]:
    """Mask the value after each NAME+separator that `finder` finds and `is_secret(NAME)` accepts.
    Linear: finder and value each read a stretch once; a name inside a masked value is skipped."""
    out: list[str] = []
    last = count = 0
    for match in finder.finditer(text):
        if match.start() < last or not is_secret(match[1]):
            continue
        found = value.match(text, match.end())
        if not found or found[0] in (MASK, f'"{MASK}"', f"'{MASK}'"):
            continue
        out += [text[last:match.end()], _masked(found[0])]
        last = found.end()
        count += 1
    if not count:
        return text, 0
    out.append(text[last:])
    return "".join(out), count


def _is_key_name(name: str) -> bool:
    return name.upper().endswith(_KEY_SUFFIXES)


def mask_key_value(m: re.Match) -> str:
    """The replacement for one NAME, separator, value match (groups 1-3): the value's quotes stay."""
    return f"{m[1]}{m[2]}{_masked(m[3])}"


def redact_patterns(text: str) -> tuple[str, dict[str, int]]:
    """Every pattern of a secret, in one order for every caller; the text and a count per kind."""
    counts: dict[str, int] = {}

    def add(kind: str, n: int) -> None:
        if n:
            counts[kind] = counts.get(kind, 0) + n

    out, n = _USERINFO.subn(lambda m: f"://{m['user']}:{MASK}@", text)
    add("url_password", n)
    if "://" in out:
        token_users: list[str] = []

        def token_user(m: re.Match) -> str:
            if not looks_like_token(m["user"]):
                return m[0]
            token_users.append(m["user"])
            return f"://{MASK}@"

        out = _TOKEN_USER.sub(token_user, out)
        add("token", len(token_users))
    for pattern in _TOKENS:
        out, n = pattern.subn(MASK, out)
        add("token", n)
    out, n = _QUERY_SECRET.subn(lambda m: m[1] + MASK, out)
    add("secret_value", n)
    out, n = _AUTH_HEADER.subn(mask_key_value, out)
    add("auth_header", n)
    out, n = _COOKIE.subn(mask_key_value, out)
    add("auth_header", n)
    out, n = _LOGIN_FLAG.subn(lambda m: f"{m[1]}{m[2]}{_masked(m[3])}" if m[3] != MASK else m[0], out)
    add("web_ui_login", n)
    out, n = _sub_named(out, _KEY_NAME, _is_key_name, _KEY_VALUE)
    add("secret_value", n)
    return out, counts


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


def redact_text(text: str, secrets: tuple[str, ...] | list[str] = (), home: str | None = None) -> str:
    """Mask URL passwords, known token shapes, auth headers, cookies, web UI logins, KEY=secret pairs,
    extra secrets and home."""
    if not text:
        return text
    out, _counts = redact_patterns(text)
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
