"""What a source says about a file before and while we fetch it.

- `probe(session, url, timeout)`: HEAD (following redirects: Hugging Face `resolve` → CDN), or a
  `Range: bytes=0-0` GET when HEAD is refused or says too little: size, range support, validator.
- `judge(...)`: the pure decision for one answer to a GET — write its body, or why not (file changed
  on the server, range ignored, wrong Content-Range start, try later, gone).
- Validator helpers: `If-Range` value, weak/strong ETags (`W/` is a *prefix*, not characters to strip).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from sdsetup.net.retry import classify_status, parse_retry_after
from sdsetup.net.sources import SourceError
from sdsetup.redact import redact_url


@dataclass(frozen=True)
class Validator:
    """ETag and Last-Modified as the server sent them (either may be None)."""

    etag: str | None = None
    last_modified: str | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> "Validator":
        return cls(headers.get("ETag") or None, headers.get("Last-Modified") or None)

    def to_json(self) -> dict:
        return {"etag": self.etag, "last_modified": self.last_modified}

    @classmethod
    def from_json(cls, data: Mapping | None) -> "Validator":
        data = data or {}
        return cls(data.get("etag") or None, data.get("last_modified") or None)

    def if_range(self) -> str | None:
        """The If-Range value: a strong ETag, else Last-Modified, else None (RFC 9110 forbids a weak
        ETag in If-Range; a server would answer every such request with the whole file)."""
        if self.etag and not is_weak(self.etag):
            return self.etag
        return self.last_modified

    def empty(self) -> bool:
        return not self.etag and not self.last_modified


def is_weak(etag: str) -> bool:
    return etag.startswith("W/")


def etag_opaque(etag: str) -> str:
    """The ETag without its weakness marker. `etag.lstrip("W/")` would also eat a leading W or /
    of the tag itself; only the two-character prefix goes."""
    return etag[2:] if etag.startswith("W/") else etag


def same_version(old: Validator, new: Validator) -> bool | None:
    """True/False when the validators tell, None when they cannot (nothing comparable).
    ETags are compared weakly (as for a cache), Last-Modified only when there is no ETag pair."""
    if old.etag and new.etag:
        return etag_opaque(old.etag) == etag_opaque(new.etag)
    if old.last_modified and new.last_modified:
        return old.last_modified.strip() == new.last_modified.strip()
    return None


_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_UNSATISFIED = re.compile(r"^\s*bytes\s+\*/(\d+)\s*$", re.IGNORECASE)


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """`bytes 0-99/1234` → (0, 99, 1234); total None for `/*`; None when absent or malformed."""
    if not value:
        return None
    match = _CONTENT_RANGE.match(value)
    if not match:
        return None
    start, last = int(match[1]), int(match[2])
    if last < start:
        return None
    total = None if match[3] == "*" else int(match[3])
    return start, last, total


def _content_length(headers: Mapping[str, str]) -> int | None:
    if headers.get("Transfer-Encoding", "").lower() not in ("", "identity"):
        return None
    value = headers.get("Content-Length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


@dataclass(frozen=True)
class ProbeResult:
    url: str  # as given
    final_url: str  # after redirects: where the bytes are fetched from
    size: int | None
    ranges: bool
    validator: Validator
    method: str  # "HEAD" or "GET 0-0": how it was learnt (for logs)

    def to_json(self) -> dict:
        return {
            "url": redact_url(self.url),
            "final_url": redact_url(self.final_url),
            "size": self.size,
            "ranges": self.ranges,
            "validator": self.validator.to_json(),
            "method": self.method,
        }


def status_error(status: int, headers: Mapping[str, str]) -> SourceError:
    from http import HTTPStatus

    kind = classify_status(status)
    retry_after = parse_retry_after(headers.get("Retry-After")) if kind == "retry" else None
    try:
        text = f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        text = f"HTTP {status}"
    if retry_after is not None:
        text += f" (Retry-After {retry_after:g} s)"
    return SourceError(kind, text, status=status, retry_after=retry_after)


def is_html(headers: Mapping[str, str]) -> bool:
    """The answer is a web page (a login wall, a captcha, a 'moved' notice), not a file's bytes."""
    kind = (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    return kind in ("text/html", "application/xhtml+xml")


def html_error(status: int) -> SourceError:
    return SourceError("fail", f"answered with a web page (HTTP {status}, Content-Type text/html), not the file", status=status)


def probe(session, url: str, timeout, *, html_ok: bool = False) -> ProbeResult:
    """Ask a source about a file; raises SourceError (kind retry/gone/fail) when it cannot say.
    A web page where a file was expected (`html_ok` False) is a failed source (kind fail)."""
    import requests

    try:
        head = session.head(url, allow_redirects=True, timeout=timeout)
        head.close()
    except requests.RequestException as exc:
        raise SourceError("retry", f"{describe_exception(exc)}", timed_out=_timed_out(exc)) from None
    head_status = head.status_code
    if 200 <= head_status < 300 and not html_ok and is_html(head.headers):
        raise html_error(head_status)
    if head_status in (200, 204) or 200 <= head_status < 300:
        size = _content_length(head.headers)
        ranges = "bytes" in head.headers.get("Accept-Ranges", "").lower()
        if size is not None and ranges:
            return ProbeResult(url, head.url or url, size, True, Validator.from_headers(head.headers), "HEAD")
    elif classify_status(head_status) in ("retry",) or head_status in (404, 410, 401, 451):
        raise status_error(head_status, head.headers)
    # HEAD refused (405/403/501: signed CDN URLs, some mirrors) or it did not tell size and ranges:
    # one byte by GET tells both.
    try:
        response = session.get(url, headers={"Range": "bytes=0-0"}, stream=True, allow_redirects=True, timeout=timeout)
    except requests.RequestException as exc:
        raise SourceError("retry", f"{describe_exception(exc)}", timed_out=_timed_out(exc)) from None
    try:
        status, headers = response.status_code, response.headers
        final = response.url or url
        validator = Validator.from_headers(headers)
        if status in (200, 206) and not html_ok and is_html(headers):
            raise html_error(status)
        if status == 206:
            parsed = parse_content_range(headers.get("Content-Range"))
            if parsed and parsed[0] == 0:
                return ProbeResult(url, final, parsed[2], parsed[2] is not None, validator, "GET 0-0")
            # A 206 we cannot read is a range support we cannot trust.
            return ProbeResult(url, final, None, False, validator, "GET 0-0")
        if status == 200:
            return ProbeResult(url, final, _content_length(headers), False, validator, "GET 0-0")
        if status == 416:  # an empty file has no byte 0
            unsatisfied = _UNSATISFIED.match(headers.get("Content-Range", "") or "")
            if unsatisfied and int(unsatisfied[1]) == 0:
                return ProbeResult(url, final, 0, False, validator, "GET 0-0")
        raise status_error(status, headers)
    finally:
        response.close()


def _timed_out(exc: BaseException) -> bool:
    import requests

    return isinstance(exc, requests.Timeout) or "timed out" in str(exc).lower()


def describe_exception(exc: BaseException) -> str:
    """A short, credential-free description of a requests/urllib3/socket error."""
    from sdsetup.redact import redact_text

    text = str(exc) or type(exc).__name__
    # the proxy failed, not the file's host: say so, or the helpdesk checks the wrong machine
    via_proxy = any(cls.__name__ == "ProxyError" for cls in type(exc).__mro__) or "socks" in text.lower()
    # requests nests the urllib3 reason: keep the innermost, human part.
    for marker in ("Caused by ", "(Caused by "):
        if marker in text:
            text = text.split(marker, 1)[1].rstrip(")")
    name = type(exc).__name__
    lowered = text.lower()
    if "timed out" in lowered or "timeout" in name.lower():
        text = "no answer in time (timed out)"
    elif "refused" in lowered:
        text = "connection refused"
    elif "reset" in lowered:
        text = "connection reset"
    elif "name or service not known" in lowered or "nodename nor servname" in lowered or "getaddrinfo" in lowered:
        text = "host name not found (DNS)"
    elif "certificate" in lowered or "ssl" in lowered:
        text = f"TLS problem: {text[:200]}"
    if via_proxy:
        text = f"the proxy failed ({text[:250]})"
    return redact_text(text[:300])


@dataclass(frozen=True)
class Verdict:
    """Write the body: it carries file bytes from `start`. `no_range` marks a source that answered a
    ranged request with the whole file (usable here because the request started at 0)."""

    start: int
    body_end: int | None = None  # the file offset where this body ends (None: read to EOF)
    no_range: bool = False


def judge(
    status: int,
    headers: Mapping[str, str],
    *,
    start: int,
    end: int | None,
    ranged: bool,
    size: int | None,
    known: Validator,
    html_ok: bool = True,
) -> Verdict:
    """Decide what one answer to `GET [Range: bytes=start-(end-1)]` means.

    Raises SourceError with kind:
      changed  the file on the server is not the one being assembled (its validator differs);
      size     the source has a file of another size;
      norange  the source ignored the Range or answered another start (its ranges can't be trusted);
      fail     a web page where the file was expected (`html_ok` False), or a status that will not change;
      retry / gone / fail  by status (see retry.classify_status).
    """
    answer = Validator.from_headers(headers)
    if status in (200, 206) and not html_ok and is_html(headers):
        raise html_error(status)
    if status in (200, 206) and same_version(known, answer) is False:
        raise SourceError("changed", f"the file changed on the server (validator {known.etag or known.last_modified} -> {answer.etag or answer.last_modified})")
    if status == 206:
        parsed = parse_content_range(headers.get("Content-Range"))
        if parsed is None:
            raise SourceError("norange", "206 answer without a usable Content-Range")
        got_start, last, total = parsed
        if size is not None and total is not None and total != size:
            raise SourceError("size", f"the file is now {total} bytes, not {size}", offered=total)
        if got_start != start:
            raise SourceError("norange", f"asked for bytes from {start}, got bytes from {got_start} (wrong Content-Range)")
        return Verdict(start, last + 1)
    if status == 200:
        length = _content_length(headers)
        if size is not None and length is not None and length != size:
            raise SourceError("size", f"the server now sends {length} bytes, not {size}", offered=length)
        body_end = size if size is not None else length
        if ranged:
            if start == 0:
                return Verdict(0, body_end, no_range=True)
            raise SourceError("norange", "ignored the Range request (answered 200 with the whole file)")
        return Verdict(0, body_end)
    if status == 416:
        raise SourceError("changed", f"range {start}- is past the end of the file (HTTP 416): the file changed")
    raise status_error(status, headers)
