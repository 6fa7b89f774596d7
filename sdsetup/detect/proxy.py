"""Proxy settings the install will meet: the environment (pip, requests, git) and git's own config.

Always shown redacted: a proxy URL often carries a password.
"""

from __future__ import annotations

import shutil
from typing import Any, Mapping

from sdsetup.detect._probe import run_text
from sdsetup.i18n import t
from sdsetup.redact import redact_text, redact_url

ENV_NAMES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def env_proxies(env: Mapping[str, str]) -> list[dict[str, str]]:
    """Proxy variables in either case (on Linux both http_proxy and HTTP_PROXY are honoured)."""
    found = []
    for upper in ENV_NAMES:
        for name in (upper, upper.lower()):
            value = env.get(name)
            if value:
                found.append({"source": "env", "name": name, "value": value})
    return found


def parse_git_proxy_config(text: str | None) -> list[dict[str, str]]:
    """`git config --get-regexp` lines: "http.proxy URL", "https.proxy URL", "http.<url>.proxy URL"."""
    found = []
    for line in (text or "").splitlines():
        key, _, value = line.strip().partition(" ")
        if key and value:
            found.append({"source": "git", "name": key, "value": value.strip()})
    return found


def probe_git_proxies(git_path: str | None = None) -> list[dict[str, str]]:
    git = git_path or shutil.which("git")
    if not git:
        return []
    # Exit code 1 means "no such key": run_text gives None, which is the same as none.
    return parse_git_proxy_config(run_text([git, "config", "--get-regexp", r"^https?\.(.*\.)?proxy$"], timeout=5.0))


def redacted(entries: list[dict[str, str]]) -> list[dict[str, str]]:
    out = []
    for entry in entries:
        value = entry["value"]
        shown = redact_text(value) if entry["name"].lower() == "no_proxy" else redact_url(redact_text(value))
        out.append({**entry, "value": shown})
    return out


def assess_proxy(entries: list[dict[str, str]], sdsetup_proxy: str | None = None) -> tuple[str, str, str | None]:
    """(status, value, fix) of the `proxy` item; entries may be raw, the value is always redacted."""
    shown = redacted(entries)
    parts = [f"{e['source']} {e['name']}={e['value']}" for e in shown]
    if sdsetup_proxy:
        parts.insert(0, f"sdsetup --proxy {redact_url(sdsetup_proxy)}")
    if not parts:
        return "ok", t("none (direct connection)"), None
    value = "; ".join(parts)
    problems = []
    env_https = next((e["value"] for e in entries if e["source"] == "env" and e["name"].lower() in ("https_proxy", "all_proxy")), None)
    git_proxy = next((e["value"] for e in entries if e["source"] == "git" and e["name"].lower() in ("http.proxy", "https.proxy")), None)
    if env_https and git_proxy and env_https.rstrip("/") != git_proxy.rstrip("/"):
        problems.append(
            t("git and pip go through different proxies; if one is stale, remove it "
              "(`git config --global --unset http.proxy`) or make them the same")
        )
    if any(e["value"].lower().startswith("socks") for e in entries if e["source"] == "env" and e["name"].lower() != "no_proxy"):
        problems.append(t("pip in a fresh venv cannot use a socks:// proxy from the environment (no PySocks); give pip an "
                          "http:// proxy"))
    if problems:
        return "warn", value, "\n".join(problems)
    return "ok", value, None


def proxy_section(env: Mapping[str, str], git_entries: list[dict[str, str]], sdsetup_proxy: str | None) -> dict[str, Any]:
    return {
        "sdsetup": redact_url(sdsetup_proxy) if sdsetup_proxy else None,
        "entries": redacted(env_proxies(env) + git_entries),
    }
