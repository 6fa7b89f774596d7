"""`sdsetup gui` through a real server (a subprocess on 127.0.0.1): the token, Host and Origin checks
that keep other web pages out, what is served, the redaction of every answer, and the first line."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

URL_LINE = re.compile(r"^http://127\.0\.0\.1:(\d+)/\?token=([A-Za-z0-9_-]{24,})$")


class Gui:
    def __init__(self, *args: str, env: dict | None = None, cwd: Path | None = None) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "sdsetup", "gui", "--no-browser", *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}, cwd=cwd)
        self.first_line = self.process.stdout.readline().rstrip("\n")
        found = URL_LINE.match(self.first_line)
        assert found, (self.first_line, self.process.stderr.read() if self.process.poll() is not None else "")
        self.port, self.token = int(found[1]), found[2]

    def request(self, path: str, *, method: str = "GET", headers: dict | None = None, body: dict | None = None,
                token: str | None = "header") -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        sent = {"Host": f"127.0.0.1:{self.port}"}
        if token == "header":
            sent["X-Sdsetup-Token"] = self.token
        elif token == "query":
            path += ("&" if "?" in path else "?") + "token=" + self.token
        sent.update(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        response.text = response.read().decode("utf-8", "replace")  # type: ignore[attr-defined]
        connection.close()
        return response

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(2)  # Ctrl-C
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def gui(tmp_path_factory):
    home = tmp_path_factory.mktemp("gui-home")
    config = home / "config.toml"
    config.write_text("")
    server = Gui("--proxy", "http://alice:s3cr3t-Pa55@127.0.0.1:9", env={"SDSETUP_CONFIG": str(config), "SDSETUP_LANG": "en"}, cwd=home)
    yield server
    server.close()


def test_the_first_line_is_the_local_address_with_a_random_token(gui):
    assert URL_LINE.match(gui.first_line)
    other = Gui()
    try:
        assert other.token != gui.token and other.port != gui.port
    finally:
        other.close()


@pytest.mark.parametrize("path", ["/", "/api/strings", "/api/info", "/static/app.js", "/api/webui", "/api/jobs/1/events", "/api/logs"])
def test_every_path_is_refused_without_the_token_or_with_a_wrong_one(gui, path):
    assert gui.request(path, token=None).status == 403
    assert gui.request(path, token=None, headers={"X-Sdsetup-Token": "x" * 32}).status == 403
    assert gui.request(path + "?token=" + gui.token[:-1] + "A", token=None).status == 403
    # a cookie is what a forged cross-site request carries along: it is not accepted
    assert gui.request(path, token=None, headers={"Cookie": f"token={gui.token}; x-sdsetup-token={gui.token}"}).status == 403


def test_the_token_in_the_header_or_the_query_is_accepted(gui):
    assert gui.request("/api/strings").status == 200
    assert gui.request("/api/strings", token="query").status == 200
    page = gui.request("/", token="query")
    assert page.status == 200 and "text/html" in page.getheader("Content-Type")
    assert f'content="{gui.token}"' in page.text  # the page's own requests carry it


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1", "127.0.0.1:1", "0.0.0.0:{port}", "192.168.1.5:{port}"])
def test_another_host_name_is_refused_even_with_the_token(gui, host):
    """A DNS-rebinding page reaches 127.0.0.1 under its own name: its Host header gives it away."""
    response = gui.request("/api/strings", headers={"Host": host.format(port=gui.port)})
    assert response.status == 403 and "host" in response.text


def test_localhost_by_name_is_this_server(gui):
    assert gui.request("/api/strings", headers={"Host": f"localhost:{gui.port}"}).status == 200


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1", "https://127.0.0.1:{port}"])
def test_a_request_from_another_origin_is_refused_even_with_the_token(gui, origin):
    response = gui.request("/api/check", method="POST", body={}, headers={"Origin": origin.format(port=gui.port)})
    assert response.status == 403 and "origin" in response.text


def test_the_pages_own_origin_may_post(gui):
    response = gui.request("/api/lang", method="POST", body={"lang": "en"}, headers={"Origin": f"http://127.0.0.1:{gui.port}"})
    assert response.status == 200 and json.loads(response.text)["lang"] == "en"


@pytest.mark.parametrize("path", ["/static/../commands/gui.py", "/static/index.html", "/static/%2e%2e/app.py", "/etc/passwd",
                                  "/api/jobs/1/files/../../x", "/api/jobs/999/files/smoke.png", "/favicon.ico", "/docs"])
def test_nothing_outside_the_page_is_served(gui, path):
    assert gui.request(path).status == 404


def test_answers_forbid_framing_caching_and_sending_the_address_elsewhere(gui):
    response = gui.request("/", token="query")
    assert response.getheader("X-Frame-Options") == "DENY"
    assert response.getheader("Referrer-Policy") == "no-referrer"
    assert response.getheader("Cache-Control") == "no-store"
    assert "frame-ancestors 'none'" in response.getheader("Content-Security-Policy")
    assert gui.request("/", token=None).getheader("Cache-Control") == "no-store"


def test_a_proxy_password_never_reaches_the_page(gui, tmp_path):
    response = gui.request("/api/check", method="POST", body={"dir": str(tmp_path / "webui")})
    assert response.status == 200
    doc = json.loads(response.text)
    assert doc["command"] == "check" and doc["data"]["items"]
    assert "127.0.0.1:9" in response.text  # the proxy is shown...
    assert "s3cr3t-Pa55" not in response.text  # ...its password is not


def test_the_server_listens_on_loopback_only(gui):
    import psutil

    process = psutil.Process(gui.process.pid)
    listening = [c.laddr for c in (process.net_connections if hasattr(process, "net_connections") else process.connections)("inet")
                 if c.status == psutil.CONN_LISTEN]
    assert listening and {(a.ip, a.port) for a in listening} == {("127.0.0.1", gui.port)}


def test_a_port_in_use_is_a_usage_error_naming_it():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "sdsetup", "gui", "--no-browser", "--port", str(port)], capture_output=True,
                                text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert f"127.0.0.1:{port}" in result.stderr and "--port" in result.stderr


def test_help_does_not_import_the_web_stack():
    code = ("import sys; sys.argv=['sdsetup','gui','--help']\ntry:\n import sdsetup.cli as c; c.main()\nexcept SystemExit: pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('starlette','uvicorn','anyio')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr
    assert "--no-browser" in result.stdout and "--port" in result.stdout


def test_ctrl_c_stops_the_server():
    server = Gui()
    started = time.monotonic()
    server.close()
    assert server.process.returncode == 0 and time.monotonic() - started < 15


def _events(gui, job: str) -> list[dict]:
    """The job's server-sent events, read to the end of the stream (token in the query, as EventSource sends it)."""
    connection = http.client.HTTPConnection("127.0.0.1", gui.port, timeout=120)
    connection.request("GET", f"/api/jobs/{job}/events?token={gui.token}", headers={"Host": f"127.0.0.1:{gui.port}"})
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Content-Type").startswith("text/event-stream")
    body = response.read().decode("utf-8")
    connection.close()
    return [json.loads(line[len("data: "):]) for line in body.splitlines() if line.startswith("data: ")]


