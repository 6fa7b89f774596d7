"""Start a threaded HTTP server on 127.0.0.1, port 0, with a bounded readiness wait; stop it cleanly.

Every test server builds on this: `with serve(HandlerClass, **attrs) as server: server.url("/x")`.
Handler classes get the attrs as class attributes of a fresh subclass, so servers never share state.
`read_body(handler)` reads a request body (Content-Length or chunked); `RequestLog` gives a server
wrapper `.requests` / `.clear()` over its handler's request log.
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Many parallel segment connections: keep the listen backlog generous.
    request_queue_size = 128

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)


class RequestLog:
    """`.requests` and `.clear()` for a server wrapper whose handler keeps a `log` list under a `lock`."""

    server: LocalServer

    @property
    def requests(self) -> list[dict]:
        handler = self.server.RequestHandlerClass
        with handler.lock:
            return list(handler.log)

    def clear(self) -> None:
        handler = self.server.RequestHandlerClass
        with handler.lock:
            handler.log.clear()


def _wait_ready(port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"test server on port {port} did not start within {timeout}s")


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, sized by Content-Length or chunked (git sends large POST bodies chunked)."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def start(handler: type[BaseHTTPRequestHandler], **attrs) -> tuple[LocalServer, threading.Thread]:
    handler_class = type(f"{handler.__name__}Bound", (handler,), dict(attrs))
    server = LocalServer(("127.0.0.1", 0), handler_class)
    handler_class.server_ref = server  # lets handlers reach per-server state
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    _wait_ready(server.port)
    return server, thread


def stop(server: LocalServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler], **attrs) -> Iterator[LocalServer]:
    server, thread = start(handler, **attrs)
    try:
        yield server
    finally:
        stop(server, thread)
