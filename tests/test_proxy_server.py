"""The test forward proxy itself: it must really demand auth, tunnel CONNECT and record, or the
proxy tests elsewhere would prove nothing."""

from __future__ import annotations

import base64
import http.client
import urllib.request

import pytest

from tests.servers.proxy import serve_proxy
from tests.servers.pypi_index import serve_tree


@pytest.fixture
def origin(tmp_path):
    (tmp_path / "hello.txt").write_text("hello\n")
    with serve_tree(tmp_path) as server:
        yield server


def _auth(user: str, password: str) -> dict:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Proxy-Authorization": f"Basic {token}"}


def test_absolute_form_get_with_and_without_credentials(origin):
    with serve_proxy("alice", "pw") as proxy:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        conn.request("GET", origin.url("/hello.txt"))
        denied = conn.getresponse()
        denied.read()
        assert denied.status == 407 and "Basic" in denied.getheader("Proxy-Authenticate")
        conn.request("GET", origin.url("/hello.txt"), headers=_auth("alice", "wrong"))
        wrong = conn.getresponse()
        wrong.read()
        assert wrong.status == 407
        conn.request("GET", origin.url("/hello.txt"), headers=_auth("alice", "pw"))
        ok = conn.getresponse()
        assert ok.status == 200 and ok.read() == b"hello\n"
        assert [(r["status"], r["user"], r["authorized"]) for r in proxy.requests] == [
            (407, None, False), (407, "alice", False), (200, "alice", True)]
    assert len(origin.RequestHandlerClass.log) == 1  # only the authorised request reached the origin


def test_head_through_the_proxy_reports_the_origins_size(origin):
    """The download engine sizes a file by HEAD; a proxy that said 0 would make it expect an empty file."""
    with serve_proxy("alice", "pw") as proxy:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        conn.request("HEAD", origin.url("/hello.txt"), headers=_auth("alice", "pw"))
        head = conn.getresponse()
        assert head.status == 200 and head.getheader("Content-Length") == str(len(b"hello\n"))
        assert head.read() == b""
        # No body was sent: the same connection still carries the next request intact.
        conn.request("GET", origin.url("/hello.txt"), headers=_auth("alice", "pw"))
        assert conn.getresponse().read() == b"hello\n"


def test_connect_tunnel(origin):
    with serve_proxy("alice", "pw") as proxy:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        conn.set_tunnel("127.0.0.1", origin.port, headers=_auth("alice", "pw"))
        conn.request("GET", "/hello.txt")
        response = conn.getresponse()
        assert response.status == 200 and response.read() == b"hello\n"
        conn.close()
        bad = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        bad.set_tunnel("127.0.0.1", origin.port, headers=_auth("alice", "nope"))
        with pytest.raises(OSError, match="407"):
            bad.request("GET", "/hello.txt")
        methods = [(r["method"], r["target"], r["status"]) for r in proxy.requests]
    assert methods == [("CONNECT", f"127.0.0.1:{origin.port}", 200), ("CONNECT", f"127.0.0.1:{origin.port}", 407)]


def test_only_loopback_targets_are_forwarded():
    with serve_proxy() as proxy:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy.url}))
        with pytest.raises(urllib.error.HTTPError) as info:
            opener.open("http://example.invalid/", timeout=5)
        assert info.value.code == 403
