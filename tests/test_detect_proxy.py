"""Proxy settings from the environment and from git's config, always redacted."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from sdsetup.detect import proxy

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")


def test_env_proxies_in_both_cases_and_empty_ones_ignored():
    env = {"HTTPS_PROXY": "http://10.0.0.1:3128", "http_proxy": "http://10.0.0.1:3128", "NO_PROXY": "", "no_proxy": "localhost,.corp"}
    assert [e["name"] for e in proxy.env_proxies(env)] == ["http_proxy", "HTTPS_PROXY", "no_proxy"]


def test_git_config_lines():
    text = "http.proxy http://127.0.0.1:7890\nhttp.https://github.com.proxy socks5h://127.0.0.1:1080\n"
    assert proxy.parse_git_proxy_config(text) == [
        {"source": "git", "name": "http.proxy", "value": "http://127.0.0.1:7890"},
        {"source": "git", "name": "http.https://github.com.proxy", "value": "socks5h://127.0.0.1:1080"},
    ]
    assert proxy.parse_git_proxy_config(None) == []


def test_no_proxy_is_ok():
    assert proxy.assess_proxy([]) == ("ok", "none (direct connection)", None)


def test_passwords_never_shown():
    entries = proxy.env_proxies({"HTTPS_PROXY": "http://wei:s3cr3tpass@proxy.corp:8080"})
    entries += proxy.parse_git_proxy_config("http.proxy http://wei:s3cr3tpass@proxy.corp:8080")
    status, value, fix = proxy.assess_proxy(entries, "socks5h://bob:hunter2hunter@127.0.0.1:1080")
    assert status == "ok"
    assert "s3cr3tpass" not in value and "hunter2hunter" not in value
    assert "http://wei:***@proxy.corp:8080" in value and "socks5h://bob:***@127.0.0.1:1080" in value
    section = proxy.proxy_section({"HTTPS_PROXY": "http://wei:s3cr3tpass@proxy.corp:8080"}, [], "http://a:b1b2b3@h:1")
    assert "s3cr3tpass" not in json.dumps(section) and "b1b2b3" not in json.dumps(section)


def test_git_and_pip_through_different_proxies_is_a_warning():
    entries = proxy.env_proxies({"HTTPS_PROXY": "http://127.0.0.1:7890"}) + proxy.parse_git_proxy_config("http.proxy http://127.0.0.1:1087")
    status, _, fix = proxy.assess_proxy(entries)
    assert status == "warn" and "git config --global --unset http.proxy" in fix


def test_socks_in_the_environment_warns_for_pip():
    status, _, fix = proxy.assess_proxy(proxy.env_proxies({"ALL_PROXY": "socks5://127.0.0.1:1080"}))
    assert status == "warn" and "PySocks" in fix


@needs_git
def test_git_config_read_from_real_git(isolated_env):
    # conftest points GIT_CONFIG_GLOBAL at a private file; write proxies the way users do
    subprocess.run(["git", "config", "--global", "http.proxy", "http://wei:s3cr3tpass@127.0.0.1:7890"], check=True)
    subprocess.run(["git", "config", "--global", "http.https://github.com.proxy", "socks5h://127.0.0.1:1080"], check=True)
    subprocess.run(["git", "config", "--global", "http.postBuffer", "524288000"], check=True)
    found = proxy.probe_git_proxies()
    assert [(e["name"], e["value"]) for e in found] == [
        ("http.proxy", "http://wei:s3cr3tpass@127.0.0.1:7890"),
        ("http.https://github.com.proxy", "socks5h://127.0.0.1:1080"),
    ]
    assert [e["value"] for e in proxy.redacted(found)][0] == "http://wei:***@127.0.0.1:7890"


@needs_git
def test_no_git_proxy_is_an_empty_list():
    assert proxy.probe_git_proxies() == []
