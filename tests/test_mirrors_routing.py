"""Automatic routing decisions (pure) and the ranking cache: table tests over typed probe results."""

from __future__ import annotations

import json

import pytest

from sdsetup.net.mirror_profiles import Mirror
from sdsetup.net.mirrors import MirrorPlan, select_mirrors
from sdsetup.net.decide import SourceCheck, choose_routes
from sdsetup.net.routecache import cache_key, cache_path, load_cached, save_cache
from sdsetup.settings import CHANNELS, load_settings

UP = {ch: (Mirror(ch, f"{ch}-up", f"https://{ch}.up/"),) for ch in CHANNELS}
GH_RELEASES = Mirror("github", "releases-only", "https://rel.example/", style="prefix", serves=("release",))
CN = {ch: (Mirror(ch, f"{ch}-a", f"https://{ch}.a/"), Mirror(ch, f"{ch}-b", f"https://{ch}.b/")) for ch in CHANNELS}
CN = {**CN, "github": CN["github"] + (GH_RELEASES,)}


def _check(mirror: Mirror, ok: bool, seconds: float = 0.1, error: str | None = None, rate: float | None = None) -> SourceCheck:
    return SourceCheck(mirror.channel, mirror.name, mirror.url, ok, 200 if ok else None, seconds, seconds, 10,
                       error if not ok else None, mirror, rate_bps=rate)


def test_an_answering_official_host_keeps_the_channel_official_when_nothing_was_timed():
    checks = [_check(UP["pypi"][0], True, 0.3), _check(CN["pypi"][0], True, 0.01)]
    channels, routes = choose_routes(UP, CN, checks, ["pypi"])
    assert channels["pypi"][0] == UP["pypi"][0] and routes["pypi"].source == "pypi-up" and routes["pypi"].probe_ms == 300


def test_an_unreachable_host_takes_the_fastest_answering_mirror_and_keeps_upstream_last():
    checks = [_check(UP["github"][0], False, error="connection failed: reset"), _check(CN["github"][0], True, 0.5),
              _check(CN["github"][1], True, 0.2)]
    channels, routes = choose_routes(UP, CN, checks, ["github"])
    assert [m.name for m in channels["github"]] == ["github-b", "github-a", "releases-only", "github-up"]
    assert "reset" in routes["github"].reason and routes["github"].source == "github-b"


def test_a_failed_mirror_is_dropped_and_nothing_answering_stays_official():
    checks = [_check(UP["pypi"][0], False, error="timed out"), _check(CN["pypi"][0], False, error="HTTP 403"),
              _check(CN["pypi"][1], True)]
    channels, _ = choose_routes(UP, CN, checks, ["pypi"])
    assert [m.name for m in channels["pypi"]] == ["pypi-b", "pypi-up"]
    channels, routes = choose_routes(UP, CN, [_check(UP["torch"][0], False, error="x")], ["torch"])
    assert channels["torch"] == UP["torch"] and "no mirror answered" in routes["torch"].reason


KB, MB = 1_000, 1_000_000

# Recorded measurements: (official, mirror a, mirror b) as (answered, latency s, rate B/s or None) ->
# the source chosen, the engine's order, and a word the reason must carry. From the world: pypi.org
# answering at 100 KB/s beside Aliyun at 11 MB/s; Berlin (official fast, mirrors slow); everyone slow.
DECISIONS = [
    # Shanghai, 2026: the official host answers but crawls; the mirrors serve fast.
    (((True, 0.25, 100 * KB), (True, 0.03, 11 * MB), (True, 0.04, 6 * MB)), "pypi-a", ["pypi-a", "pypi-b", "pypi-up"], "slow"),
    # Berlin: official fast, the far-away mirrors slow: they are left out of the order.
    (((True, 0.02, 40 * MB), (True, 0.30, 400 * KB), (True, 0.35, 300 * KB)), "pypi-up", ["pypi-up"], "pypi-up"),
    # Two fast sources: both kept for multi-source downloads, the faster first; a slow third left out.
    (((True, 0.02, 5 * MB), (True, 0.30, 10 * MB), (True, 0.35, 1 * MB)), "pypi-a", ["pypi-a", "pypi-up"], "fastest"),
    # A mirror a little faster than a good official host does not move the channel (noise).
    (((True, 0.02, 9 * MB), (True, 0.30, 10 * MB), (True, 0.35, 1 * MB)), "pypi-up", ["pypi-up", "pypi-a"], "pypi-up"),
    # Latency breaks a tie in rate.
    (((False, None, None), (True, 0.20, 5 * MB), (True, 0.05, 5 * MB)), "pypi-b", ["pypi-b", "pypi-a", "pypi-up"], "fastest"),
    # Every source under the floor: it still routes (the fastest first), saying why; all are kept.
    (((True, 0.2, 60 * KB), (True, 0.2, 90 * KB), (True, 0.2, 30 * KB)), "pypi-a", ["pypi-a", "pypi-up", "pypi-b"], "every source is slow"),
    # The official host failed, a mirror was not timed (no file there) and one was: the timed fast one first.
    (((False, None, None), (True, 0.1, None), (True, 0.2, 3 * MB)), "pypi-b", ["pypi-b", "pypi-a", "pypi-up"], "did not answer"),
    # A timed-slow official host loses to an answering mirror that could not be timed.
    (((True, 0.1, 50 * KB), (True, 0.1, None), (False, None, None)), "pypi-a", ["pypi-a", "pypi-up"], "pypi-a"),
]


