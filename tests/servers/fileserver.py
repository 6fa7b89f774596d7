"""A fault-injecting static file server for tests (127.0.0.1, built on httpbase).

Serves a directory tree over HTTP/1.1 (keep-alive) with HEAD, single byte ranges (206 +
Content-Range, 416), ETag + Last-Modified, If-Range; a directory answers with its index.html, so a
PEP 503 `simple/` tree or a Hugging Face `resolve/` tree can be served as plain files.

    from tests.servers.fileserver import Fault, FileServer

    with FileServer(root) as fs:                      # or FileServer(root, rate=1_000_000, ...)
        url = fs.url("models/a.bin")
        fs.script("/models/a.bin", Fault.reset(after=100_000), None, Fault.status(503))
        fs.rule("/models/a.bin", rate=500_000, head=False)   # options for a path ("/x/*": a prefix)
        fs.always("/models/a.bin", Fault.corrupt(at=1234))     # a fault on every GET of that path
        fs.chaos("/models/a.bin", probability=0.3, seed=1)     # random faults
        fs.chaos("/models/a.bin", probability=0.1, seed=1, corrupt=0.02)  # ... and 2 % corrupted answers
        ...
        fs.requests("/models/a.bin")   # the request log: method, path, range, if_range, status, sent
        fs.bytes_sent("/models/a.bin") # body bytes written to sockets (live; also during a download)

Scripts are consumed one entry per GET of the path, in order (None = answer normally): "the 2nd
request resets after 100 kB, the 3rd gets a 503". Faults (see `Fault`'s constructors):
  status(code, retry_after=None)  an error answer (503 bursts, 429 + Retry-After, 404, ...)
  reset(after)                    send `after` body bytes, then reset the connection (RST)
  stall(after, seconds)           send `after` bytes, then nothing for `seconds` (then continue)
  ignore_range()                  answer 200 with the whole file to a ranged request
  wrong_start(shift)              a 206 whose bytes (and Content-Range) start `shift` bytes early
  corrupt(at=None, fraction=None) flip the byte at file offset `at` (or at `fraction` of the body;
                                  default: the body's middle)
  redirect(location)              302 to `location` (absolute URL, or a path on this server)
Path options (`rule`, or keyword arguments to FileServer for every path):
  rate (bytes/s per connection), head (False: HEAD gets 405), ranges (False: no Range support and
  no Accept-Ranges), etag (False: none; a string: fixed), weak_etag, last_modified (False: none),
  chunked (True: no Content-Length, chunked body), redirect (a location for every request),
  headers (extra response headers), status (every request gets this status), delay (seconds
  before answering anything: latency), page ((status, html): every request gets that web page, as a
  mirror's login wall or a 403 challenge does), crawl ((after, rate): once `after` body bytes of the path
  were sent in all, every connection slows to `rate` bytes/s, mid-response too: a mirror that starts
  fast and then throttles), host_rate (bytes/s for the whole server, one bucket shared by every
  connection and path, as a throttled host is; give it to FileServer(...) for every path).
"""

from __future__ import annotations

import email.utils
import mimetypes
import os
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import unquote, urlsplit

from tests.servers import httpbase

CHUNK = 64 * 1024


@dataclass(frozen=True)
class Fault:
    kind: str
    after: int = 0
    code: int = 503
    retry_after: str | None = None
    seconds: float = 0.0
    shift: int = 0
    at: int | None = None
    location: str | None = None
    fraction: float | None = None

    @classmethod
    def status(cls, code: int, retry_after: float | str | None = None) -> "Fault":
        return cls("status", code=code, retry_after=None if retry_after is None else str(retry_after))

    @classmethod
    def reset(cls, after: int = 0) -> "Fault":
        return cls("reset", after=after)

    @classmethod
    def stall(cls, after: int = 0, seconds: float = 5.0) -> "Fault":
        return cls("stall", after=after, seconds=seconds)

    @classmethod
    def ignore_range(cls) -> "Fault":
        return cls("ignore_range")

    @classmethod
    def wrong_start(cls, shift: int = 4096) -> "Fault":
        return cls("wrong_start", shift=shift)

    @classmethod
    def corrupt(cls, at: int | None = None, fraction: float | None = None) -> "Fault":
        return cls("corrupt", at=at, fraction=fraction)

    @classmethod
    def redirect(cls, location: str) -> "Fault":
        return cls("redirect", location=location)

    @classmethod
    def not_found(cls) -> "Fault":
        return cls("status", code=404)

