"""The measure step of automatic routing (effects): check each candidate with real requests, all at
once, within a time budget.

Two things per candidate, in parallel:
- does it answer as it is used: a small ranged GET for HTTP channels (the `six` project page, the torch
  `cpu` page, a Hugging Face config.json), `git ls-remote` for GitHub clone candidates. An answer that is
  not what was asked for (an HTTP error, an HTML challenge where a file was expected, a page with no links
  where an index was expected) is a failed check;
- how fast the host that serves the bytes delivers: a ranged read of `RATE_BYTES` of a real file (a wheel
  on the PyPI files host, a torch wheel, an LFS file through the Hub's redirects, a GitHub archive), or
  for a git-only candidate a shallow fetch of the probe repository. Its rate is what `decide.py` ranks by.

Which URLs to read per candidate (`autoroute.targets`) and how to rank the results (`decide.rank`) are
decided elsewhere; this module only does the I/O and takes no settings: the caller passes the session,
proxy and CA bundle.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from sdsetup.net.mirror_profiles import Mirror
from sdsetup.net.decide import BUDGET_SECONDS, MIN_RATE_BYTES, SourceCheck
from sdsetup.redact import redact_text, redact_url, secrets_in_url

if TYPE_CHECKING:
    import requests

MAX_BYTES = 64 * 1024
RATE_BYTES = 256 * 1024  # a few hundred KB: past TCP slow start on a long link, small enough for the budget
RATE_SECONDS = 1.5  # of body: enough to tell a crawling host (the read stops there, the budget is not waited out)
PROXY_TIMEOUT = 4.0
GIT_LOW_SPEED = "1000"  # bytes/s: a proxy that accepts and then stalls is given up on quickly


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


def judge_body(channel: str, content_type: str, head: bytes) -> str | None:
    """Pure: why this answer is not what the channel's probe asked for, or None when it is."""
    document = head.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html"))
    if channel == "huggingface" and (document or "text/html" in content_type.lower()):
        return "an HTML page where a file was expected (a login or challenge page?)"
    if channel in ("pypi", "torch") and document and b"href" not in head.lower():
        return "an HTML page with no package links (a challenge or error page?)"
    return None


def probe_http(session: "requests.Session", mirror: Mirror, url: str, *, timeout: float = BUDGET_SECONDS,
               max_bytes: int = MAX_BYTES, secrets: Sequence[str] = ()) -> SourceCheck:
    secrets = [*secrets, *secrets_in_url(url)]
    start = time.monotonic()
    latency = None
    received = 0
    shown = redact_url(url)
    try:
        headers = {"Range": f"bytes=0-{max_bytes - 1}"}
        with session.get(url, stream=True, timeout=(timeout, timeout), allow_redirects=True, headers=headers) as response:
            latency = time.monotonic() - start
            if response.status_code >= 400:
                return SourceCheck(mirror.channel, mirror.name, shown, False, response.status_code, latency,
                                   time.monotonic() - start, 0, f"HTTP {response.status_code}", mirror)
            head = b""
            for chunk in response.iter_content(16 * 1024):
                received += len(chunk)
                if len(head) < max_bytes:
                    head += chunk[: max_bytes - len(head)]
                if received >= max_bytes or time.monotonic() - start > timeout:
                    break
            problem = judge_body(mirror.channel, response.headers.get("Content-Type", ""), head)
            return SourceCheck(mirror.channel, mirror.name, shown, problem is None, response.status_code, latency,
                               time.monotonic() - start, received, problem, mirror)
    except Exception as exc:  # any failure is a verdict about this mirror, never a crash of the probe
        return SourceCheck(mirror.channel, mirror.name, shown, False, None, latency,
                           time.monotonic() - start, received, _describe(exc, secrets), mirror)


def git_probe_argv(url: str, *, proxy: str | None, ca_bundle: str | None, seconds: float) -> list[str]:
    """`git ls-remote URL HEAD` with the low-speed guard; a proxy with a password and a login in the URL
    go by environment (`git_probe_env`), never on this list."""
    from sdsetup.net.gitlogin import split_login

    argv = ["git", "-c", f"http.lowSpeedLimit={GIT_LOW_SPEED}", "-c", f"http.lowSpeedTime={max(1, int(seconds))}"]
    if proxy and not secrets_in_url(proxy):
        argv += ["-c", f"http.proxy={proxy}"]
    if ca_bundle:
        argv += ["-c", f"http.sslCAInfo={ca_bundle}"]
    return [*argv, "ls-remote", split_login(url)[0], "HEAD"]


