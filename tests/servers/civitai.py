"""A Civitai-shaped API server for tests (127.0.0.1, built on httpbase).

    with serve_civitai() as api:
        api.add_version(123, model_id=7, model_type="LORA", name="x.safetensors", sha256=..., size=..., download_to=CDN_URL)
        api.url("/api/v1/model-versions/123")   # the version's JSON, as civitai.com/api/v1/model-versions/ID answers
        api.requests                             # [{"path", "authorization"}]

`/api/download/models/ID` answers 302 to `download_to` (the real API redirects to its storage CDN, another
host). With `require_token`, the API answers 401 without `Authorization: Bearer <token>`."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Iterator
from urllib.parse import urlsplit

from tests.servers import httpbase


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    docs: dict
    redirects: dict
    log: list
    lock: threading.Lock
    token: str | None = None

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        with self.lock:
            self.log.append({"path": path, "authorization": self.headers.get("Authorization")})
        if self.token and self.headers.get("Authorization") != f"Bearer {self.token}":
            return self._send(401, b'{"error":"Unauthorized"}', {"Content-Type": "application/json"})
        if path in self.redirects:
            return self._send(302, b"", {"Location": self.redirects[path]})
        if path in self.docs:
            return self._send(200, json.dumps(self.docs[path]).encode(), {"Content-Type": "application/json"})
        return self._send(404, b'{"error":"Not found"}', {"Content-Type": "application/json"})

    do_HEAD = do_GET


class CivitaiServer(httpbase.RequestLog):
    def __init__(self, server) -> None:
        self.server = server

    @property
    def handler(self):
        return self.server.RequestHandlerClass

    def url(self, path: str = "/") -> str:
        return self.server.url(path)

    def require_token(self, token: str | None) -> None:
        self.handler.token = token

    def add_version(self, version_id: int, *, model_id: int, model_type: str, name: str, sha256: str, size: int,
                    download_to: str) -> None:
        download = self.url(f"/api/download/models/{version_id}")
        doc = {
            "id": version_id, "modelId": model_id, "name": "v1.0",
            "model": {"name": f"model {model_id}", "type": model_type},
            "files": [{"id": version_id * 10, "name": name, "type": "Model", "primary": True, "sizeKB": size / 1024,
                       "hashes": {"SHA256": sha256.upper()}, "downloadUrl": f"https://civitai.com/api/download/models/{version_id}"}],
            "downloadUrl": download,
        }
        with self.handler.lock:
            self.handler.docs[f"/api/v1/model-versions/{version_id}"] = doc
            self.handler.docs[f"/api/v1/models/{model_id}"] = {"id": model_id, "type": model_type, "modelVersions": [doc]}
            self.handler.redirects[f"/api/download/models/{version_id}"] = download_to


@contextmanager
def serve_civitai() -> Iterator[CivitaiServer]:
    with httpbase.serve(_Handler, docs={}, redirects={}, log=[], lock=threading.Lock()) as server:
        yield CivitaiServer(server)
