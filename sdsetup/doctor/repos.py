"""The git repositories of an install and their state (HEAD, remote, local changes, git's complaints).

Used by the support bundle, and by the doctor to notice problems without a log: git's own error
("detected dubious ownership …") is fed to the matcher like any log line.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

GIT_TIMEOUT = 30
MAX_STATUS_LINES = 200


def repo_dirs(install_dir: Path) -> list[tuple[str, Path]]:
    """(name, path) of the web UI checkout, repositories/* and extensions/* that are git repositories."""
    found: list[tuple[str, Path]] = []
    if (install_dir / ".git").exists():
        found.append(("stable-diffusion-webui", install_dir))
    for parent in ("repositories", "extensions"):
        folder = install_dir / parent
        if folder.is_dir():
            for child in sorted(folder.iterdir()):
                if child.is_dir():
                    found.append((f"{parent}/{child.name}", child))
    return found


def _git(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """git in the user's repository through GitRunner: its fsmonitor and hooks never run."""
    from sdsetup.errors import SdsetupError
    from sdsetup.gitops import GitRunner

    git = shutil.which("git")
    if not git:
        return 127, "", "git: command not found"
    try:
        result = GitRunner(git=git, env={"LANG": "C"}).run(["-C", str(cwd), *args], check=False, timeout=GIT_TIMEOUT)
    except SdsetupError as exc:  # timed out
        return 1, "", f"git {' '.join(args)}: {exc.message}"
    except OSError as exc:
        return 1, "", f"git {' '.join(args)}: {exc}"
    return result.returncode, result.stdout, result.stderr


def repo_state(name: str, path: Path, pinned: str | None = None) -> dict[str, Any]:
    """HEAD, origin URL and `git status --porcelain` of one folder, with git's errors kept verbatim."""
    state: dict[str, Any] = {"name": name, "path": str(path), "is_git": (path / ".git").exists(), "head": None,
                             "pinned": pinned, "remote": None, "status": [], "errors": []}
    if not state["is_git"]:
        state["errors"].append("not a git repository (no .git)")
        return state
    code, out, err = _git(["rev-parse", "HEAD"], path)
    if code == 0:
        state["head"] = out.strip()
    else:
        state["errors"].append(err.strip() or f"git rev-parse exited {code}")
    code, out, err = _git(["remote", "get-url", "origin"], path)
    if code == 0:
        state["remote"] = out.strip()
    code, out, err = _git(["status", "--porcelain"], path)
    if code == 0:
        lines = out.splitlines()
        state["status"] = lines[:MAX_STATUS_LINES] + ([f"... {len(lines) - MAX_STATUS_LINES} more"] if len(lines) > MAX_STATUS_LINES else [])
    elif err.strip() and err.strip() not in state["errors"]:
        state["errors"].append(err.strip())
    if pinned and state["head"]:
        state["at_pin"] = state["head"] == pinned
    return state


def install_repo_states(install_dir: Path, record: Any = None) -> list[dict[str, Any]]:
    pins: dict[str, str] = {}
    if record is not None:
        for repo in [record.webui, *record.repositories]:
            rel = "." if repo.path in ("", ".") else repo.path.replace("\\", "/").strip("/")
            pins[rel] = repo.commit
    states = []
    for name, path in repo_dirs(install_dir):
        rel = "." if path == install_dir else path.relative_to(install_dir).as_posix()
        states.append(repo_state(name, path, pins.get(rel)))
    return states


def safe_directory_requests(states: list[dict[str, Any]]) -> list[str]:
    """The exact paths git asks to add to safe.directory ("dubious ownership")."""
    wanted: list[str] = []
    for state in states:
        for error in state.get("errors", []):
            if "dubious ownership" not in error:
                continue
            for line in error.splitlines():
                marker = "safe.directory "
                if marker in line:
                    path = line.split(marker, 1)[1].strip()
                    if path and path not in wanted:
                        wanted.append(path)
    return wanted


def _account(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


def folder_owner(path: str) -> tuple[str, str] | None:
    """(owner, current user) of a folder when they differ, else None (POSIX; Windows uses git's words)."""
    if not hasattr(os, "geteuid"):
        return None
    try:
        uid = os.stat(path).st_uid
    except OSError:
        return None
    me = os.geteuid()
    return None if uid == me else (_account(uid), _account(me))


def safe_directory_owners(states: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """path -> (owner, current user) for the folders git refuses, when the owner is another account.

    Git on Windows names both (SIDs or DOMAIN/user); elsewhere the folder's owner is read from disk."""
    owners: dict[str, tuple[str, str]] = {}
    for state in states:
        for error in state.get("errors", []):
            if "dubious ownership" not in error:
                continue
            lines = [line.strip().strip("'") for line in error.splitlines()]
            paths = [line.split("safe.directory ", 1)[1].strip().strip("'") for line in lines if "safe.directory " in line]
            if not paths:
                continue
            owner = user = None
            for index, line in enumerate(lines):
                if line.endswith("is owned by:") and index + 1 < len(lines):
                    owner = lines[index + 1]
                if line.startswith("but the current user is:") and index + 1 < len(lines):
                    user = lines[index + 1]
            found = (owner, user) if owner and user and owner != user else folder_owner(paths[0])
            if found:
                owners[paths[0]] = found
    return owners
