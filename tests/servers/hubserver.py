"""A Hugging Face Hub stand-in on 127.0.0.1 answering the way huggingface.co answers `resolve` URLs.

    files = {("org/name", REVISION, "config.json"): (data, False), ("org/name", REVISION, "model.bin"): (data, True)}
    with serve_hub(files, branches={"main": REVISION}) as hub:
        hub.base_url            # stands in for https://huggingface.co

- an LFS file (True): 302 to /lfs/SHA256 with `X-Linked-Etag: "SHA256"`, `X-Linked-Size`, `X-Repo-Commit`
  and the git pointer's ETag; the body comes from the redirect target.
- a small file (False): 200 with the body, `ETag: "GIT-BLOB-SHA1"` and `X-Repo-Commit`.
- a branch in `branches` resolves to its commit; anything else is 404 (`X-Error-Code: EntryNotFound`).
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote, urlsplit

from tests.servers.httpbase import serve


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    files: dict
    branches: dict
    log: list
    lock: threading.Lock

    def log_message(self, format, *args):  # noqa: A002
        pass

    def _answer(self, status: int, headers: dict, body: bytes = b"") -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _serve(self) -> None:
        path = unquote(urlsplit(self.path).path)
        with self.lock:
            self.log.append((self.command, path))
        if path.startswith("/lfs/"):
            wanted = path[len("/lfs/"):]
            for data, _lfs in self.files.values():
                if hashlib.sha256(data).hexdigest() == wanted:
                    return self._answer(200, {"Content-Type": "application/octet-stream"}, data)
            return self._answer(404, {})
        owner, _, rest = path.lstrip("/").partition("/")
        name, _, rest = rest.partition("/resolve/")
        revision, _, filename = rest.partition("/")
        commit = self.branches.get(revision, revision)
        entry = self.files.get((f"{owner}/{name}", commit, filename))
        if entry is None:
            return self._answer(404, {"X-Error-Code": "EntryNotFound"}, b"Entry not found")
        data, lfs = entry
        common = {"X-Repo-Commit": commit}
        if lfs:
            sha = hashlib.sha256(data).hexdigest()
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(data)}\n".encode()
            return self._answer(302, {**common, "Location": f"/lfs/{sha}", "X-Linked-Etag": f'"{sha}"',
                                      "X-Linked-Size": str(len(data)), "ETag": f'"{git_blob_id(pointer)}"'})
        return self._answer(200, {**common, "ETag": f'"{git_blob_id(data)}"', "Content-Type": "text/plain"}, data)

    do_GET = do_HEAD = _serve  # noqa: N815


def serve_hub(files: dict, branches: dict | None = None):
    return serve(HubHandler, files=dict(files), branches=dict(branches or {}), log=[], lock=threading.Lock())
