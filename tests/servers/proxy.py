"""A forward HTTP proxy for tests: absolute-form requests and CONNECT tunnels, Basic proxy auth.

    with serve_proxy(user="u", password="p") as proxy:
        proxy.url            # http://u:p@127.0.0.1:PORT (what a client is given)
        proxy.requests       # every request seen: {"method", "target", "user", "authorized", "status"}

It only forwards to 127.0.0.1 (tests never reach any other address); anything else gets 403.
"""

from __future__ import annotations

import base64
import http.client
import select
import socket
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Iterator
from urllib.parse import urlsplit

from tests.servers.httpbase import RequestLog, read_body, serve

_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "proxy-connection",
}
_ALLOWED_HOSTS = {"127.0.0.1", "localhost"}


class ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    user: str | None = None
    password: str | None = None
    log: list  # set per server
    lock: threading.Lock

    def log_message(self, format, *args):  # noqa: A002 - keep test output quiet
        pass

    # -- auth and bookkeeping -----------------------------------------------------------------------
    def _credentials(self) -> tuple[str | None, bool]:
        header = self.headers.get("Proxy-Authorization", "")
        user = None
        given = None
        if header.lower().startswith("basic "):
            try:
                user, _, given = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                user = None
        if self.user is None:
            return user, True
        return user, user == self.user and given == self.password

    def _record(self, target: str, user: str | None, authorized: bool, status: int) -> None:
        with self.lock:
            self.log.append({"method": self.command, "target": target, "user": user, "authorized": authorized, "status": status})

    def _deny(self, target: str, user: str | None) -> None:
        self._record(target, user, False, 407)
        body = b"proxy authentication required\n"
        self.send_response(407, "Proxy Authentication Required")
        self.send_header("Proxy-Authenticate", 'Basic realm="sdsetup-tests"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _refuse(self, target: str, user: str | None, status: int, why: str) -> None:
        self._record(target, user, True, status)
        body = why.encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    # -- CONNECT tunnels ----------------------------------------------------------------------------
    def do_CONNECT(self):  # noqa: N802
        target = self.path
        user, authorized = self._credentials()
        if not authorized:
            self._deny(target, user)
            return
        host, _, port = target.rpartition(":")
        if host.strip("[]") not in _ALLOWED_HOSTS:
            self._refuse(target, user, 403, "this test proxy only reaches 127.0.0.1")
            return
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        except OSError as exc:
            self._refuse(target, user, 502, f"cannot reach {target}: {exc}")
            return
        self._record(target, user, True, 200)
        self.send_response(200, "Connection Established")
        self.end_headers()
        self.close_connection = True
        client = self.connection
        try:
            sockets = [client, upstream]
            while True:
                readable, _, errored = select.select(sockets, [], sockets, 30)
                if errored or not readable:
                    break
                done = False
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        done = True
                        break
                    (upstream if sock is client else client).sendall(data)
                if done:
                    break
        except OSError:
            pass
        finally:
            upstream.close()

    # -- absolute-form requests ---------------------------------------------------------------------
    def _forward(self):
        target = self.path
        user, authorized = self._credentials()
        body = read_body(self)
        if not authorized:
            self._deny(target, user)
            return
        parts = urlsplit(target)
        if parts.scheme != "http" or (parts.hostname or "") not in _ALLOWED_HOSTS:
            self._refuse(target, user, 403, "this test proxy forwards only http://127.0.0.1 URLs")
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        if body or self.command in ("POST", "PUT"):
            headers["Content-Length"] = str(len(body))
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        try:
            conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
            conn.request(self.command, path, body=body or None, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        except OSError as exc:
            self._refuse(target, user, 502, f"cannot reach {parts.hostname}:{parts.port}: {exc}")
            return
        self._record(target, user, True, response.status)
        self.send_response(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                self.send_header(key, value)
        # A HEAD answer has no body, so its length is the origin's (clients size files by it).
        length = response.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length if length is not None else str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        conn.close()

    do_GET = do_POST = do_HEAD = do_PUT = _forward  # noqa: N815


class ProxyServer(RequestLog):
    def __init__(self, server, user, password):
        self.server = server
        self.user = user
        self.password = password

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        auth = f"{self.user}:{self.password}@" if self.user is not None else ""
        return f"http://{auth}127.0.0.1:{self.port}"

    def url_with(self, user: str, password: str) -> str:
        return f"http://{user}:{password}@127.0.0.1:{self.port}"


@contextmanager
def serve_proxy(user: str | None = None, password: str | None = None) -> Iterator[ProxyServer]:
    with serve(ProxyHandler, user=user, password=password, log=[], lock=threading.Lock()) as server:
        yield ProxyServer(server, user, password)