def test_a_job_streams_its_events_and_result_and_a_typed_proxy_password_never_shows(gui, tmp_path):
    password = "Typed-Pa55word-9"
    started = gui.request("/api/install", method="POST", body={
        "dir": str(tmp_path / "webui"), "ui": "a1111", "mirror": "proxy", "proxy": f"http://bob:{password}@127.0.0.1:9",
        "python": sys.executable, "skip_models": True, "skip_smoke": True})
    assert started.status == 200, started.text
    job = json.loads(started.text)["job"]
    events = _events(gui, job)
    assert events and events[-1]["kind"] == "end" and [e["seq"] for e in events] == list(range(len(events)))
    status = gui.request(f"/api/jobs/{job}")
    result = json.loads(status.text)["result"]
    assert result["command"] == "install" and result["ok"] is False  # nothing answers on port 9
    assert result["error"]["message"] and result["error"]["hint"]
    everything = status.text + json.dumps(events)
    assert password not in everything and "bob:***@" in everything  # the proxy is named, its password masked
    # a reconnecting stream (Last-Event-ID) gets only what came after
    connection = http.client.HTTPConnection("127.0.0.1", gui.port, timeout=60)
    connection.request("GET", f"/api/jobs/{job}/events?token={gui.token}",
                       headers={"Host": f"127.0.0.1:{gui.port}", "Last-Event-ID": str(len(events) - 2)})
    tail = [line for line in connection.getresponse().read().decode().splitlines() if line.startswith("data: ")]
    assert len(tail) == 1 and json.loads(tail[0][6:])["kind"] == "end"


def test_a_body_larger_than_a_paste_is_refused(gui):
    response = gui.request("/api/doctor", method="POST", body={"text": "x" * (9 * 1024 * 1024)})
    assert response.status == 413


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_a_port_that_is_no_port_is_a_usage_error(port):
    result = subprocess.run([sys.executable, "-m", "sdsetup", "gui", "--no-browser", "--port", port], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == "" and "--port" in result.stderr


@pytest.mark.skipif(os.name == "nt", reason="the stand-in browser is a shell script")
def test_without_no_browser_the_browser_opens_the_first_lines_address(tmp_path):
    """Python's webbrowser honours $BROWSER: a script stands in for the browser and writes down what it was asked to open."""
    opened = tmp_path / "opened.txt"
    fake = tmp_path / "browser.sh"
    fake.write_text(f'#!/bin/sh\nprintf "%s" "$1" > "{opened}.part" && mv "{opened}.part" "{opened}"\n')  # whole or not at all
    fake.chmod(0o755)
    process = subprocess.Popen([sys.executable, "-m", "sdsetup", "gui"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env={**os.environ, "BROWSER": f"{fake} %s", "DISPLAY": ""})
    try:
        first = process.stdout.readline().strip()
        deadline = time.monotonic() + 20
        while not opened.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert URL_LINE.match(first) and opened.read_text() == first
    finally:
        process.send_signal(2)
        process.wait(15)
