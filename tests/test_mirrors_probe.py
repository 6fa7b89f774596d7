"""Probing and `auto`: a dead, a slow and a good mirror, ranked; auto keeps what works upstream."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sdsetup import cli
from sdsetup.errors import ExitCode
from sdsetup.net.mirrors import select_mirrors
from sdsetup.net.decide import SourceCheck, rank
from sdsetup.settings import load_settings
from tests.servers.gitserver import serve_git
from tests.servers.pypi_index import serve_tree, write_hf_tree

SLOW_DELAY = 0.6
RATE = 4_000_000
RATE_FILE = bytes(range(256)) * 1200  # 300 KB: more than a rate read takes


def _dead_url() -> str:
    """A port nothing listens on: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _tree(root: Path) -> Path:
    """What each channel's probe fetches: simple/six/, torch/cpu/, the HF config.json."""
    (root / "simple" / "six").mkdir(parents=True)
    (root / "simple" / "six" / "index.html").write_text('<a href="six-1.16.0-py2.py3-none-any.whl">six</a>\n' * 50)
    (root / "torch" / "cpu").mkdir(parents=True)
    (root / "torch" / "cpu" / "index.html").write_text('<a href="torch/">torch</a>\n')
    write_hf_tree(root / "hf", "openai/clip-vit-large-patch14", "main", {"config.json": b"{}\n",
                                                                          "model.safetensors": RATE_FILE})
    # What routing times (manifests/mirrors.toml [rate]), as these mirrors serve it.
    (root / "torch" / "cpu" / "torch-2.8.0+cpu-cp310-cp310-manylinux_2_28_x86_64.whl").write_bytes(RATE_FILE)
    return root


@pytest.fixture(scope="module")
def mirrors(tmp_path_factory):
    root = _tree(tmp_path_factory.mktemp("tree"))
    # Both deliver alike (a real mirror's per-connection throttle): the latency tells them apart.
    with serve_tree(root, rate=RATE) as good, serve_tree(root, delay=SLOW_DELAY, rate=RATE) as slow, \
            serve_git(tmp_path_factory.mktemp("git")) as git:
        git.create_repo("AUTOMATIC1111/stable-diffusion-webui-assets", {"README.md": "assets\n"})
        yield {"good": good.base_url, "slow": slow.base_url, "dead": _dead_url(), "git": git.host_base}


def _candidates(urls: dict[str, str], path: str) -> str:
    return ", ".join('{ name = "%s", url = "%s%s" }' % (key, url, path) for key, url in urls.items())


def _profile(name: str, urls: dict[str, str], git: str) -> str:
    """A profile whose pypi, torch and huggingface candidates are `urls` (name -> server), in order."""
    return (
        f"[profiles.{name}]\n"
        f"pypi = [{_candidates(urls, '/simple/')}]\n"
        f"torch = [{_candidates(urls, '/torch/{tag}/')}]\n"
        f'github = [{{ name = "git", url = "{git}", style = "host" }}]\n'
        f"huggingface = [{_candidates(urls, '/hf')}]\n"
    )


