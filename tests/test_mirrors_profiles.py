"""Profiles as data: the bundled file, the user's config file, overrides, and clear errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sdsetup import cli
from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.net.mirror_profiles import builtin_toml, load_catalog, parse_catalog
from sdsetup.net.mirrors import select_mirrors
from sdsetup.settings import CHANNELS, load_settings


def _settings(tmp_path, config_text: str | None = None, flags: dict | None = None, env: dict | None = None):
    env = dict(env or {})
    config = tmp_path / "config.toml"
    config.write_text(config_text or "", encoding="utf-8")  # a named config file must exist (issue 11, item 15)
    env["SDSETUP_CONFIG"] = str(config)
    return load_settings(flags or {}, env)


def test_bundled_profiles_cover_every_channel_with_several_cn_candidates(tmp_path):
    catalog = load_catalog(_settings(tmp_path))
    assert {"official", "cn"} <= set(catalog.profiles)
    cn = catalog.profile("cn").channels
    for channel in CHANNELS:
        assert catalog.profile("official").channels[channel], channel
        assert cn[channel], channel
    assert {m.name for m in cn["pypi"]} >= {"tsinghua", "aliyun", "tencent", "ustc"}
    assert {m.layout for m in cn["torch"]} == {"simple", "find-links"}
    assert {m.style for m in cn["github"]} == {"prefix", "host"}
    assert cn["huggingface"][0].url == "https://hf-mirror.com"


def test_selection_defaults_to_auto_and_follows_flag_env_and_config(tmp_path):
    assert select_mirrors(_settings(tmp_path), env={}, probe=lambda targets: []).profile == "auto"
    assert select_mirrors(_settings(tmp_path, 'mirror = "cn"\n'), env={}).profile == "cn"
    assert select_mirrors(_settings(tmp_path, env={"SDSETUP_MIRROR": "cn"}), env={}).profile == "cn"
    plan = select_mirrors(_settings(tmp_path, flags={"mirror": ["cn", "huggingface=https://hf.corp.example/"]}), env={})
    assert plan.profile == "cn" and plan.hf_endpoint == "https://hf.corp.example"
    assert plan.primary("pypi").name == "aliyun"  # cloud vendors first: universities 403 bulk downloads


def test_per_channel_env_overrides(tmp_path):
    env = {"SDSETUP_MIRROR_PYPI": "https://pypi.corp.example/simple", "SDSETUP_MIRROR_TORCH": "https://mirrors.aliyun.com/pytorch-wheels",
           "SDSETUP_MIRROR_GITHUB": "https://githubfast.com"}
    plan = select_mirrors(_settings(tmp_path, env=env), env={})
    assert plan.pip_index_args() == ["--index-url", "https://pypi.corp.example/simple/"]
    assert plan.torch_index_args("cu121") == ["--find-links", "https://mirrors.aliyun.com/pytorch-wheels/cu121/"]
    # githubfast.com is host style in the cn profile, so the override keeps that style
    assert plan.git_urls("https://github.com/o/r.git")[0] == "https://githubfast.com/o/r.git"
    prefix = select_mirrors(_settings(tmp_path, env={"SDSETUP_MIRROR_GITHUB": "https://p.example/https://github.com/"}), env={})
    assert prefix.git_urls("https://github.com/o/r.git")[0] == "https://p.example/https://github.com/o/r.git"
    assert any("overridden" in note for note in plan.notes)


def test_user_profiles_inherit_and_override(tmp_path):
    settings = _settings(tmp_path, """
mirror = "corp"

[profiles.corp]
description = "our artifactory"
pypi = ["https://art.corp.example/api/pypi/simple"]
torch = [{ url = "https://art.corp.example/torch/{tag}", layout = "find-links", name = "art" }]

[profiles.cn]
huggingface = ["https://hf.other.example"]

