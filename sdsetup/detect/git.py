"""git: present, version, path."""

from __future__ import annotations

import re
import shutil
from typing import Any

from sdsetup.detect._probe import run_text
from sdsetup.i18n import t
from sdsetup.versions import version_tuple

# "git version 2.39.5", "git version 2.45.1.windows.1", "git version 2.39.3 (Apple Git-145)"
_VERSION = re.compile(r"git version (\d+(?:\.\d+){1,3})")

# The web UI's launcher repairs a broken repository with `git fetch --refetch` (facts §1.4, §3.8).
MIN_GIT = (2, 36)


def parse_git_version(text: str | None) -> str | None:
    match = _VERSION.search(text or "")
    return match.group(1) if match else None


def probe_git() -> dict[str, Any]:
    path = shutil.which("git")
    if not path:
        return {"present": False, "version": None, "path": None}
    version = parse_git_version(run_text([path, "--version"]))
    return {"present": version is not None, "version": version, "path": path}


def assess_git(git: dict[str, Any]) -> tuple[str, str, str | None]:
    """(status, value, fix) for the check item."""
    if not git.get("present"):
        return (
            "fail",
            t("not found ({path} does not run)", path=git["path"]) if git.get("path") else t("not found"),
            t("install git: Windows https://git-scm.com/download/win (or `winget install Git.Git`), "
              "Debian/Ubuntu `sudo apt install git`, macOS `xcode-select --install`"),
        )
    value = t("{version} at {path}", version=git["version"], path=git["path"])
    numbers = version_tuple(git.get("version"))
    if numbers and numbers[:2] < MIN_GIT:
        return "warn", value, t("git {version} is old; update to 2.36 or newer (the web UI's repair step needs it)",
                                version=git["version"])
    return "ok", value, None
