"""The real-code world for bench/real_ui, on 127.0.0.1: what GitHub, the PyTorch index and the Hub would
serve, built from stored snapshots and files on this disk; PyPI is the real one.

- git host: `git http-backend` (tests/servers/gitserver.py) over bare repositories whose objects are the
  stored snapshots (search tool `fetch`, /work/.mirror/OWNER+REPO/repo), served under the upstream
  names; a repository kept only in a fork (A1111 v1.10.1) is served under its upstream name.
- archives: github.com/OWNER/REPO/archive/COMMIT.zip made with `git archive` (top folder REPO-COMMIT).
- torch index (PEP 503): the torch build this disk holds, standing in for the manifest's version.
- Hub: openai/clip-vit-large-patch14 files at their proven bytes (a builder module that rebuilds them).
- a counting CONNECT/HTTP proxy: every byte sdsetup, pip and git fetch from off this machine passes it.
"""

from __future__ import annotations

import html
import importlib.util
import os
import re
import select
import socket
import socketserver
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

MIRROR = Path(os.environ.get("REALUI_MIRROR", "/work/.mirror"))
# upstream owner/repo -> the stored snapshot that holds the pinned commits (fork where upstream is too big
# or gone). The commit id guarantees the content whatever the snapshot's name.
REPOS = {
    "AUTOMATIC1111/stable-diffusion-webui": "kklouzal+stable-diffusion-webui",
    "AUTOMATIC1111/stable-diffusion-webui-assets": "AUTOMATIC1111+stable-diffusion-webui-assets",
    "w-e-w/stablediffusion": "Stability-AI+stablediffusion",
    "Stability-AI/stablediffusion": "Stability-AI+stablediffusion",
    "Stability-AI/generative-models": "Stability-AI+generative-models",
    "w-e-w/generative-models": "Stability-AI+generative-models",
    "crowsonkb/k-diffusion": "crowsonkb+k-diffusion",
    "salesforce/BLIP": "salesforce+BLIP",
    "openai/CLIP": "openai+CLIP",
    "mlfoundations/open_clip": "mlfoundations+open_clip",
    "lllyasviel/stable-diffusion-webui-forge": "lllyasviel+stable-diffusion-webui-forge",
    "lllyasviel/huggingface_guess": "lllyasviel+huggingface_guess",
    "comfyanonymous/ComfyUI": "Comfy-Org+ComfyUI",
    "Comfy-Org/ComfyUI": "Comfy-Org+ComfyUI",
}
# The local torch source: the wheels this disk holds (PEP 503 pages under these roots).
DISK_INDEXES = [Path("/opt/pypi-more/simple"), Path("/opt/pypi/simple")]
DISK_FIND_LINKS = [Path("/opt/wheels")]
# What the torch index serves: torch, its vision companion and their CUDA-runtime dependencies.
TORCH_NAMES = re.compile(r"^(torch|torchvision|torchaudio|triton|nvidia-.*|cuda-.*)$")


def _git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def make_git_root(root: Path, repos: dict[str, str] = REPOS) -> dict[str, str]:
    """ROOT/OWNER/REPO.git for each upstream name: a bare repository borrowing the snapshot's objects
    (objects/info/alternates) with its refs; nothing of the snapshot is changed. Returns name -> problem."""
    problems = {}
    for name, stored in repos.items():
        src = MIRROR / stored / "repo"
        bare = root / f"{name}.git"
        if not src.is_dir():
            problems[name] = f"no snapshot at {src} (search tool: fetch github:{stored.replace('+', '/')})"
            continue
        if (bare / "HEAD").is_file():
            continue
        bare.mkdir(parents=True, exist_ok=True)
        _git("init", "-q", "--bare", str(bare))
        (bare / "objects" / "info" / "alternates").write_text(str((src / "objects").resolve()) + "\n")
        refs = subprocess.run(["git", "-C", str(src), "for-each-ref", "--format=%(objectname) %(refname)"],
                              capture_output=True, text=True, check=True).stdout
        (bare / "packed-refs").write_text("# pack-refs with: peeled\n" + refs)
        head = subprocess.run(["git", "-C", str(src), "symbolic-ref", "HEAD"], capture_output=True, text=True).stdout.strip()
        if head:
            _git("-C", str(bare), "symbolic-ref", "HEAD", head)
        _git("-C", str(bare), "config", "http.uploadpack", "true")
        _git("-C", str(bare), "config", "uploadpack.allowAnySHA1InWant", "true")
    return problems


def has_commit(root: Path, name: str, commit: str) -> bool:
    bare = root / f"{name}.git"
    return subprocess.run(["git", "-C", str(bare), "cat-file", "-e", f"{commit}^{{commit}}"],
                          capture_output=True).returncode == 0