CHAOS_KINDS = ("reset", "503", "429", "stall", "ignore_range", "wrong_start")


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    if_range: str | None
    client: str
    started: float  # time.monotonic()
    status: int = 0
    sent: int = 0
    fault: str | None = None
    authorization: str | None = None  # the request's Authorization header (tests of where a token goes)


@dataclass
class _State:
    root: Path
    defaults: dict[str, Any]
    lock: threading.Lock = field(default_factory=threading.Lock)
    scripts: dict[str, list] = field(default_factory=dict)
    always: dict[str, list] = field(default_factory=dict)
    rules: dict[str, dict] = field(default_factory=dict)
    chaos: dict[str, tuple] = field(default_factory=dict)
    log: list = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    bucket_free: float = 0.0  # host_rate: when the shared bucket can send the next byte (monotonic)


class FileServer:
    """Context manager around the server; all methods are thread-safe."""

    def __init__(self, root: Path | str, **defaults: Any) -> None:
        self.state = _State(Path(root), dict(defaults))
        self._server = None
        self._thread = None

    def __enter__(self) -> "FileServer":
        self._server, self._thread = httpbase.start(_Handler, state=self.state)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._server is not None:
            self.state.stop.set()  # wakes stalled and rate-limited handlers
            httpbase.stop(self._server, self._thread)
            self._server = None

    # -- addresses ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._server.port

    @property
    def base_url(self) -> str:
        return self._server.base_url

    def url(self, path: str = "/") -> str:
        return self._server.url(path)

    # -- behaviour ---------------------------------------------------------------------------
    def script(self, path: str, *faults: Fault | None) -> None:
        """Queue faults for the next GETs of `path`, one per request (None: a normal answer)."""
        with self.state.lock:
            self.state.scripts.setdefault(_norm(path), []).extend(faults)

    def always(self, path: str, *faults: Fault) -> None:
        with self.state.lock:
            self.state.always[_norm(path)] = list(faults)

    def rule(self, path: str, **options: Any) -> None:
        """Options for a path (or "/prefix/*"); see the module docstring. None removes an option."""
        with self.state.lock:
            current = self.state.rules.setdefault(_norm(path), {})
            for key, value in options.items():
                if value is None:
                    current.pop(key, None)
                else:
                    current[key] = value

    def chaos(self, path: str, probability: float, *, seed: int = 0, kinds: Iterable[str] = CHAOS_KINDS,
              corrupt: float = 0.0) -> None:
        """Random faults on GETs of `path` (kinds from CHAOS_KINDS), reproducible with `seed`; besides,
        a share `corrupt` of the other answers has one byte flipped at a random place of the body."""
        with self.state.lock:
            self.state.chaos[_norm(path)] = (probability, random.Random(seed), tuple(kinds), corrupt)

    def clear(self, path: str | None = None) -> None:
        with self.state.lock:
            for table in (self.state.scripts, self.state.always, self.state.rules, self.state.chaos):
                if path is None:
                    table.clear()
                else:
                    table.pop(_norm(path), None)

    # -- observation -------------------------------------------------------------------------
    def requests(self, path: str | None = None, method: str | None = None) -> list[Request]:
        with self.state.lock:
            return [r for r in self.state.log if (path is None or r.path == _norm(path)) and (method is None or r.method == method)]

    def bytes_sent(self, path: str | None = None) -> int:
        with self.state.lock:
            if path is None:
                return sum(self.state.sent.values())
            return self.state.sent.get(_norm(path), 0)

    def reset_log(self) -> None:
        with self.state.lock:
            self.state.log.clear()
            self.state.sent.clear()