@pytest.mark.parametrize("measured,source,order,says", DECISIONS)
def test_decide_from_recorded_measurements(measured, source, order, says):
    mirrors = (UP["pypi"][0], CN["pypi"][0], CN["pypi"][1])
    checks = [_check(m, ok, latency or 4.0, None if ok else "timed out", rate)
              for m, (ok, latency, rate) in zip(mirrors, measured)]
    channels, routes = choose_routes(UP, CN, checks, ["pypi"])
    assert routes["pypi"].source == source
    assert [m.name for m in channels["pypi"]] == order
    assert says in routes["pypi"].reason
    assert routes["pypi"].to_json()["rate_bps"] == (None if routes["pypi"].rate_bps is None else round(routes["pypi"].rate_bps))


def test_the_floor_and_the_fraction_of_the_best():
    from sdsetup.net.decide import FLOOR_BPS, FRACTION, slow_limit

    assert slow_limit(None) == FLOOR_BPS
    assert slow_limit(100 * MB) == FRACTION * 100 * MB
    assert slow_limit(FLOOR_BPS) == FLOOR_BPS


def test_an_empty_cached_order_is_a_miss_not_a_crash(tmp_path):
    """An empty route cache entry ("order": []) made every networked command exit 70 for up to an hour."""
    pool = {ch: UP[ch] + CN[ch] for ch in CHANNELS}
    channels, routes = choose_routes(UP, CN, [_check(CN[ch][1], True) for ch in CHANNELS])
    key = cache_key(pool, None, False)
    path = cache_path(tmp_path)
    save_cache(path, key, channels, routes, now=1000.0)
    doc = json.loads(path.read_text())
    doc["channels"]["pypi"]["order"] = []
    path.write_text(json.dumps(doc))
    assert load_cached(path, key, pool, now=1001.0) is None
    settings = load_settings({}, {"SDSETUP_CACHE_DIR": str(tmp_path)})
    calls = []

    def probe(targets):
        calls.append(targets)
        return [_check(m, m.name == "aliyun") for m, *_ in targets]

    path.write_text(json.dumps(doc))
    plan = select_mirrors(settings, env={}, probe=probe, proxy_check=lambda p: None)
    assert plan.primary("pypi").name == "aliyun" and len(calls) == 1


def test_the_cache_is_used_only_fresh_and_for_the_same_candidates_and_proxy(tmp_path):
    pool = {ch: UP[ch] + CN[ch] for ch in CHANNELS}
    checks = [_check(CN[ch][1], True) for ch in CHANNELS]
    channels, routes = choose_routes(UP, CN, checks)
    key = cache_key(pool, None, False)
    path = cache_path(tmp_path)
    save_cache(path, key, channels, routes, now=1000.0)
    again = load_cached(path, key, pool, now=1000.0 + 600)
    assert again is not None and again[0]["pypi"][0].name == "pypi-b" and again[1]["pypi"].cached
    assert load_cached(path, key, pool, now=1000.0 + 3601) is None  # stale
    assert load_cached(path, cache_key(pool, "http://127.0.0.1:7890", False), pool, now=1001.0) is None  # another proxy
    assert "7890" not in path.read_text()
    path.write_text("{not json")
    assert load_cached(path, key, pool, now=1001.0) is None  # damaged: probe again


def test_select_mirrors_probes_once_on_first_use_and_not_at_all_when_unused(tmp_path):
    calls = []

    def probe(targets):
        calls.append(len(targets))
        return []

    settings = load_settings({}, {"SDSETUP_CACHE_DIR": str(tmp_path)})
    plan = select_mirrors(settings, env={}, probe=probe, proxy_check=lambda p: None)
    assert plan.file_urls("http://127.0.0.1:9/x.bin") == ("http://127.0.0.1:9/x.bin",) and plan.warnings == []
    assert calls == []  # a local URL needs no channel
    plan.file_urls("https://github.com/o/r/archive/x.zip")
    plan.pip_index_args()
    assert len(calls) == 1 and calls[0] > 4  # one round for every channel's candidates