def git_probe_env(url: str, proxy: str | None) -> dict[str, str]:
    """The environment of a probing git: no prompt, the proxy's password and the mirror's login (through
    a credential helper that reads it from here)."""
    from sdsetup.net.gitlogin import config_env, login_env

    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GCM_INTERACTIVE="never")
    pairs: list[tuple[str, str]] = []
    if proxy and secrets_in_url(proxy):
        pairs.append(("http.proxy", proxy))
    _bare, login, helper = login_env(url)
    env.update(login)
    pairs += helper
    if pairs:
        env.update(config_env(pairs))
    return env


def probe_git(mirror: Mirror, url: str, *, proxy: str | None = None, ca_bundle: str | None = None,
              timeout: float = BUDGET_SECONDS, secrets: Sequence[str] = ()) -> SourceCheck:
    secrets = [*secrets, *secrets_in_url(url), *secrets_in_url(proxy)]
    env = git_probe_env(url, proxy)
    start = time.monotonic()
    argv = git_probe_argv(url, proxy=proxy, ca_bundle=ca_bundle, seconds=timeout)
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return SourceCheck(mirror.channel, mirror.name, redact_url(url), False, None, None, time.monotonic() - start, 0,
                           f"no answer within {timeout:.0f} s", mirror, "git ls-remote")
    except OSError as exc:
        return SourceCheck(mirror.channel, mirror.name, redact_url(url), False, None, None, time.monotonic() - start, 0,
                           f"git could not run: {exc.strerror or exc}", mirror, "git ls-remote")
    seconds = time.monotonic() - start
    if done.returncode == 0 and re.match(r"^[0-9a-f]{40}", done.stdout):
        return SourceCheck(mirror.channel, mirror.name, redact_url(url), True, None, seconds, seconds,
                           len(done.stdout), None, mirror, "git ls-remote")
    lines = [line.strip() for line in (done.stderr or done.stdout or "").splitlines() if line.strip()]
    reason = lines[-1] if lines else f"git exited {done.returncode}"
    reason = re.sub(r"^fatal:\s*", "", reason)
    reason = re.sub(r"^unable to access '[^']*':\s*", "", reason)[:200]  # the URL is in the check already
    return SourceCheck(mirror.channel, mirror.name, redact_url(url), False, None, None, seconds, 0,
                       redact_text(reason, secrets), mirror, "git ls-remote")


def check_one(session: "requests.Session", mirror: Mirror, url: str, *, proxy: str | None = None,
              ca_bundle: str | None = None, timeout: float = BUDGET_SECONDS, secrets: Sequence[str] = ()) -> SourceCheck:
    """The real probe for this kind of candidate: a git clone source gets `git ls-remote`."""
    if is_git_url(mirror, url):
        return probe_git(mirror, url, proxy=proxy, ca_bundle=ca_bundle, timeout=timeout, secrets=secrets)
    return probe_http(session, mirror, url, timeout=timeout, secrets=secrets)


def is_git_url(mirror: Mirror, url: str) -> bool:
    return mirror.channel == "github" and "git" in mirror.serves and ".git" in url and "/info/refs" not in url


# ---------------------------------------------------------------------------------------------------
# The rate of the host that serves the bytes


@dataclass(frozen=True)
class RateRead:
    """One ranged read of a real file: bytes/s of its body (None: no rate), what was read, why not."""

    bps: float | None
    url: str  # redacted
    note: str | None = None
    bytes: int = 0
    seconds: float = 0.0  # from the start of the read (git: of the process) to its end
    cut: bool = False  # the deadline ended it
    git: bool = False


def _rate_of(received: int, body_seconds: float, cut: bool) -> float | None:
    """A rate needs enough bytes, unless the deadline cut the read: then so few bytes are the finding."""
    if body_seconds <= 0 or received <= 0:
        return 0.0 if cut else None
    if received < MIN_RATE_BYTES and not cut:
        return None
    return received / body_seconds


def read_rate_http(session: "requests.Session", url: str, *, timeout: float = BUDGET_SECONDS,
                   max_bytes: int = RATE_BYTES, secrets: Sequence[str] = ()) -> RateRead:
    """GET the first `max_bytes` of a real file (following redirects: the Hub's LFS files live on a CDN)
    and time its body until the deadline."""
    secrets = [*secrets, *secrets_in_url(url)]
    shown = redact_url(url)
    start = time.monotonic()
    deadline = start + timeout
    received = 0
    try:
        headers = {"Range": f"bytes=0-{max_bytes - 1}"}
        with session.get(url, stream=True, timeout=(timeout, timeout), allow_redirects=True, headers=headers) as response:
            began = time.monotonic()
            if response.status_code >= 400:
                return RateRead(None, shown, f"HTTP {response.status_code}")
            if "text/html" in response.headers.get("Content-Type", "").lower():
                return RateRead(None, shown, "an HTML page where a file was expected")
            cut = False
            stop = min(deadline, began + RATE_SECONDS)
            for chunk in response.iter_content(16 * 1024):
                received += len(chunk)
                if received >= max_bytes:
                    break
                if time.monotonic() >= stop:
                    cut = True
                    break
            bps = _rate_of(received, time.monotonic() - began, cut)
            return RateRead(bps, shown, None if bps is not None else f"the file is too small to time ({received} bytes)")
    except Exception as exc:  # a failed read is a note about this source, never a crash of the measurement
        return RateRead(None, shown, _describe(exc, secrets))


