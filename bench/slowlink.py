"""A TCP forwarder that makes 127.0.0.1 look like a long, throttled link (for benches and tests).

Each accepted connection gets its own upstream connection. Bytes are held `rtt/2` in each direction,
a new connection costs one extra round trip before its first byte arrives (the TCP handshake), and each
direction of each connection is limited to `rate` bytes/s (how public mirrors throttle), so parallel
connections add up while one connection does not.

    from bench.slowlink import SlowLink
    with SlowLink(("127.0.0.1", 8080), rtt=0.150, rate=4_000_000) as link:
        url = f"http://127.0.0.1:{link.port}/..."

    python bench/slowlink.py UPSTREAM_PORT --rtt-ms 150 --rate-mb 4     (until Ctrl-C)
"""

from __future__ import annotations

import argparse
import collections
import socket
import threading
import time

CHUNK = 64 * 1024


class _Pipe:
    """One direction of one connection: a reader that timestamps chunks, a writer that delivers each
    one `delay` seconds later, no faster than `rate` bytes/s."""

    def __init__(self, src: socket.socket, dst: socket.socket, *, delay: float, rate: float | None,
                 not_before: float, stop: threading.Event) -> None:
        self.src, self.dst, self.delay, self.rate = src, dst, delay, rate
        self.not_before = not_before
        self.stop = stop
        self.queue: collections.deque = collections.deque()
        self.ready = threading.Condition()
        self.eof = False

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._read, daemon=True), threading.Thread(target=self._write, daemon=True)]
        for thread in threads:
            thread.start()
        return threads

    def _read(self) -> None:
        try:
            while not self.stop.is_set():
                data = self.src.recv(CHUNK)
                if not data:
                    break
                with self.ready:
                    self.queue.append((max(time.monotonic(), self.not_before) + self.delay, data))
                    self.ready.notify()
        except OSError:
            pass
        with self.ready:
            self.eof = True
            self.ready.notify()

    def _write(self) -> None:
        sent, began = 0, None
        try:
            while True:
                with self.ready:
                    while not self.queue and not self.eof and not self.stop.is_set():
                        self.ready.wait(0.5)
                    if self.stop.is_set() or (not self.queue and self.eof):
                        break
                    due, data = self.queue.popleft()
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if self.rate:
                    # Token bucket over the connection's life, restarted after an idle gap.
                    now = time.monotonic()
                    if began is None or now - (began + sent / self.rate) > 0.05:
                        began, sent = now, 0
                    for start in range(0, len(data), 16 * 1024):
                        piece = data[start:start + 16 * 1024]
                        ahead = began + (sent + len(piece)) / self.rate - time.monotonic()
                        if ahead > 0:
                            time.sleep(ahead)
                        self.dst.sendall(piece)
                        sent += len(piece)
                else:
                    self.dst.sendall(data)
        except OSError:
            pass
        try:
            self.dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class SlowLink:
    """Listens on 127.0.0.1:port and forwards to `upstream` through a delayed, throttled link."""

    def __init__(self, upstream: tuple[str, int], *, rtt: float = 0.0, rate: float | None = None, port: int = 0) -> None:
        self.upstream, self.rtt, self.rate = upstream, float(rtt), rate
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", port), backlog=256)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "SlowLink":
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.stop.set()
        try:
            self.listener.close()
        except OSError:
            pass
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.close()
                except OSError:
                    pass
            self._sockets.clear()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        accepted = time.monotonic()
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
            upstream.settimeout(None)
        except OSError:
            client.close()
            return
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self.connections += 1
            self._sockets += [client, upstream]
        half = self.rtt / 2
        # The handshake: the client's first byte leaves one round trip after it connected.
        up = _Pipe(client, upstream, delay=half, rate=self.rate, not_before=accepted + self.rtt, stop=self.stop)
        down = _Pipe(upstream, client, delay=half, rate=self.rate, not_before=accepted, stop=self.stop)
        threads = up.start() + down.start()
        for thread in threads:
            thread.join()
        for sock in (client, upstream):
            try:
                sock.close()
            except OSError:
                pass
        with self._lock:
            for sock in (client, upstream):
                if sock in self._sockets:
                    self._sockets.remove(sock)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("upstream_port", type=int)
    parser.add_argument("--upstream-host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rtt-ms", type=float, default=150)
    parser.add_argument("--rate-mb", type=float, default=0, help="MB/s per connection and direction (0: no limit)")
    args = parser.parse_args()
    with SlowLink((args.upstream_host, args.upstream_port), rtt=args.rtt_ms / 1000,
                  rate=args.rate_mb * 1e6 or None, port=args.port) as link:
        print(f"forwarding 127.0.0.1:{link.port} -> {args.upstream_host}:{args.upstream_port}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