class Blackhole:
    """A TCP port on 127.0.0.1 that accepts connections and never answers (a stalled proxy, a dead CDN
    behind a load balancer): `with Blackhole() as hole: hole.url("/x")`; `hole.accepted` counts them."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._port = self._sock.getsockname()[1]
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self.accepted = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self._held.append(conn)
            self.accepted += 1

    @property
    def port(self) -> int:
        return self._port

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{_norm(path)}"

    def __enter__(self) -> "Blackhole":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self._held:
            conn.close()
        self._sock.close()


def _norm(path: str) -> str:
    return path if path.startswith("/") else "/" + path


def _etag_for(stat: os.stat_result) -> str:
    return '"%x-%x"' % (stat.st_mtime_ns, stat.st_size)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: _State  # set by httpbase.start
    server_version = "sdsetup-test-fileserver"

    def log_message(self, format: str, *args) -> None:  # quiet
        pass

    def handle(self) -> None:
        # A client that closes a connection with unread data sends a RST; that is not the server's error.
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, TimeoutError):
            self.close_connection = True

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    # -- helpers ---------------------------------------------------------------------------------
    def _options(self, path: str) -> dict:
        state = self.state
        options = dict(state.defaults)
        prefixes = sorted((k for k in state.rules if k.endswith("*") and path.startswith(k[:-1])), key=len)
        for key in prefixes:
            options.update(state.rules[key])
        options.update(state.rules.get(path, {}))
        return options

    def _next_fault(self, path: str) -> Fault | None:
        state = self.state
        with state.lock:
            queue = state.scripts.get(path)
            if queue:
                fault = queue.pop(0)
                if fault is not None:
                    return fault
            if state.always.get(path):
                return state.always[path][0]
            chaos = state.chaos.get(path)
            if chaos:
                probability, rng, kinds, corrupt = chaos
                if corrupt and rng.random() < corrupt:
                    return Fault.corrupt(fraction=rng.random())
                if rng.random() < probability:
                    kind = rng.choice(kinds)
                    return {
                        "reset": Fault.reset(after=rng.randrange(0, 256 * 1024)),
                        "503": Fault.status(503),
                        "429": Fault.status(429, retry_after="1"),
                        "stall": Fault.stall(after=rng.randrange(0, 64 * 1024), seconds=3.0),
                        "ignore_range": Fault.ignore_range(),
                        "wrong_start": Fault.wrong_start(4096),
                    }[kind]
        return None

    def _record(self, entry: Request) -> None:
        with self.state.lock:
            self.state.log.append(entry)

    def _count(self, path: str, count: int, entry: Request) -> None:
        with self.state.lock:
            self.state.sent[path] = self.state.sent.get(path, 0) + count
            entry.sent += count

    def _resolve(self, path: str) -> Path | None:
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if any(p == ".." for p in parts):
            return None
        target = self.state.root.joinpath(*parts)
        if target.is_dir():
            target = target / "index.html"
        return target if target.is_file() else None

    def _simple(self, entry: Request, status: int, headers: dict | None = None, body: bytes = b"") -> None:
        entry.status = status
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0), like a dropped link."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    # -- the answer --------------------------------------------------------------------------
    def _serve(self, head: bool) -> None:
        path = _norm(unquote(urlsplit(self.path).path))
        entry = Request(self.command, path, self.headers.get("Range"), self.headers.get("If-Range"), f"{self.client_address[0]}:{self.client_address[1]}", time.monotonic())
        entry.authorization = self.headers.get("Authorization")
        self._record(entry)
        options = self._options(path)
        fault = None if head else self._next_fault(path)
        entry.fault = fault.kind if fault else None
        extra = dict(options.get("headers") or {})

        if options.get("delay"):
            self.state.stop.wait(float(options["delay"]))  # latency before any answer
        if head and options.get("head") is False:
            return self._simple(entry, 405, {"Allow": "GET"})
        if options.get("status"):
            return self._simple(entry, int(options["status"]), extra)
        if options.get("page"):
            code, html = options["page"]
            return self._simple(entry, int(code), {"Content-Type": "text/html; charset=utf-8", **extra}, html.encode())
        location = options.get("redirect") or (fault.location if fault and fault.kind == "redirect" else None)
        if location:
            return self._simple(entry, 302, {"Location": location, **extra})
        if fault and fault.kind == "status":
            headers = dict(extra)
            if fault.retry_after is not None:
                headers["Retry-After"] = fault.retry_after
            return self._simple(entry, fault.code, headers, b"fault\n")

        target = self._resolve(path)
        if target is None:
            return self._simple(entry, 404, extra, b"not found\n")
        stat = target.stat()
        size = stat.st_size
        etag = options.get("etag", True)
        etag_value = None if etag is False else (etag if isinstance(etag, str) else _etag_for(stat))
        if etag_value and options.get("weak_etag"):
            etag_value = "W/" + etag_value
        last_modified = None if options.get("last_modified") is False else email.utils.formatdate(stat.st_mtime, usegmt=True)
        ranges_ok = options.get("ranges", True)

        start, end = 0, size  # [start, end)
        status = 200
        range_header = self.headers.get("Range") if ranges_ok else None
        if range_header and not (fault and fault.kind == "ignore_range"):
            if_range = self.headers.get("If-Range")
            if if_range is None or if_range in (etag_value, last_modified):
                parsed = _parse_range(range_header, size)
                if parsed == "unsatisfiable":
                    return self._simple(entry, 416, {"Content-Range": f"bytes */{size}", **extra})
                if parsed is not None:
                    start, end = parsed
                    status = 206
        if status == 206 and fault and fault.kind == "wrong_start":
            start = max(0, start - (fault.shift or 4096))

        entry.status = status
        self.send_response(status)
        self.send_header("Content-Type", mimetypes.guess_type(target.name)[0] or "application/octet-stream")
        chunked = bool(options.get("chunked"))
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(end - start))
        if ranges_ok:
            self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        if etag_value:
            self.send_header("ETag", etag_value)
        if last_modified:
            self.send_header("Last-Modified", last_modified)
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        if head:
            return
        self._send_body(entry, path, target, start, end, fault, options.get("rate"), chunked,
                        crawl=options.get("crawl"), host_rate=options.get("host_rate"))

    def _host_bucket(self, count: int, host_rate: float) -> bool:
        """Wait for the server-wide bucket to pass `count` bytes; False when the server stops."""
        with self.state.lock:
            now = time.monotonic()
            start = max(now, self.state.bucket_free)
            self.state.bucket_free = start + count / float(host_rate)
            until = self.state.bucket_free
        left = until - time.monotonic()
        return not (left > 0 and self.state.stop.wait(left))

    def _send_body(self, entry: Request, path: str, target: Path, start: int, end: int, fault: Fault | None, rate: float | None, chunked: bool,
                   *, crawl: tuple[int, float] | None = None, host_rate: float | None = None) -> None:
        stop = self.state.stop
        began = time.monotonic()
        sent = 0
        paced_from = 0  # `sent` when the current rate began (a crawl starts mid-response)
        corrupt_at = None
        if fault and fault.kind == "corrupt":
            if fault.at is not None:
                corrupt_at = fault.at
            elif fault.fraction is not None:
                corrupt_at = start + min(end - start - 1, int((end - start) * fault.fraction))
            else:
                corrupt_at = start + (end - start) // 2
        cut = fault.after if fault and fault.kind in ("reset", "stall") else None
        piece = CHUNK if not rate else max(1024, min(CHUNK, int(rate) // 50))
        if host_rate:
            piece = max(1024, min(piece, int(host_rate) // 50))
        if crawl:
            piece = max(1024, min(piece, int(crawl[1]) // 20))
        try:
            with open(target, "rb") as handle:
                handle.seek(start)
                position = start
                while position < end:
                    count = min(piece, end - position)
                    if cut is not None and sent < cut:
                        count = min(count, cut - sent)
                    elif cut is not None and sent >= cut:
                        if fault.kind == "reset":
                            stop.wait(0.05)  # let the bytes sent arrive: a RST discards unread data
                            return self._reset()
                        stop.wait(fault.seconds)  # stall: no bytes for a while
                        cut = None
                        if stop.is_set():
                            return self._reset()
                    data = handle.read(count)
                    if not data:
                        break
                    if corrupt_at is not None and position <= corrupt_at < position + len(data):
                        index = corrupt_at - position
                        data = data[:index] + bytes([data[index] ^ 0xFF]) + data[index + 1:]
                    if chunked:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    else:
                        self.wfile.write(data)
                    position += len(data)
                    sent += len(data)
                    self._count(path, len(data), entry)
                    if crawl and rate != crawl[1] and self.state.sent.get(path, 0) >= crawl[0]:
                        rate, began, paced_from = crawl[1], time.monotonic(), sent
                    if host_rate and not self._host_bucket(len(data), host_rate):
                        return self._reset()
                    if rate:
                        ahead = began + (sent - paced_from) / float(rate) - time.monotonic()
                        if ahead > 0 and stop.wait(ahead):
                            return self._reset()
                if cut is not None and sent >= cut and fault.kind == "reset":
                    stop.wait(0.05)
                    return self._reset()
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
            self.close_connection = True


def _parse_range(header: str, size: int):
    """(start, end) half-open for one `bytes=` range; "unsatisfiable"; or None (ignored/invalid)."""
    header = header.strip()
    if not header.lower().startswith("bytes=") or "," in header:
        return None
    spec = header[6:].strip()
    first, _, last = spec.partition("-")
    try:
        if first == "":
            suffix = int(last)
            if suffix <= 0:
                return "unsatisfiable"
            return max(0, size - suffix), size
        start = int(first)
        end = size if last == "" else min(size, int(last) + 1)
    except ValueError:
        return None
    if start >= size or end <= start:
        return "unsatisfiable"
    return start, end