def read_rate_git(url: str, *, proxy: str | None = None, ca_bundle: str | None = None,
                  timeout: float = BUDGET_SECONDS) -> RateRead:
    """A shallow fetch of the probe repository into a scratch folder: bytes of pack received per second
    (git writes the incoming pack as it arrives, so a fetch stopped at the deadline still tells)."""
    import shutil
    import tempfile

    shown = redact_url(url)
    scratch = tempfile.mkdtemp(prefix="sdsetup-rate-")
    argv = git_probe_argv(url, proxy=proxy, ca_bundle=ca_bundle, seconds=timeout)
    argv = argv[: argv.index("ls-remote")] + ["clone", "--bare", "--depth", "1", "--quiet", argv[argv.index("ls-remote") + 1],
                                              os.path.join(scratch, "r.git")]
    start = time.monotonic()
    cut = False
    try:
        try:
            subprocess.run(argv, env=git_probe_env(url, proxy), capture_output=True, timeout=min(timeout, 1.0 + RATE_SECONDS),
                           stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            cut = True
        except OSError as exc:
            return RateRead(None, shown, f"git could not run: {exc.strerror or exc}")
        seconds = time.monotonic() - start
        received = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(scratch) for f in files
                       if "pack" in d)
        bps = _rate_of(received, seconds, cut)
        return RateRead(bps, shown, None if bps is not None else f"the repository is too small to time ({received} bytes)",
                        received, seconds, cut, git=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def read_rate(session: "requests.Session", mirror: Mirror, url: str, *, proxy: str | None = None,
              ca_bundle: str | None = None, timeout: float = BUDGET_SECONDS, secrets: Sequence[str] = ()) -> RateRead:
    if is_git_url(mirror, url):
        return read_rate_git(url, proxy=proxy, ca_bundle=ca_bundle, timeout=timeout)
    return read_rate_http(session, url, timeout=timeout, secrets=secrets)


def _with_rate(check: SourceCheck, read: RateRead | None) -> SourceCheck:
    from dataclasses import replace

    if read is None:
        return replace(check, rate_note="no file to time on this source")
    bps = read.bps
    if read.git and bps is not None and check.ok and check.latency_s is not None:
        # A git fetch spends its first part as `ls-remote` does (the process, the connection, the refs):
        # the check measured that beside it, so only the rest is the pack's transfer time.
        bps = _rate_of(read.bytes, max(0.05, read.seconds - check.latency_s), read.cut)
    return replace(check, rate_bps=bps if check.ok else None, rate_url=read.url, rate_note=read.note)


def probe_all(session: "requests.Session", targets: Iterable[tuple], *, budget: float = BUDGET_SECONDS,
              proxy: str | None = None, ca_bundle: str | None = None) -> list[SourceCheck]:
    """Check every target at once - (mirror, check URL) or (mirror, check URL, rate URL or None) - and
    time each rate URL beside its check; give up on what has not answered when `budget` seconds are
    over. Results in the order of `targets`."""
    targets = [(t[0], t[1], t[2] if len(t) > 2 else None) for t in targets]
    if not targets:
        return []
    secrets = secrets_in_url(proxy)
    reads = sum(1 for t in targets if t[2])
    pool = ThreadPoolExecutor(max_workers=min(48, len(targets) + reads))
    try:
        futures = [pool.submit(check_one, session, mirror, url, proxy=proxy, ca_bundle=ca_bundle, timeout=budget,
                               secrets=secrets) for mirror, url, _rate in targets]
        rates = [pool.submit(read_rate, session, mirror, rate, proxy=proxy, ca_bundle=ca_bundle, timeout=budget,
                             secrets=secrets) if rate else None for mirror, _url, rate in targets]
        wait([*futures, *[r for r in rates if r is not None]], timeout=budget + 1.0)
        out = []
        for future, rate, (mirror, url, rate_url) in zip(futures, rates, targets):
            if future.done():
                check = future.result()
            else:
                check = SourceCheck(mirror.channel, mirror.name, redact_url(url), False, None, None, budget, 0,
                                    f"no answer within {budget:.0f} s", mirror)
            if rate is None:
                out.append(_with_rate(check, None))
            elif rate.done():
                out.append(_with_rate(check, rate.result()))
            else:
                out.append(_with_rate(check, RateRead(None, redact_url(rate_url or ""), f"no answer within {budget:.0f} s")))
        return out
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


# ---------------------------------------------------------------------------------------------------
# The proxy itself


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