def test_the_connection_cap_of_the_serving_mirror():
    plan = select_mirrors(load_settings({"mirror": ["cn"]}, {}), env={})
    tuna = next(u for u in plan.file_urls("https://files.pythonhosted.org/packages/ab/cd/six-1.16.0-py3-none-any.whl") if "tuna" in u)
    assert plan.connection_cap(tuna) == 2
    assert plan.connection_cap("https://mirrors.aliyun.com/pypi/packages/ab/cd/six.whl") is None
    assert plan.connection_cap("https://mirror.nju.edu.cn/pytorch/whl/cu121/torch.whl") == 2
    assert json.dumps(plan.to_json()).count('"connections": 2') >= 4


@pytest.mark.parametrize("value", [0, 17, "2", 1.5])
def test_a_bad_connection_cap_is_a_usage_error(tmp_path, value):
    from sdsetup.errors import SdsetupError

    config = tmp_path / "c.toml"
    config.write_text(f'[profiles.x]\npypi = [{{ url = "https://p.example/simple/", connections = {json.dumps(value)} }}]\n')
    with pytest.raises(SdsetupError, match="connections"):
        select_mirrors(load_settings({"mirror": ["x"]}, {"SDSETUP_CONFIG": str(config)}), env={})


def test_forced_plans_say_why():
    plan = MirrorPlan("cn", dict(CN))
    assert plan.route("pypi").source == "pypi-a" and "cn" in plan.route("pypi").reason


def test_mirrors_list_shows_the_cached_routing_and_never_probes(tmp_path):
    from typer.testing import CliRunner

    from sdsetup import cli
    from sdsetup.net.mirror_profiles import load_catalog

    env = {"SDSETUP_CACHE_DIR": str(tmp_path)}
    runner = CliRunner()
    first = json.loads(runner.invoke(cli.app, ["mirrors", "list", "--json"], env=env).stdout)
    assert "channels" not in first["data"]["selected"]  # nothing cached yet, and list did not probe
    assert not (tmp_path / "mirror-routes.json").exists()
    settings = load_settings({}, env)
    cn = load_catalog(settings).profile("cn").channels

    def probe(targets):  # the official hosts fail, the first cn candidate of each channel answers
        return [_check(m, m in [c[0] for c in cn.values()]) for m, *_ in targets]

    select_mirrors(settings, env={}, probe=probe).pip_index_args()
    listed = runner.invoke(cli.app, ["mirrors", "list", "--json"], env=env)
    pypi = json.loads(listed.stdout)["data"]["selected"]["channels"]["pypi"]
    assert pypi["source"] == "aliyun" and pypi["cached"] is True
    human = runner.invoke(cli.app, ["mirrors", "list"], env=env).stdout
    assert "pypi.org did not answer" in human


def test_a_picked_wheel_gets_every_source_that_serves_the_same_file():
    """Issue 21 item 2: the torch wheel from official + NJU + Aliyun; a PyPI wheel from each files host."""
    plan = select_mirrors(load_settings({"mirror": ["cn"]}, {}), env={})
    tail = "6c/d7/06d1/notebook-7.4.7-py3-none-any.whl"
    picked = f"https://mirrors.aliyun.com/pypi/packages/{tail}"
    urls = plan.sources_for(picked + "#sha256=" + "0" * 64)
    assert urls[0] == picked and urls[-1] == f"https://files.pythonhosted.org/packages/{tail}"
    assert f"https://mirrors.tuna.tsinghua.edu.cn/pypi/web/packages/{tail}" in urls
    assert plan.source_caps(urls) == ((f"https://mirrors.tuna.tsinghua.edu.cn/pypi/web/packages/{tail}", 2),)
    wheel = "torch-2.8.0%2Bcpu-cp310-cp310-manylinux_2_28_x86_64.whl"
    torch = plan.sources_for(f"https://mirror.nju.edu.cn/pytorch/whl/cpu/{wheel}")
    assert torch == (f"https://mirror.nju.edu.cn/pytorch/whl/cpu/{wheel}", f"https://mirrors.aliyun.com/pytorch-wheels/cpu/{wheel}",
                     f"https://download.pytorch.org/whl/cpu/{wheel}")
    assert plan.sources_for(f"https://download.pytorch.org/whl/cpu/{wheel}")[0].startswith("https://mirror.nju.edu.cn/")
    assert plan.sources_for("https://example.org/x/y.whl") == ("https://example.org/x/y.whl",)