def test_probe_ranks_good_then_slow_then_dead(tmp_path, mirrors):
    config = tmp_path / "c.toml"
    order = {"dead": mirrors["dead"], "slow": mirrors["slow"], "good": mirrors["good"]}
    config.write_text(_profile("trial", order, mirrors["git"]))
    result = CliRunner().invoke(cli.app, ["mirrors", "probe", "--mirror", "trial", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["data"]
    for channel in ("pypi", "torch", "huggingface"):
        ranked = data["channels"][channel]
        assert [r["name"] for r in ranked] == ["good", "slow", "dead"], channel
        good, slow, dead = ranked
        assert good["ok"] and slow["ok"] and not dead["ok"]
        assert slow["latency_s"] >= SLOW_DELAY > good["latency_s"]
        assert good["bytes"] > 0
        if channel != "pypi":  # these candidates name no files host: nothing to time there
            assert good["throughput_bps"] > 0 and good["rate_url"].endswith((".whl", ".safetensors")), good
        assert "connection failed" in dead["error"] and dead["status"] is None
        assert data["best"][channel] == "good"
    github = data["channels"]["github"][0]
    assert github["ok"] and github["method"] == "git ls-remote"  # a real clone handshake, not a ping
    assert github["url"].endswith("/kk/AUTOMATIC1111/stable-diffusion-webui-assets.git")


def test_probe_for_people_and_a_channel_filter(tmp_path, mirrors):
    config = tmp_path / "c.toml"
    config.write_text(_profile("trial", {"dead": mirrors["dead"], "good": mirrors["good"]}, mirrors["git"]))
    result = CliRunner().invoke(cli.app, ["mirrors", "probe", "--mirror", "trial", "--config", str(config), "--channel", "pypi"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1] == "pypi:" and "good" in lines[2] and "ok" in lines[2] and "FAIL" in lines[4]
    assert "torch:" not in result.stdout


def test_probe_exits_with_network_code_when_a_channel_has_nothing_reachable(tmp_path, mirrors):
    config = tmp_path / "c.toml"
    config.write_text(_profile("deadonly", {"dead": mirrors["dead"]}, mirrors["git"]))
    result = CliRunner().invoke(cli.app, ["mirrors", "probe", "--mirror", "deadonly", "--config", str(config), "--json"])
    assert result.exit_code == ExitCode.NETWORK
    doc = json.loads(result.stdout)
    assert doc["data"]["best"]["pypi"] is None and doc["data"]["best"]["github"] == "git"
    assert "pypi: no candidate answered" in doc["warnings"]
    assert any(w.startswith("hint: ") and "check --network" in w for w in doc["warnings"])  # the next step


def test_auto_keeps_reachable_official_hosts_and_replaces_unreachable_ones(tmp_path, mirrors):
    config = tmp_path / "c.toml"
    # "official" here: PyPI is down, everything else answers. "cn": a slow and a good mirror.
    config.write_text(
        "[profiles.official]\n"
        f'pypi = [{{ name = "upstream", url = "{mirrors["dead"]}/simple/" }}]\n'
        f'torch = [{{ name = "upstream", url = "{mirrors["good"]}/torch/{{tag}}/" }}]\n'
        f'github = [{{ name = "upstream", url = "{mirrors["git"]}", style = "host" }}]\n'
        f'huggingface = [{{ name = "upstream", url = "{mirrors["good"]}/hf" }}]\n'
        + _profile("cn", {"slow": mirrors["slow"], "good": mirrors["good"]}, mirrors["git"])
    )
    settings = load_settings({"mirror": ["auto"]}, {"SDSETUP_CONFIG": str(config)})
    plan = select_mirrors(settings, env={})
    assert plan.profile == "auto"
    assert [m.name for m in plan.channels["pypi"]] == ["good", "slow", "upstream"]
    assert plan.pip_index_args()[:2] == ["--index-url", f"{mirrors['good']}/simple/"]
    for channel in ("torch", "github", "huggingface"):
        assert plan.channels[channel][0].name == "upstream", channel  # the mirrors are no faster: official first
    route = plan.to_json()["channels"]["pypi"]
    assert route["source"] == "good" and "upstream did not answer" in route["reason"] and route["probe_ms"] >= 0
    assert plan.route("torch").source == "upstream" and "B/s" in plan.route("torch").reason


def test_auto_stays_official_when_no_mirror_answers(tmp_path, mirrors):
    config = tmp_path / "c.toml"
    # Every channel is defined here so that nothing probes a real host.
    config.write_text(_profile("official", {"upstream": mirrors["dead"]}, mirrors["git"])
                      + _profile("cn", {"dead2": _dead_url()}, mirrors["git"]))
    plan = select_mirrors(load_settings({"mirror": ["auto"]}, {"SDSETUP_CONFIG": str(config)}), env={})
    assert [m.name for m in plan.channels["pypi"]] == ["upstream"]
    assert "no mirror answered" in plan.route("pypi").reason


def _check(name: str, ok: bool, seconds: float) -> SourceCheck:
    return SourceCheck("pypi", name, f"https://{name}/", ok, 200 if ok else None, seconds, seconds, 1)


@pytest.mark.parametrize(
    "results, expected",
    [
        ([_check("a", False, 0.01), _check("b", True, 2.0)], ["b", "a"]),
        ([_check("a", True, 0.5), _check("b", True, 0.1)], ["b", "a"]),
        ([_check("b", False, 3), _check("a", False, 0.1)], ["a", "b"]),
    ],
)
def test_rank_reachable_first_then_fastest(results, expected):
    assert [r.name for r in rank(results)] == expected
