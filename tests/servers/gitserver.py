"""A real git smart-HTTP server for tests: `git http-backend` behind a Python HTTP server on 127.0.0.1.

    with serve_git(tmp_path) as git:
        sha = git.create_repo("owner/repo", {"README.md": "hi\\n"})
        git.url("owner/repo.git")                       # direct:  http://127.0.0.1:P/owner/repo.git
        git.prefix_base                                 # http://127.0.0.1:P/  (…/https://github.com/owner/repo.git)
        git.host_base                                   # http://127.0.0.1:P/kk/ (…/kk/owner/repo.git)

The same repositories answer under three URL styles, as GitHub and its proxies do:
- direct                `/OWNER/REPO(.git)/…`                       (stands in for github.com)
- prefix-style proxy    `/https://github.com/OWNER/REPO(.git)/…`    (ghfast.top, gh-proxy.com, …)
- host-replacement      `/kk/OWNER/REPO(.git)/…`                    (kkgithub.com; here as a path prefix)
`requests` records (style, method, path) for each request so tests can prove which route was taken.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urlsplit

from tests.servers.httpbase import RequestLog, read_body, serve

HOST_PREFIX = "/kk"
_GITHUB_PREFIX = "/https://github.com"


def _git(*args: str, cwd: Path | None = None, env: dict | None = None) -> str:
    full_env = dict(os.environ)
    full_env.update({
        "GIT_AUTHOR_NAME": "sdsetup tests", "GIT_AUTHOR_EMAIL": "tests@example.invalid",
        "GIT_COMMITTER_NAME": "sdsetup tests", "GIT_COMMITTER_EMAIL": "tests@example.invalid",
        "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
    })
    full_env.update(env or {})
    result = subprocess.run(["git", *args], cwd=cwd, env=full_env, capture_output=True, text=True, check=True)
    return result.stdout.strip()


def create_repo(root: Path, name: str, files: dict[str, str], *, branch: str = "main") -> str:
    """A bare repository ROOT/OWNER/REPO.git with one commit holding `files`; returns the commit sha."""
    bare = root / f"{name}.git"
    work = root / ".work" / name
    work.mkdir(parents=True, exist_ok=True)
    _git("init", "-q", "-b", branch, str(work))
    for rel, text in files.items():
        path = work / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    _git("add", "-A", cwd=work)
    _git("commit", "-q", "-m", "initial", cwd=work)
    sha = _git("rev-parse", "HEAD", cwd=work)
    bare.parent.mkdir(parents=True, exist_ok=True)
    _git("clone", "-q", "--bare", str(work), str(bare))
    _git("config", "http.uploadpack", "true", cwd=bare)
    # Allow fetching any reachable commit by sha (install fetches pinned commits).
    _git("config", "uploadpack.allowAnySHA1InWant", "true", cwd=bare)
    return sha


class GitHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    project_root: str
    log: list
    lock: threading.Lock

    def log_message(self, format, *args):  # noqa: A002
        pass

    def _route(self) -> tuple[str, str] | None:
        """(style, repo-relative path) or None."""
        raw = urlsplit(self.path).path if not self.path.startswith("/https://") else self.path.split("?", 1)[0]
        path = unquote(raw)
        if path.startswith(_GITHUB_PREFIX + "/"):
            style, rest = "prefix", path[len(_GITHUB_PREFIX):]
        elif path.startswith(HOST_PREFIX + "/"):
            style, rest = "host", path[len(HOST_PREFIX):]
        else:
            style, rest = "direct", path
        match = re.match(r"^/([^/]+)/([^/]+?)(?:\.git)?(/.*)?$", rest)
        if not match:
            return None
        owner, repo, tail = match.groups()
        return style, f"/{owner}/{repo}.git{tail or ''}"

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers:
            if key.lower() not in ("content-length", "status", "transfer-encoding", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        body = read_body(self)
        route = self._route()
        query = urlsplit(self.path).query if not self.path.startswith("/https://") else (self.path.split("?", 1)[1] if "?" in self.path else "")
        with self.lock:
            self.log.append({"style": route[0] if route else None, "method": self.command, "path": self.path})
        if route is None:
            self._send(404, [("Content-Type", "text/plain")], b"not a repository path\n")
            return
        style, path_info = route
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_PROJECT_ROOT": self.project_root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path_info,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
        }
        if os.environ.get("GIT_CONFIG_GLOBAL"):
            env["GIT_CONFIG_GLOBAL"] = os.environ["GIT_CONFIG_GLOBAL"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        result = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60)
        out = result.stdout
        sep = out.find(b"\r\n\r\n")
        head, payload = (out[:sep], out[sep + 4:]) if sep >= 0 else out.split(b"\n\n", 1) if b"\n\n" in out else (out, b"")
        status = 200
        headers = []
        for line in head.decode("latin-1").splitlines():
            if ":" not in line:
                continue
            key, value = line.split(":", 1)
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            else:
                headers.append((key.strip(), value.strip()))
        if result.returncode != 0 and not head:
            status, payload = 500, result.stderr
        self._send(status, headers, payload)

    do_GET = do_POST = do_HEAD = _handle  # noqa: N815


class GitServer(RequestLog):
    def __init__(self, server, root: Path):
        self.server = server
        self.root = root

    def create_repo(self, name: str, files: dict[str, str], **kwargs) -> str:
        return create_repo(self.root, name, files, **kwargs)

    def url(self, path: str = "") -> str:
        return self.server.url("/" + path.lstrip("/"))

    @property
    def base(self) -> str:
        """Stands in for https://github.com/."""
        return self.server.url("/")

    @property
    def prefix_base(self) -> str:
        """A prefix-style GitHub proxy: base + 'https://github.com/OWNER/REPO.git'."""
        return self.server.url("/")

    @property
    def host_base(self) -> str:
        """A host-replacement GitHub proxy: base + 'OWNER/REPO.git'."""
        return self.server.url(HOST_PREFIX + "/")


@contextmanager
def serve_git(root: Path) -> Iterator[GitServer]:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with serve(GitHandler, project_root=str(root), log=[], lock=threading.Lock()) as server:
        yield GitServer(server, root)