def missing_paths(root: Path, name: str, commit: str) -> list[str]:
    """Paths of the commit's tree whose blobs the snapshot lacks (snapshots leave out some large files)."""
    bare = str(root / f"{name}.git")
    tree = subprocess.run(["git", "-C", bare, "ls-tree", "-r", commit], capture_output=True, text=True, check=True).stdout
    entries = [line.split("\t", 1) for line in tree.splitlines() if line.split()[1] == "blob"]
    shas = "".join(meta.split()[2] + "\n" for meta, _ in entries)
    check = subprocess.run(["git", "-C", bare, "cat-file", "--batch-check"], input=shas, capture_output=True, text=True).stdout
    gone = {line.split()[0] for line in check.splitlines() if line.endswith(" missing")}
    return [path for meta, path in entries if meta.split()[2] in gone]


def seed_partial_checkout(root: Path, name: str, commit: str, dest: Path, missing: list[str]) -> None:
    """DEST checked out at COMMIT from the git host's repository, without the MISSING paths: a partial
    clone (blob:none) with a sparse checkout that leaves them out, so HEAD is the pinned commit and every
    file the code needs is there."""
    bare = root / f"{name}.git"
    _git("-C", str(bare), "config", "uploadpack.allowFilter", "true")
    _git("-C", str(bare), "config", "uploadpack.allowAnySHA1InWant", "true")
    if dest.exists():
        import shutil
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _git("clone", "-q", "--filter=blob:none", "--no-checkout", f"file://{bare}", str(dest))
    _git("-C", str(dest), "sparse-checkout", "set", "--no-cone", "/*", *[f"!/{p}" for p in missing])
    _git("-C", str(dest), "checkout", "-q", commit)
    _git("-C", str(dest), "remote", "set-url", "origin", f"https://github.com/{name}.git")


def make_archive(git_root: Path, www: Path, name: str, commit: str) -> Path:
    """www/gh/OWNER/REPO/archive/COMMIT.zip, as github.com serves it (top folder REPO-COMMIT/)."""
    out = www / "gh" / name / "archive" / f"{commit}.zip"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        repo = name.split("/")[1]
        tmp = out.with_suffix(".part")
        subprocess.run(["git", "-C", str(git_root / f"{name}.git"), "archive", "--format=zip",
                        f"--prefix={repo}-{commit}/", "-o", str(tmp), commit], check=True, capture_output=True)
        tmp.replace(out)
    return out


def without_setuptools_requirement(source: Path, dest: Path) -> bool:
    """A copy of a torch wheel whose metadata no longer asks for setuptools (RECORD updated); False when
    it asks for none. torch >= 2.4 wheels require setuptools (>= 77 for 2.13/2.14), which the A1111 and
    Forge requirements pin at 69.5.1; the manifests' torch (2.1.2, 2.3.1) asked for none, so the substitute
    must not either, or pip cannot resolve the web UI's requirements beside it."""
    import base64
    import hashlib
    import zipfile

    with zipfile.ZipFile(source) as zin:
        meta_name = next(n for n in zin.namelist() if n.endswith(".dist-info/METADATA"))
        meta = zin.read(meta_name).decode("utf-8")
        kept = "".join(l for l in meta.splitlines(keepends=True) if not re.match(r"Requires-Dist: setuptools\b", l))
        if kept == meta:
            return False
        if dest.is_file():
            return True
        record_name = meta_name.rsplit("/", 1)[0] + "/RECORD"
        digest = base64.urlsafe_b64encode(hashlib.sha256(kept.encode()).digest()).rstrip(b"=").decode()
        record = "".join(f"{meta_name},sha256={digest},{len(kept.encode())}\n" if l.startswith(meta_name + ",") else l
                         for l in zin.read(record_name).decode().splitlines(keepends=True))
        tmp = dest.with_suffix(".part")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zout:
            for info in zin.infolist():
                data = kept.encode() if info.filename == meta_name else record.encode() if info.filename == record_name else zin.read(info)
                zout.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
        tmp.replace(dest)
    return True