[[rewrite]]
prefix = "https://civitai.com/"
replace = "https://civitai.corp.example/"
""")
    catalog = load_catalog(settings)
    corp = catalog.profile("corp")
    assert corp.source == "config file" and corp.description == "our artifactory"
    assert corp.channels["github"] == catalog.profile("official").channels["github"]  # inherited from official
    cn = catalog.profile("cn")
    assert cn.channels["huggingface"][0].url == "https://hf.other.example"
    assert cn.channels["pypi"][0].name == "aliyun"  # the rest of the built-in cn profile stays
    assert cn.source == "built-in + config file"
    plan = select_mirrors(settings, env={})
    assert plan.profile == "corp"
    assert plan.torch_index_args("cpu") == ["--find-links", "https://art.corp.example/torch/cpu/"]
    assert plan.file_urls("https://civitai.com/api/x") == ("https://civitai.corp.example/api/x", "https://civitai.com/api/x")


@pytest.mark.parametrize(
    "config_text, key, problem",
    [
        ('[profiles.x]\npypi = "ftp://mirror/simple"\n', "profiles.x.pypi[0].url", "must start with https://"),
        ('[profiles.x]\ntorch = ["https://m/whl/"]\n', "profiles.x.torch[0].url", "must contain {tag}"),
        ('[profiles.x]\ntorch = [{ url = "https://m/{tag}/", layout = "flat" }]\n', "profiles.x.torch[0].layout", "'flat' is not one of simple, find-links"),
        ('[profiles.x]\ngithub = [{ url = "https://p/", style = "proxy" }]\n', "profiles.x.github[0].style", "'proxy' is not one of prefix, host"),
        ('[profiles.x]\ngithub = [{ url = "https://p/", serves = ["zip"] }]\n', "profiles.x.github[0].serves", "must be a non-empty list"),
        ('[profiles.x]\ngithub = [{ url = "https://p/", raw = "https://r/" }]\n', "profiles.x.github[0].raw", "only a host-style candidate"),
        ('[profiles.x]\npypi = []\n', "profiles.x.pypi", "at least one candidate"),
        ('[profiles.x]\npypi = 3\n', "profiles.x.pypi", "expected a list"),
        ('[profiles.x]\npypy = ["https://m/simple"]\n', "profiles.x", "unknown key(s) pypy"),
        ('[profiles.x]\nhuggingface = [{ url = "https://m", token = "t" }]\n', "profiles.x.huggingface[0]", "unknown key(s) token"),
        ('[profiles.x]\nhuggingface = [{ name = "m" }]\n', "profiles.x.huggingface[0]", "missing 'url'"),
        ('[profiles.x]\nhuggingface = ["https://{host}/"]\n', "profiles.x.huggingface[0].url", "placeholder"),
        ('[profiles.x]\nhuggingface = ["https://:99999"]\n', "profiles.x.huggingface[0].url", "not a valid URL"),
        ('[profiles.auto]\npypi = ["https://m/simple"]\n', "profiles.auto", "cannot be a profile name"),
        ('profiles = "cn"\n', "profiles", "expected a table of profiles"),
        ('[[rewrite]]\nprefix = "https://a/"\n', "rewrite[0]", "needs exactly the keys 'prefix' and 'replace'"),
        ('[[rewrite]]\nprefix = "https://a/"\nreplace = "not a url"\n', "rewrite[0].replace", "must start with https://"),
    ],
)
def test_config_errors_name_file_key_and_problem(tmp_path, config_text, key, problem):
    settings = _settings(tmp_path, config_text)
    with pytest.raises(SdsetupError) as info:
        load_catalog(settings)
    error = info.value
    assert error.exit_code == ExitCode.USAGE
    assert str(tmp_path / "config.toml") in error.message
    assert f": {key}: " in error.message
    assert problem in error.message
    assert error.hint


def test_credentials_in_a_bad_mirror_url_are_not_echoed(tmp_path):
    settings = _settings(tmp_path, '[profiles.x]\npypi = ["ftp://bob:hunter2-canary@m/simple"]\n')
    with pytest.raises(SdsetupError) as info:
        load_catalog(settings)
    assert "hunter2-canary" not in info.value.message and "bob:***@m" in info.value.message


def test_bundled_file_errors_name_the_bundled_file():
    broken = json.loads(json.dumps(builtin_toml()))
    broken["profiles"]["cn"]["torch"][1]["layout"] = "flat"
    with pytest.raises(SdsetupError, match=r"manifests/mirrors.toml \(built-in\): profiles.cn.torch\[1\].layout"):
        parse_catalog(broken)
    del broken["probe"]["github"]
    with pytest.raises(SdsetupError, match="probe: needs one URL per channel"):
        parse_catalog(broken)


def test_unknown_profile_lists_the_known_ones(tmp_path):
    with pytest.raises(SdsetupError) as info:
        select_mirrors(_settings(tmp_path, flags={"mirror": ["nope"]}), env={})
    assert "unknown mirror profile 'nope'" in info.value.message
    assert "official" in info.value.hint and "cn" in info.value.hint and "auto" in info.value.hint


def test_an_unusable_url_as_profile_never_shows_its_password(tmp_path):
    canary = "s3cr3t-CANARY"
    with pytest.raises(SdsetupError) as info:
        select_mirrors(_settings(tmp_path, flags={"mirror": [f"ftp://bob:{canary}@mirror.example/"]}), env={})
    assert canary not in info.value.message + info.value.hint and "bob:***@" in info.value.message


def test_a_bad_channel_url_from_the_environment_names_the_variable(tmp_path):
    with pytest.raises(SdsetupError) as info:
        select_mirrors(_settings(tmp_path, env={"SDSETUP_MIRROR_PYPI": "ftp://mirror.example/simple/"}), env={})
    assert "SDSETUP_MIRROR_PYPI" in info.value.message


def test_a_url_as_profile_is_one_base_for_every_channel(tmp_path):
    plan = select_mirrors(_settings(tmp_path, flags={"mirror": ["http://127.0.0.1:9/bundle/"]}), env={})
    assert plan.base_url == "http://127.0.0.1:9/bundle"
    assert plan.pip_index_args() == ["--index-url", "http://127.0.0.1:9/bundle/pypi/simple/"]


def test_environment_proxy_counts_for_the_warning(tmp_path):
    plan = select_mirrors(_settings(tmp_path, flags={"mirror": ["cn"]}), env={"HTTPS_PROXY": "http://127.0.0.1:7890"})
    assert plan.env_proxy and plan.warnings and plan.proxy is None


# --- the CLI ------------------------------------------------------------------------------------------


def test_mirrors_list_json_lists_official_and_cn_with_all_four_channels():
    result = CliRunner().invoke(cli.app, ["mirrors", "list", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and doc["command"] == "mirrors list"
    profiles = doc["data"]["profiles"]
    for name in ("official", "cn"):
        assert set(profiles[name]["channels"]) == set(CHANNELS)
        assert all(profiles[name]["channels"][ch] for ch in CHANNELS)
    assert doc["data"]["selected"]["profile"] == "auto"  # the default: decided by probing when needed


def test_mirrors_list_shows_the_resolved_choice_for_people(tmp_path, monkeypatch):
    config = tmp_path / "c.toml"
    config.write_text('[profiles.mine]\nhuggingface = ["https://hf.mine.example"]\n')
    result = CliRunner().invoke(cli.app, ["mirrors", "list", "--config", str(config), "--mirror", "mine"])
    assert result.exit_code == 0, result.output
    assert "profile mine [config file]" in result.stdout
    assert "selected: mine" in result.stdout
    assert "https://hf.mine.example" in result.stdout.split("selected: mine")[1]


def test_mirrors_list_bad_config_is_a_usage_error_without_traceback(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[profiles.bad]\ntorch = ["https://m/no-tag/"]\n')
    result = CliRunner().invoke(cli.app, ["mirrors", "list", "--config", str(config)])
    assert result.exit_code == ExitCode.USAGE
    assert f"error: config file {config}: profiles.bad.torch[0].url" in result.stderr
    assert "hint:" in result.stderr and "Traceback" not in result.output


def test_mirrors_list_auto_does_not_probe():
    result = CliRunner().invoke(cli.app, ["mirrors", "list", "--mirror", "auto", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["data"]["selected"]["profile"] == "auto"
