"""`sdsetup bundle verify OUT`: every file against the lock (sha256 read from disk, never from a cache),
every repository's pin; what is missing or wrong is listed with what was expected and what is there.
`check_for_install`: the same before `install --offline` uses the folder, so a damaged bundle stops the
install with exit 4 before anything runs (the install would otherwise fall back to the canonical URLs,
that is, to the network)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sdsetup.bundle import layout
from sdsetup.bundle.lockfile import compare, extra_files, load_lock
from sdsetup.errors import ExitCode, SdsetupError, usage_error
from sdsetup.hashing import sha256_file
from sdsetup.i18n import t


def escapes(out: Path, rel: str) -> bool:
    """Whether OUT/REL is reached through a symbolic link (a linked folder anywhere on the way, or the
    file itself): what it shows does not belong to the bundle, so it is not checked as if it did."""
    path = Path(out)
    for part in rel.split("/"):
        path = path / part
        if path.is_symlink():
            return True
    return False


def _observe(out: Path, rel: str, digest=sha256_file) -> tuple[int, str] | None:
    path = out / rel
    try:
        if escapes(out, rel) or not path.is_file():
            return None
        return path.stat().st_size, digest(path)
    except OSError:
        return None


def _linked(out: Path, problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A missing file that is there through a link is said to be a link (the fix differs)."""
    for problem in problems:
        if problem["problem"] == "missing" and escapes(out, problem["path"]):
            problem["problem"] = "link"
    return problems


def describe(problem: dict[str, Any]) -> str:
    """What is wrong with one locked file or repository, in words (verify's lines, the install's error)."""
    if problem["problem"] == "missing":
        return f"missing (expected {problem['expected_size']} bytes, sha256 {problem['expected_sha256']})"
    if problem["problem"] == "link":
        return "is reached through a symbolic link (a bundle holds its files itself)"
    if problem["problem"] == "pin":
        return "does not hold " + ", ".join(c[:12] for c in (problem["missing_commits"] or problem["expected_commits"]))
    return (f"{problem['problem']} differs: expected {problem['expected_size']} bytes sha256 {problem['expected_sha256']}, "
            f"found {problem['actual_size']} bytes sha256 {problem['actual_sha256']}")


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
        if escapes(out, rel):
            problems.append({"path": rel, "kind": "repository", "problem": "link", "expected_commits": commits,
                             "missing_commits": commits})
            continue
        missing = [c for c in commits if runner.run(["--git-dir", str(bare), "cat-file", "-e", f"{c}^{{commit}}"], check=False).returncode != 0]
        if missing or not holds_pins(bare, commits, runner):
            problems.append({"path": rel, "kind": "repository", "problem": "pin", "expected_commits": commits,
                             "missing_commits": missing})
    return problems


def verify_bundle(out: Path) -> dict[str, Any]:
    out = Path(out).expanduser().absolute()
    if not out.is_dir():
        raise usage_error(t("{out} is not a folder", out=out), t("give the folder `sdsetup bundle create` wrote"))
    lock = load_lock(out)
    if lock is None:
        raise usage_error(t("{out} holds no {lock_name}",
                            out=out, lock_name=layout.LOCK_NAME), t("give the folder `sdsetup bundle create` wrote (an "
                                                                    "unfinished bundle has no lock yet: run bundle create "
                                                                    "again to finish it)"))
    with ThreadPoolExecutor(max_workers=4) as pool:
        observed = dict(zip((f.path for f in lock.files), pool.map(lambda f: _observe(out, f.path), lock.files)))
    problems = _linked(out, compare(lock.files, observed))
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


def check_for_install(folder: Path, cache_file: Path | None = None) -> None:
    """`install --offline DIR`: every locked file and pin as `bundle verify` checks them, before the install
    starts; raises INTEGRITY naming the first bad file. Hashes are remembered in `cache_file` by size and
    mtime, so a second install from the same folder reads it once (the install's copy checks each file's
    sha256 again as it reads it)."""
    from sdsetup.hashing import HashCache

    lock = load_lock(folder)
    if lock is None:
        return
    cache = HashCache(cache_file) if cache_file else None
    digest = (lambda path: cache.sha256(path)[0]) if cache else sha256_file
    observed = {f.path: _observe(folder, f.path, digest) for f in lock.files}
    problems = _linked(folder, compare(lock.files, observed)) + check_pins(folder, lock)
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise SdsetupError(
            t("offline bundle {folder}: {path} {problem}{more}",
              folder=folder, path=folder / first["path"], problem=describe(first), more=more),
            t("nothing was installed; `sdsetup bundle verify {folder}` lists every problem, and `sdsetup bundle "
              "create` with the same options repairs the bundle", folder=folder),
            ExitCode.INTEGRITY,
        )
