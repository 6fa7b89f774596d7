"""Package-index and Hugging Face trees for tests, and a small static server for them.

- `build_wheel(dir, name, version, tag=, requires=, body=)`: a tiny wheel, byte-for-byte deterministic;
  `write_zip(path, files)`: the deterministic zip under it (also for GitHub-style source archives).
- `write_simple_index(index_dir, wheels, files_dir)`: a PEP 503 tree (`index_dir/<project>/index.html`)
  whose links carry `#sha256=` fragments (pip checks them), the files copied into `files_dir`.
- `write_find_links_page(dir, wheels)`: one flat HTML page of wheel links (Aliyun-style torch mirror).
- `write_hf_tree(root, repo_id, revision, files)`: `root/<repo>/resolve/<rev>/<file>` (HF endpoint layout);
  `model_like_bytes(size, seed)`: deterministic incompressible bytes for a model file in such a tree.
- `StaticTree`: serves a directory (directories answer with their index.html); `X-Repo-Commit` on
  `/resolve/` paths like huggingface.co; optional `delay` before answering and `rate` limit, for probes.
  tests/servers/fileserver.py (fault-injecting) can serve the same trees.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
import re
import shutil
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import unquote, urlsplit

_EPOCH = (1980, 1, 1, 0, 0, 0)


def normalize(name: str) -> str:
    from sdsetup.versions import project_name  # PEP 503, as sdsetup and pip read it

    return project_name(name)


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def write_zip(path: Path, files: dict[str, bytes | str]) -> Path:
    """A zip whose bytes depend only on `files`: sorted entries, fixed timestamps and permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for entry, data in sorted(files.items()):
            zinfo = zipfile.ZipInfo(entry, date_time=_EPOCH)
            zinfo.external_attr = 0o644 << 16
            zinfo.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(zinfo, data)
    return path


def build_wheel(dest_dir: Path, name: str, version: str, *, tag: str = "py3-none-any", requires: tuple[str, ...] = (),
                body: str = "") -> Path:
    """A tiny wheel (any tag; its code is never run on another platform) that may declare dependencies
    (Requires-Dist) and add `body` to its module. Same inputs, same bytes."""
    dist = re.sub(r"[-.]+", "_", name)
    module = dist.lower()
    info = f"{dist}-{version}.dist-info"
    metadata = (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: sdsetup test package\n"
                + "".join(f"Requires-Dist: {r}\n" for r in requires))
    entries = {
        f"{module}/__init__.py": (f'__version__ = "{version}"\n' + body).encode(),
        f"{info}/METADATA": metadata.encode(),
        f"{info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: sdsetup-tests\nRoot-Is-Purelib: true\nTag: {tag}\n".encode(),
    }
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in sorted(entries.items()))
    entries[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    return write_zip(dest_dir / f"{dist}-{version}-{tag}.whl", entries)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _project_of(wheel: Path) -> str:
    return normalize(wheel.name.split("-")[0])


def write_simple_index(index_dir: Path, wheels: list[Path], files_dir: Path) -> None:
    """PEP 503: index_dir/index.html lists projects; index_dir/<project>/index.html links files."""
    files_dir.mkdir(parents=True, exist_ok=True)
    projects: dict[str, list[Path]] = {}
    for wheel in wheels:
        target = files_dir / wheel.name
        if wheel.resolve() != target.resolve():
            shutil.copyfile(wheel, target)
        projects.setdefault(_project_of(wheel), []).append(target)
    index_dir.mkdir(parents=True, exist_ok=True)
    links = "".join(f'<a href="{p}/">{p}</a>\n' for p in sorted(projects))
    (index_dir / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n")
    for project, files in projects.items():
        page_dir = index_dir / project
        page_dir.mkdir(parents=True, exist_ok=True)
        rows = []
        for file in sorted(files):
            href = Path(os.path.relpath(file, page_dir)).as_posix()
            rows.append(f'<a href="{html.escape(href)}#sha256={sha256_of(file)}">{html.escape(file.name)}</a>\n')
        (page_dir / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{''.join(rows)}</body></html>\n")


def write_find_links_page(page_dir: Path, wheels: list[Path]) -> None:
    """One flat page listing the wheels, which sit next to it (what pip --find-links reads)."""
    page_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for wheel in sorted(wheels, key=lambda p: p.name):
        target = page_dir / wheel.name
        if wheel.resolve() != target.resolve():
            shutil.copyfile(wheel, target)
        rows.append(f'<a href="{html.escape(wheel.name)}#sha256={sha256_of(target)}">{html.escape(wheel.name)}</a><br>\n')
    (page_dir / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{''.join(rows)}</body></html>\n")


def model_like_bytes(size: int, seed: bytes) -> bytes:
    """`size` deterministic, incompressible bytes standing in for a checkpoint (a sha256 chain from `seed`)."""
    out = bytearray()
    block = seed
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:size])


def write_hf_tree(root: Path, repo_id: str, revision: str, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / repo_id / "resolve" / revision / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


class StaticTree(BaseHTTPRequestHandler):
    """Serve `root`: files as they are, directories through their index.html, 404 otherwise."""

    protocol_version = "HTTP/1.1"
    root: str
    repo_commit: str = "0" * 40
    delay: float = 0.0  # seconds before the status line (a slow mirror)
    rate: int = 0  # bytes per second for the body; 0 = unlimited
    log: list
    lock: threading.Lock

    def log_message(self, format, *args):  # noqa: A002
        pass

    def _resolve(self) -> Path | None:
        rel = unquote(urlsplit(self.path).path).lstrip("/")
        root = Path(self.root).resolve()
        path = (root / rel).resolve()
        if root != path and root not in path.parents:
            return None
        if path.is_dir():
            path = path / "index.html"
        return path if path.is_file() else None

    def _serve(self) -> None:
        with self.lock:
            self.log.append({"method": self.command, "path": self.path, "headers": dict(self.headers)})
        if self.delay:
            time.sleep(self.delay)
        path = self._resolve()
        if path is None:
            body = b"not found\n"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return
        data = path.read_bytes()
        self.send_response(200)
        content_type = "text/html" if path.suffix == ".html" else "application/octet-stream"
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        if "/resolve/" in self.path:
            self.send_header("X-Repo-Commit", self.repo_commit)
        self.end_headers()
        if self.command == "HEAD":
            return
        if not self.rate:
            self.wfile.write(data)
            return
        step = max(1, self.rate // 20)
        for start in range(0, len(data), step):
            self.wfile.write(data[start:start + step])
            time.sleep(step / self.rate)

    do_GET = do_HEAD = _serve  # noqa: N815


def serve_tree(root: Path, **attrs):
    """`with serve_tree(dir, delay=0.5) as server:` a StaticTree on 127.0.0.1 with its own request log."""
    from tests.servers.httpbase import serve

    return serve(StaticTree, root=str(root), log=[], lock=threading.Lock(), **attrs)
