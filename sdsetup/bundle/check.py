"""`sdsetup bundle verify OUT`: every file against the lock (sha256 read from disk, never from a cache),
every repository's pin; what is missing or wrong is listed with what was expected and what is there."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sdsetup.bundle import layout
from sdsetup.bundle.lockfile import compare, extra_files, load_lock
from sdsetup.errors import usage_error
from sdsetup.hashing import sha256_file


def _observe(out: Path, rel: str) -> tuple[int, str] | None:
    path = out / rel
    try:
        if path.is_symlink() or not path.is_file():
            return None
        return path.stat().st_size, sha256_file(path)
    except OSError:
        return None


def present_files(out: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(out):
        rel_dir = Path(dirpath).relative_to(out).as_posix()
        if rel_dir == ".":
            dirnames[:] = [d for d in dirnames if d != layout.STATE_DIR]
        for name in filenames:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if rel != layout.LOCK_NAME:
                found.append(rel)
    return sorted(found)


def check_pins(out: Path, lock: Any) -> list[dict[str, Any]]:
    """Each repository still holds its pinned commit (git reads its packs: a damaged pack shows here too)."""
    import shutil

    from sdsetup.bundle.repos import holds_pins
    from sdsetup.gitops import GitRunner

    if shutil.which("git") is None:
        return []
    runner = GitRunner()
    problems = []
    by_path: dict[str, list[str]] = {}
    for repo in lock.repos:
        commits = by_path.setdefault(repo.path, [])
        if repo.commit not in commits:
            commits.append(repo.commit)
    for rel, commits in by_path.items():
        bare = out / rel
        missing = [c for c in commits if runner.run(["--git-dir", str(bare), "cat-file", "-e", f"{c}^{{commit}}"], check=False).returncode != 0]
        if missing or not holds_pins(bare, commits, runner):
            problems.append({"path": rel, "kind": "repository", "problem": "pin", "expected_commits": commits,
                             "missing_commits": missing})
    return problems


def verify_bundle(out: Path) -> dict[str, Any]:
    out = Path(out).expanduser().absolute()
    if not out.is_dir():
        raise usage_error(f"{out} is not a folder", "give the folder `sdsetup bundle create` wrote")
    lock = load_lock(out)
    if lock is None:
        raise usage_error(f"{out} holds no {layout.LOCK_NAME}", "give the folder `sdsetup bundle create` wrote "
                          "(an unfinished bundle has no lock yet: run bundle create again to finish it)")
    with ThreadPoolExecutor(max_workers=4) as pool:
        observed = dict(zip((f.path for f in lock.files), pool.map(lambda f: _observe(out, f.path), lock.files)))
    problems = compare(lock.files, observed)
    problems += check_pins(out, lock)
    extras = extra_files(lock.files, present_files(out))
    return {
        "out": str(out),
        "ok": not problems,
        "manifest": dict(lock.manifest),
        "target": dict(lock.target),
        "backend": lock.backend,
        "torch_tag": lock.torch_tag,
        "files_checked": len(lock.files),
        "bytes_checked": lock.total_bytes,
        "repos_checked": len({r.path for r in lock.repos}),
        "problems": problems,
        "extra_files": extras,
    }
