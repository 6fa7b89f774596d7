"""A "firewalled world" on 127.0.0.1: official hosts that reset or stall, and mirrors with real URL shapes.

    with blackhole("reset") as github:       # every connection is reset at once (a firewall's RST)
    with blackhole("stall") as hf:           # accepted, then never a byte (a poisoned route, a dead proxy)
    with serve_ua_gate(root) as tuna:        # a PyPI mirror that answers 403 + HTML unless the client is pip

Real host names cannot be resolved here, so a test's config file redefines the `official` and `cn`
profiles with these servers' URLs (the same `[profiles.NAME]` a user writes); sdsetup's code is unchanged.
"""

from __future__ import annotations

import socket
import struct
import threading
from contextlib import contextmanager
from typing import Iterator

from tests.servers.pypi_index import StaticTree


class BlackHole:
    """A TCP listener that resets (`reset`) or holds (`stall`) every connection; counts them."""

    def __init__(self, mode: str) -> None:
        assert mode in ("reset", "stall")
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.connections = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            if self.mode == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()  # RST, as a firewall's reset looks to the client
            else:
                self._held.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for conn in self._held:
            conn.close()
        self.sock.close()


@contextmanager
def blackhole(mode: str) -> Iterator[BlackHole]:
    hole = BlackHole(mode)
    try:
        yield hole
    finally:
        hole.close()


class UserAgentGate(StaticTree):
    """TUNA in 2026: a 403 with an HTML page to "uncommon clients"; pip itself is served."""

    def _serve(self) -> None:
        agent = self.headers.get("User-Agent", "")
        if agent.startswith("pip/"):
            return super()._serve()
        with self.lock:
            self.log.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "refused": True})
        body = b"<!DOCTYPE html><html><body><h1>403 Forbidden</h1>uncommon client</body></html>\n"
        self.send_response(403)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = _serve  # noqa: N815


def serve_ua_gate(root, **attrs):
    from tests.servers.httpbase import serve

    return serve(UserAgentGate, root=str(root), log=[], lock=threading.Lock(), **attrs)


def firewall_config(*, official: dict[str, str], pypi: list[tuple[str, str, int | None]], torch: list[tuple[str, str]],
                    github: list[dict], huggingface: list[tuple[str, str]], rewrites: list[tuple[str, str]] = ()) -> str:
    """The config file of a firewalled machine: `official` redefined to the dead stand-ins
    (keys pypi, torch, github, huggingface: base URLs), `cn` to the local mirrors."""

    def table(items: dict) -> str:
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in items.items()) + " }"

    lines = [
        "[profiles.official]",
        f'pypi = [{{ name = "pypi.org", url = "{official["pypi"]}/simple/" }}]',
        f'torch = [{{ name = "pytorch.org", url = "{official["torch"]}/whl/{{tag}}/" }}]',
        f'github = [{{ name = "github.com", url = "{official["github"]}/", style = "host" }}]',
        f'huggingface = [{{ name = "huggingface.co", url = "{official["huggingface"]}" }}]',
        "",
        "[profiles.cn]",
        "pypi = [" + ", ".join(table({"name": n, "url": u, **({"connections": c} if c else {})}) for n, u, c in pypi) + "]",
        "torch = [" + ", ".join(table({"name": n, "url": u}) for n, u in torch) + "]",
        "github = [" + ", ".join(table(g) for g in github) + "]",
        "huggingface = [" + ", ".join(table({"name": n, "url": u}) for n, u in huggingface) + "]",
    ]
    for prefix, replace in rewrites:
        lines += ["", "[[rewrite]]", f'prefix = "{prefix}"', f'replace = "{replace}"']
    return "\n".join(lines) + "\n"


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