def make_torch_index(www: Path, tag: str = "cpu") -> int:
    """www/torch/TAG/NAME/index.html for the torch family found on this disk, files linked under
    www/torch-files/. Returns the number of files listed."""
    files_dir = www / "torch-files"
    files_dir.mkdir(parents=True, exist_ok=True)
    pages: dict[str, dict[str, str]] = {}
    for index in DISK_INDEXES:
        if not index.is_dir():
            continue
        for project in index.iterdir():
            if not (project.is_dir() and TORCH_NAMES.match(project.name)):
                continue
            page = project / "index.html"
            if not page.is_file():
                continue
            for href in re.findall(r'href="([^"]+)"', page.read_text()):
                path, _, frag = href.partition("#")
                source = (project / path).resolve()
                if source.is_file():
                    link = files_dir / source.name
                    if project.name == "torch" and without_setuptools_requirement(source, link):
                        frag = ""  # other bytes than the disk's: no hash
                    elif not link.exists():
                        link.symlink_to(source)
                    pages.setdefault(project.name, {})[source.name] = frag
    for folder in DISK_FIND_LINKS:
        for wheel in folder.glob("*.whl") if folder.is_dir() else []:
            project = re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()
            if TORCH_NAMES.match(project):
                pages.setdefault(project, {})[wheel.name] = ""
                link = files_dir / wheel.name
                if not (project == "torch" and without_setuptools_requirement(wheel, link)) and not link.exists():
                    link.symlink_to(wheel.resolve())
    count = 0
    for project, files in pages.items():
        page = www / "torch" / tag / project / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        links = "".join(f'<a href="../../../torch-files/{html.escape(name)}{"#" + frag if frag else ""}">{html.escape(name)}</a>\n'
                        for name, frag in sorted(files.items()))
        page.write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")
        count += len(files)
    root = www / "torch" / tag / "index.html"
    root.write_text("<!DOCTYPE html><html><body>\n" + "".join(f'<a href="{p}/">{p}</a>\n' for p in sorted(pages)) + "</body></html>\n")
    return count


def load_hub_builder(path: Path):
    """The module that rebuilds a Hub repository's files at their proven bytes (REPO_ID, REVISION,
    hub_bytes(name)); tests/fixtures/hub/clip_l14.py in a checkout that has it."""
    spec = importlib.util.spec_from_file_location("realui_hub_builder", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_hub(www: Path, builder, names: list[str]) -> dict[str, int]:
    """www/hf/REPO/resolve/{main,COMMIT}/NAME at the builder's bytes. Returns name -> size."""
    sizes = {}
    for rev in ("main", builder.REVISION):
        for name in names:
            data = builder.hub_bytes(name)
            out = www / "hf" / builder.REPO_ID / "resolve" / rev / name
            out.parent.mkdir(parents=True, exist_ok=True)
            if not out.is_file() or out.read_bytes() != data:
                out.write_bytes(data)
            sizes[name] = len(data)
    return sizes


# -- the counting proxy --------------------------------------------------------------------------------
@dataclass
class Counter:
    lock: threading.Lock = field(default_factory=threading.Lock)
    down: int = 0            # bytes received from hosts off this machine
    hosts: dict = field(default_factory=dict)

    def add(self, host: str, n: int) -> None:
        with self.lock:
            self.down += n
            self.hosts[host] = self.hosts.get(host, 0) + n


_LOCAL = {"127.0.0.1", "localhost", "::1"}


class _ProxyHandler(socketserver.BaseRequestHandler):
    counter: Counter

    def handle(self) -> None:
        client = self.request
        client.settimeout(60)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = client.recv(65536)
            if not chunk:
                return
            buf += chunk
            if len(buf) > 1 << 20:
                return
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = (lines[0].split(" ") + ["", ""])[:3]
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            host = host.strip("[]")
            try:
                upstream = socket.create_connection((host, int(port)), timeout=30)
            except OSError as exc:
                client.sendall(f"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n".encode())
                return
            client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
        else:
            parts = urlsplit(target)
            host, port = parts.hostname or "", parts.port or 80
            try:
                upstream = socket.create_connection((host, port), timeout=30)
            except OSError:
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            headers = [l for l in lines[1:] if not l.lower().startswith(("proxy-", "connection:", "keep-alive:"))]
            out = "\r\n".join([f"{method} {path} {version}", *headers, "Connection: close", "", ""]).encode("latin-1")
            upstream.sendall(out + rest)
        local = host in _LOCAL
        try:
            socks = [client, upstream]
            while True:
                readable, _, _ = select.select(socks, [], [], 300)
                if not readable:
                    break
                for sock in readable:
                    data = sock.recv(262144)
                    if not data:
                        return
                    if sock is upstream:
                        if not local:
                            self.counter.add(host, len(data))
                        client.sendall(data)
                    else:
                        upstream.sendall(data)
        except OSError:
            pass
        finally:
            upstream.close()


class CountingProxy:
    def __init__(self) -> None:
        self.counter = Counter()
        handler = type("Handler", (_ProxyHandler,), {"counter": self.counter})
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "CountingProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
