"""`--proxy http://user:PASSWORD@…` reaches the network calls, and PASSWORD shows up nowhere: not in
stdout/stderr, not in error messages, not in the run log, not in any file sdsetup writes.

The commands run as a user runs them (a subprocess of `python -m sdsetup`), against a local forward
proxy that records what passes through it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from sdsetup import cli
from tests.servers.httpbase import LocalServer
from tests.servers.proxy import serve_proxy
from tests.servers.pypi_index import StaticTree, serve_tree, write_hf_tree

USER = "alice"
PASSWORD = "Canary-7f3e-Pw"
PAYLOAD = b"model bytes " * 1000


def _has_command(name: str) -> bool:
    return any((c.name or c.callback.__name__) == name for c in cli.app.registered_commands)


needs_fetch = pytest.mark.skipif(not _has_command("fetch"), reason="the `fetch` command (issue 3) is not in the CLI yet")
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")


def _secrets() -> list[bytes]:
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode())
    return [PASSWORD.encode(), token]


def _run(args: list[str], home: Path, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, SDSETUP_LOG_DIR=str(home / "logs"), **(extra_env or {}))
    return subprocess.run([sys.executable, "-m", "sdsetup", *args], env=env, capture_output=True, timeout=120)


def _assert_nowhere(result: subprocess.CompletedProcess, *roots: Path) -> list[Path]:
    """The password (and its Basic token) is in no output and no file under `roots`; returns the files seen."""
    for secret in _secrets():
        assert secret not in result.stdout and secret not in result.stderr, "password in the command's output"
    seen = []
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file() and not path.is_symlink():
                seen.append(path)
                data = path.read_bytes()
                for secret in _secrets():
                    assert secret not in data, f"password written to {path}"
    return seen


@pytest.fixture
def origin(tmp_path):
    root = tmp_path / "origin"
    root.mkdir()
    (root / "model.bin").write_bytes(PAYLOAD)
    (root / "simple" / "six").mkdir(parents=True)
    (root / "simple" / "six" / "index.html").write_text("<a href='six.whl'>six</a>\n")
    (root / "torch" / "cpu").mkdir(parents=True)
    (root / "torch" / "cpu" / "index.html").write_text("<a href='torch/'>torch</a>\n")
    write_hf_tree(root / "hf", "openai/clip-vit-large-patch14", "main", {"config.json": b"{}"})
    with serve_tree(root) as server:
        yield server


def _profile(base: str) -> str:
    return (
        "[profiles.local]\n"
        f'pypi = ["{base}/simple/"]\n'
        f'torch = ["{base}/torch/{{tag}}/"]\n'
        f'github = [{{ url = "{base}/gh/", style = "host" }}]\n'
        f'huggingface = ["{base}/hf"]\n'
    )


@contextmanager
def _tls_origin(root: Path, workdir: Path):
    """An HTTPS static server on 127.0.0.1 with a throwaway self-signed certificate; yields (server, cert)."""
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    handler = type("TLSTree", (StaticTree,), {"root": str(root), "log": [], "lock": threading.Lock()})
    server = LocalServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server, cert
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- mirrors probe -------------------------------------------------------------------------------------


def test_probe_goes_through_the_proxy_and_hides_the_password(tmp_path, origin, isolated_env):
    config = tmp_path / "config.toml"
    config.write_text(_profile(origin.base_url))
    with serve_proxy(USER, PASSWORD) as proxy:
        result = _run(["mirrors", "probe", "--mirror", "local", "--channel", "pypi", "--channel", "huggingface",
                       "--proxy", proxy.url, "--config", str(config), "--json"], isolated_env)
        seen = proxy.requests
    assert result.returncode == 0, result.stderr.decode()
    doc = json.loads(result.stdout)
    assert doc["data"]["proxy"] == f"http://{USER}:***@127.0.0.1:{proxy.port}"
    assert {r["target"] for r in seen if r["status"] == 200} == {
        origin.url("/simple/six/"), origin.url("/hf/openai/clip-vit-large-patch14/resolve/main/config.json")}
    files = _assert_nowhere(result, isolated_env, tmp_path)
    logs = [p for p in files if p.parent == isolated_env / "logs"]
    assert logs and "alice:***@" in logs[0].read_text()  # the run log names the proxy, redacted


def test_probe_with_a_wrong_proxy_password_says_so_without_showing_it(tmp_path, origin, isolated_env):
    config = tmp_path / "config.toml"
    config.write_text(_profile(origin.base_url))
    with serve_proxy(USER, "the-right-one") as proxy:
        result = _run(["mirrors", "probe", "--mirror", "local", "--channel", "pypi", "--proxy",
                       proxy.url_with(USER, PASSWORD), "--config", str(config)], isolated_env)
        assert {r["status"] for r in proxy.requests} == {407}
    assert result.returncode == 3
    assert b"HTTP 407" in result.stdout
    _assert_nowhere(result, isolated_env, tmp_path)


@needs_openssl
def test_probe_of_an_https_mirror_tunnels_through_connect(tmp_path, isolated_env):
    root = tmp_path / "tls-root"
    (root / "simple" / "six").mkdir(parents=True)
    (root / "simple" / "six" / "index.html").write_text("six\n")
    with _tls_origin(root, tmp_path) as (server, cert), serve_proxy(USER, PASSWORD) as proxy:
        base = f"https://127.0.0.1:{server.port}"
        config = tmp_path / "config.toml"
        config.write_text(_profile(base))
        result = _run(["mirrors", "probe", "--mirror", "local", "--channel", "pypi", "--proxy", proxy.url,
                       "--config", str(config), "--json"], isolated_env, {"SDSETUP_CA_BUNDLE": str(cert)})
        seen = proxy.requests
        denied = _run(["mirrors", "probe", "--mirror", "local", "--channel", "pypi", "--proxy",
                       proxy.url_with(USER, PASSWORD + "-wrong"), "--config", str(config), "--json"],
                      isolated_env, {"SDSETUP_CA_BUNDLE": str(cert)})
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert json.loads(result.stdout)["data"]["channels"]["pypi"][0]["ok"] is True
    assert ("CONNECT", f"127.0.0.1:{server.port}", 200) in [(r["method"], r["target"], r["status"]) for r in seen]
    _assert_nowhere(result, isolated_env, tmp_path)
    assert denied.returncode == 3
    failure = json.loads(denied.stdout)["data"]["channels"]["pypi"][0]
    assert failure["ok"] is False and "407 Proxy Authentication Required" in failure["error"]
    _assert_nowhere(denied, isolated_env, tmp_path)


# --- fetch (issue 3's command; the acceptance test of issue 4) ------------------------------------------


@needs_fetch
def test_fetch_sends_its_requests_through_the_proxy_and_hides_the_password(tmp_path, origin, isolated_env):
    out = tmp_path / "out" / "model.bin"
    with serve_proxy(USER, PASSWORD) as proxy:
        result = _run(["fetch", origin.url("/model.bin"), "-o", str(out), "--proxy", proxy.url, "--json"], isolated_env)
        seen = proxy.requests
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert out.read_bytes() == PAYLOAD
    reached = [r for r in seen if r["status"] in (200, 206)]
    assert reached and all(r["target"] == origin.url("/model.bin") and r["user"] == USER for r in reached)
    assert len(origin.RequestHandlerClass.log) == len(reached)  # every request to the origin came through the proxy
    _assert_nowhere(result, isolated_env, tmp_path)


@needs_fetch
@pytest.mark.parametrize("case", ["wrong-password", "missing-file"])
def test_fetch_errors_through_the_proxy_never_show_the_password(tmp_path, origin, isolated_env, case):
    out = tmp_path / "out" / "model.bin"
    with serve_proxy(USER, PASSWORD if case == "missing-file" else "the-right-one") as proxy:
        url = origin.url("/model.bin" if case == "wrong-password" else "/missing.bin")
        result = _run(["fetch", url, "-o", str(out), "--proxy", proxy.url_with(USER, PASSWORD), "--json"],
                      isolated_env, {"SDSETUP_TIMEOUT": "3"})
        assert proxy.requests, "the request never reached the proxy"
    assert result.returncode not in (0, 70), result.stderr.decode()
    assert b"error:" in result.stderr and b"Traceback" not in result.stderr
    assert not out.exists()
    _assert_nowhere(result, isolated_env, tmp_path)


@needs_fetch
@needs_openssl
def test_fetch_of_an_https_url_tunnels_through_connect(tmp_path, isolated_env):
    root = tmp_path / "tls-root"
    root.mkdir()
    (root / "model.bin").write_bytes(PAYLOAD)
    out = tmp_path / "out" / "model.bin"
    with _tls_origin(root, tmp_path) as (server, cert), serve_proxy(USER, PASSWORD) as proxy:
        result = _run(["fetch", f"https://127.0.0.1:{server.port}/model.bin", "-o", str(out), "--proxy", proxy.url],
                      isolated_env, {"SDSETUP_CA_BUNDLE": str(cert)})
        seen = proxy.requests
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert out.read_bytes() == PAYLOAD
    assert all(r["method"] == "CONNECT" and r["target"] == f"127.0.0.1:{server.port}" for r in seen if r["status"] == 200)
    _assert_nowhere(result, isolated_env, tmp_path)
