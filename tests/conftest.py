"""Every test runs with its own HOME, config, caches and a clean pip/proxy environment."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/servers importable as `tests.servers`

_STRIP_PREFIXES = ("PIP_", "SDSETUP_", "HF_", "HUGGINGFACE_", "GIT_", "UV_")
_STRIP_NAMES = {
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy",
    "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "TRANSFORMERS_CACHE", "XDG_CONFIG_HOME", "XDG_CACHE_HOME",
}


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("home")
    for name in list(os.environ):
        if name.startswith(_STRIP_PREFIXES) or name in _STRIP_NAMES:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    (home / "sdsetup-config.toml").write_text("")  # empty: a named config file must exist (issue 11, item 15)
    monkeypatch.setenv("SDSETUP_CONFIG", str(home / "sdsetup-config.toml"))
    monkeypatch.setenv("SDSETUP_CACHE_DIR", str(home / "sdsetup-cache"))
    # English messages whatever the machine's locale; tests of other languages set their own.
    monkeypatch.setenv("SDSETUP_LANG", "en")
    from sdsetup import i18n

    monkeypatch.setattr(i18n, "_current", None)
    # pip driven by the tests must see only the tests' own index (the machine has a user pip config).
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    monkeypatch.setenv("NO_PROXY", "")
    # git must never read the developer's global config nor ask for a password.
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    (home / ".gitconfig").write_text("[user]\n\tname = sdsetup tests\n\temail = tests@example.invalid\n[init]\n\tdefaultBranch = main\n")
    yield home
