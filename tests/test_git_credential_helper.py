"""Issue 23 ("what the last round left"): a repository's own `credential.helper` (its .git/config, which
whoever owns DIR may write) must not run when sdsetup fetches into it; the user's own (global) helper
still does. A real git against a real local server that asks for a login (401)."""

from __future__ import annotations

import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sdsetup.gitops import GitRunner, checkout_pinned


class _AsksForLogin(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):  # noqa: D102
        pass


@pytest.fixture
def login_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AsksForLogin)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/o/r.git"
    server.shutdown()
    server.server_close()


def _helper(marker) -> str:
    return f"!f() {{ echo ran >> '{marker}'; }}; f"


def test_a_repositorys_own_credential_helper_does_not_run_during_a_fetch(tmp_path, login_server, isolated_env):
    repo = tmp_path / "webui"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    planted = tmp_path / "planted-helper-ran"
    subprocess.run(["git", "-C", str(repo), "config", "credential.helper", _helper(planted)], check=True)
    users = tmp_path / "users-helper-ran"
    subprocess.run(["git", "config", "--global", "credential.helper", _helper(users)], check=True)
    with pytest.raises(Exception):
        checkout_pinned(repo, [login_server], "a" * 40, runner=GitRunner(), name="webui", retries=0, backoff=0)
    assert not planted.exists(), "the repository's own credential helper ran"
    assert users.exists(), "the user's own helper is still asked"


def test_sdsetups_own_helper_from_the_environment_still_answers(tmp_path, login_server, isolated_env):
    """A mirror login reaches git as a helper in GIT_CONFIG_KEY_n (net/mirrors.py): the reset must come before it."""
    repo = tmp_path / "webui"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    ours = tmp_path / "sdsetup-helper-ran"
    runner = GitRunner(env={"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "credential.helper", "GIT_CONFIG_VALUE_0": _helper(ours)})
    with pytest.raises(Exception):
        checkout_pinned(repo, [login_server], "a" * 40, runner=runner, name="webui", retries=0, backoff=0)
    assert ours.exists()
