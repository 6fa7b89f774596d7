"""SDSETUP_CA_BUNDLE (Settings.ca_bundle) is the CA sdsetup trusts, even when REQUESTS_CA_BUNDLE or
CURL_CA_BUNDLE name another one: requests lets those variables override `session.verify` (issue 11
item 13). A real HTTPS server on 127.0.0.1 with a certificate made here; no mocking of requests."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sdsetup.net.session import build_session
from sdsetup.settings import Settings

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificates")


def _cert(workdir: Path, name: str) -> tuple[Path, Path]:
    cert, key = workdir / f"{name}.pem", workdir / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # noqa: D102 - keep pytest output clean
        pass


@contextmanager
def _https(root: Path, cert: Path, key: Path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture()
def tls(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "hello.txt").write_text("hello over TLS")
    right, right_key = _cert(tmp_path, "right")
    wrong, _ = _cert(tmp_path, "wrong")
    with _https(root, right, right_key) as base:
        yield base, right, wrong


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_sdsetup_ca_bundle_wins_over_the_requests_and_curl_variables(tls, monkeypatch, variable):
    base, right, wrong = tls
    monkeypatch.setenv(variable, str(wrong))
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    session = build_session(Settings(ca_bundle=str(right)))
    response = session.get(f"{base}/hello.txt", timeout=10)
    assert response.text == "hello over TLS"


def test_the_environment_ca_still_applies_when_sdsetup_has_none(tls, monkeypatch):
    base, right, wrong = tls
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(right))
    assert build_session(Settings()).get(f"{base}/hello.txt", timeout=10).text == "hello over TLS"


def test_verification_stays_on_with_a_ca_bundle_that_does_not_sign_the_server(tls, monkeypatch):
    import requests

    base, right, wrong = tls
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(right))  # the environment's right CA must not rescue a wrong setting
    with pytest.raises(requests.exceptions.SSLError):
        build_session(Settings(ca_bundle=str(wrong))).get(f"{base}/hello.txt", timeout=10)


def test_ca_bundle_adds_a_ca_to_certifis_store_instead_of_replacing_it(tmp_path, monkeypatch):
    """Issue 23 item 24: README says ca_bundle *adds* a corporate CA; it replaced the trust store, so every
    public server failed. certifi's store is stood in for by a file holding a "public" CA (the machine
    has no internet); a server signed by it and one signed by the corporate CA must both verify, from
    sdsetup's session and from the file handed to git and pip."""
    import certifi

    from sdsetup.net.session import trust_store

    root = tmp_path / "www"
    root.mkdir()
    (root / "hello.txt").write_text("hello over TLS")
    public, public_key = _cert(tmp_path, "public")
    corporate, corporate_key = _cert(tmp_path, "corporate")
    monkeypatch.setattr(certifi, "where", lambda: str(public))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    settings = Settings(ca_bundle=str(corporate), cache_dir=tmp_path / "cache")
    with _https(root, public, public_key) as public_site, _https(root, corporate, corporate_key) as corporate_site:
        session = build_session(settings)
        assert session.get(f"{public_site}/hello.txt", timeout=10).text == "hello over TLS"
        assert session.get(f"{corporate_site}/hello.txt", timeout=10).text == "hello over TLS"
        store = Path(trust_store(settings))
        for site in (public_site, corporate_site):  # what git (http.sslCAInfo) and pip (--cert) are given
            context = ssl.create_default_context(cafile=str(store))
            import urllib.request

            with urllib.request.urlopen(f"{site}/hello.txt", context=context, timeout=10) as answer:
                assert answer.read() == b"hello over TLS"
    assert corporate.read_bytes() == corporate.read_bytes() and store != corporate  # the user's file is not touched
