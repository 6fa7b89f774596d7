"""Is it the proxy or the host: the proxy handshake, `check --network`, and the first failure's one line."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest
from typer.testing import CliRunner

from sdsetup import cli
from sdsetup.net.netcheck import check_proxy, explain_failure, network_items
from tests.servers.firewall import blackhole
from tests.servers.proxy import serve_proxy
from tests.servers.pypi_index import serve_tree, write_hf_tree


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_refusing_proxy_is_not_ok():
    verdict = check_proxy(_dead_url(), timeout=2)
    assert not verdict.ok and "refused" in verdict.detail


def test_a_proxy_that_accepts_and_never_answers_is_named_within_the_timeout():
    with blackhole("stall") as hole:
        port = hole.port
        started = time.monotonic()
        verdict = check_proxy(hole.base_url, timeout=1.5)
    assert not verdict.ok and "did not answer within" in verdict.detail
    assert time.monotonic() - started < 4


def test_a_working_proxy_answers_and_one_that_wants_a_login_says_so():
    with serve_proxy() as proxy:
        assert check_proxy(proxy.url, target="127.0.0.1:9", timeout=3).ok
    with serve_proxy("alice", "s3cret") as proxy:
        bare = check_proxy(f"http://127.0.0.1:{proxy.port}", target="127.0.0.1:9", timeout=3)
        assert not bare.ok and "407" in bare.detail
        login = check_proxy(proxy.url_with("alice", "s3cret"), target="127.0.0.1:9", timeout=3)
        assert login.ok and "s3cret" not in login.url


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree")
    (root / "simple" / "six").mkdir(parents=True)
    (root / "simple" / "six" / "index.html").write_text('<a href="six.whl">six</a>\n')
    (root / "torch" / "cpu").mkdir(parents=True)
    (root / "torch" / "cpu" / "index.html").write_text('<a href="torch/">torch</a>\n')
    write_hf_tree(root / "hf", "openai/clip-vit-large-patch14", "main", {"config.json": b"{}\n"})
    with serve_tree(root) as server:
        yield server.base_url


def _config(tmp_path, official: str, cn: str) -> str:
    path = tmp_path / "c.toml"
    text = ""
    for name, base in (("official", official), ("cn", cn)):
        text += (f"[profiles.{name}]\n"
                 f'pypi = [{{ name = "{name}-pypi", url = "{base}/simple/" }}]\n'
                 f'torch = [{{ name = "{name}-torch", url = "{base}/torch/{{tag}}/" }}]\n'
                 f'github = [{{ name = "{name}-git", url = "{base}/git/", style = "host" }}]\n'
                 f'huggingface = [{{ name = "{name}-hf", url = "{base}/hf" }}]\n')
    path.write_text(text)
    return str(path)


def test_check_network_never_calls_a_dead_proxy_ok(tmp_path, good):
    result = CliRunner().invoke(cli.app, ["check", "--network", "--json", "--dir", str(tmp_path / "w"),
                                          "--config", _config(tmp_path, good, good), "--proxy", _dead_url()])
    doc = json.loads(result.stdout)
    items = {item["id"]: item for item in doc["data"]["items"]}
    assert items["network-proxy"]["status"] == "fail" and "refused" in items["network-proxy"]["value"]
    for channel in ("pypi", "torch", "huggingface"):
        item = items[f"network-{channel}"]
        assert item["status"] == "fail", item  # the servers are fine; the way to them is not
        assert "proxy" in item["fix"]
    assert result.exit_code == 1


def test_check_network_says_which_channels_need_a_mirror(tmp_path, good):
    result = CliRunner().invoke(cli.app, ["check", "--network", "--json", "--dir", str(tmp_path / "w"),
                                          "--config", _config(tmp_path, _dead_url(), good)])
    items = {item["id"]: item for item in json.loads(result.stdout)["data"]["items"]}
    pypi = items["network-pypi"]
    assert pypi["status"] == "warn" and "official-pypi does not answer; cn-pypi does" in pypi["value"]
    assert "network-proxy" not in items
    result = CliRunner().invoke(cli.app, ["check", "--network", "--dir", str(tmp_path / "w"), "--config", _config(tmp_path, good, good)])
    assert "official-pypi answers" in result.stdout


def test_check_without_network_probes_nothing(tmp_path):
    with blackhole("reset") as hole:
        CliRunner().invoke(cli.app, ["check", "--json", "--dir", str(tmp_path / "w"),
                                     "--config", _config(tmp_path, hole.base_url, hole.base_url), "--proxy", hole.base_url])
        assert hole.connections == 0


def test_network_items_are_never_ok_through_a_dead_proxy():
    report = {"proxy": {"url": "http://p:***@h:1", "ok": False, "detail": "refused", "ms": 1},
              "channels": {"pypi": {"official": "pypi.org", "official_ok": True, "reachable": ["pypi.org"],
                                    "route": {"source": "pypi.org", "reason": "", "probe_ms": 5, "cached": False}, "checks": []}}}
    statuses = {item["id"]: item["status"] for item in network_items(report)}
    assert statuses == {"network-proxy": "fail", "network-pypi": "warn"}


@pytest.mark.parametrize(
    "url, error, proxy, says, hint",
    [
        ("https://github.com/o/r.git", "Could not resolve host: github.com", None, "could not reach github.com", "--mirror cn"),
        ("https://github.com/o/r.git", "Failed to connect to proxy 127.0.0.1 port 7890", "http://u:pw123@127.0.0.1:7890",
         "the proxy http://u:***@127.0.0.1:7890 failed on the way to github.com", "proxy"),
        ("https://pypi.org/simple/", "Read timed out", "http://127.0.0.1:7890", "through the proxy", "sdsetup mirrors probe"),
    ],
)
def test_the_first_failure_names_proxy_or_host_and_the_next_step(url, error, proxy, says, hint):
    message, next_step = explain_failure(url, error, proxy=proxy)
    assert says in message and hint in next_step
    assert "pw123" not in message and "\n" not in message


def test_a_stalled_proxy_is_named_as_the_cause_within_seconds_not_minutes(tmp_path):
    """Automatic routing finds nothing through the proxy, asks the proxy itself, and stops with its name."""
    import subprocess
    import sys

    with blackhole("stall") as hole:
        port = hole.port
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "sdsetup", "fetch", "https://github.com/o/r/archive/v1.zip", "-o", str(tmp_path / "x.zip"),
             "--proxy", hole.base_url.replace("http://", "http://u:pw-777@"), "--json"],
            env={**os.environ, "SDSETUP_CACHE_DIR": str(tmp_path / "cache")}, capture_output=True, text=True, timeout=120)
        elapsed = time.monotonic() - started
    assert result.returncode == 3, result.stderr
    error = json.loads(result.stdout)["error"]
    assert f"the proxy http://u:***@127.0.0.1:{port}" in error["message"] and "did not answer" in error["message"]
    assert "check --network" in error["hint"]
    assert "pw-777" not in result.stdout + result.stderr
    assert elapsed < 30, elapsed
    assert not (tmp_path / "cache" / "mirror-routes.json").exists()  # a failed routing is not cached
