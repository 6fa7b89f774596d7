"""Bare repositories at their pins, for a static server to serve over git's dumb HTTP protocol.

A dumb client walks every object reachable from the refs, so the repository holds the pinned commit's
whole history (a shallow repository cannot be served that way). Its branches are exactly the pins:
`main` (the first pin) and `pin/<commit>` for each; `git update-server-info` writes `info/refs` and
`objects/info/packs`, which is all a static server needs. The install's shallow fetch by commit is
refused by a dumb server, and it then fetches the branches (gitops does that already); over file://
the smart protocol is used and `uploadpack.allowAnySHA1InWant` lets it fetch the commit directly.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Sequence

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.gitops import STALL_ARGS, GitRunner, classify_failure, has_commit
from sdsetup.redact import redact_url
from sdsetup.i18n import t

FETCH_NS = "refs/sdsetup-fetch"


def pin_ref(commit: str) -> str:
    return f"refs/heads/pin/{commit}"


def _ref_commit(bare: Path, ref: str, runner: GitRunner) -> str | None:
    result = runner.run(["--git-dir", str(bare), "rev-parse", "--verify", "-q", f"{ref}^{{commit}}"], check=False)
    value = result.stdout.strip()
    return value if result.returncode == 0 and len(value) == 40 else None


def holds_pins(bare: Path, commits: Sequence[str], runner: GitRunner) -> bool:
    """Every pin has its branch, the commit is there, and the dumb-protocol files are written."""
    if not (bare / "info" / "refs").is_file() or not (bare / "objects" / "info" / "packs").is_file():
        return False
    if _ref_commit(bare, "refs/heads/main", runner) != commits[0]:
        return False
    return all(_ref_commit(bare, pin_ref(c), runner) == c for c in commits)


def _fetch(bare: Path, url: str, commit: str, runner: GitRunner, log: Callable[[str], None]) -> str | None:
    """Fetch COMMIT with its history from URL; None on success, else why not."""
    by_id = runner.run(["--git-dir", str(bare), *STALL_ARGS, "fetch", "--quiet", "--no-tags", url, commit], check=False)
    if by_id.returncode == 0 and has_commit(bare, commit, runner):
        return None
    why = runner.tail(by_id.stderr, 2) if by_id.returncode else "commit not found after fetch"
    log(f"fetch {redact_url(url)} {commit[:10]} failed: {why}")
    if by_id.returncode and classify_failure(by_id.stderr) == "permanent":
        return why
    # Servers that refuse a fetch by id: take their branches and tags, then look for the commit.
    full = runner.run(["--git-dir", str(bare), *STALL_ARGS, "fetch", "--quiet", "--no-tags", url,
                       f"+refs/heads/*:{FETCH_NS}/heads/*", f"+refs/tags/*:{FETCH_NS}/tags/*"], check=False)
    if full.returncode == 0 and has_commit(bare, commit, runner):
        return None
    why = runner.tail(full.stderr, 2) if full.returncode else "commit not found on any branch or tag"
    log(f"full fetch {redact_url(url)} failed: {why}")
    return why


def build_bare_repo(bare: Path, urls: Sequence[str], commits: Sequence[str], *, runner: GitRunner, name: str,
                    log: Callable[[str], None] = lambda _m: None) -> dict:
    """Make BARE a bare repository holding COMMITS (first = main), fetched from the first URL that has
    each; returns {"fetched_from": {commit: url (redacted)}, "already": bool}."""
    if (bare / "HEAD").is_file() and holds_pins(bare, commits, runner):
        return {"fetched_from": {}, "already": True}
    if bare.exists() and not (bare / "HEAD").is_file() and any(bare.iterdir()):
        raise SdsetupError(t("{bare} exists and is not a git repository",
                             bare=bare), t("move it away (sdsetup does not delete it) and run again"),
                           ExitCode.FAILED)
    if not (bare / "HEAD").is_file():
        bare.parent.mkdir(parents=True, exist_ok=True)
        runner.run(["init", "--quiet", "--bare", "--template=", str(bare)])
    fetched_from = {}
    for commit in commits:
        if has_commit(bare, commit, runner):
            continue
        problems = []
        for url in urls:
            why = _fetch(bare, url, commit, runner, log)
            if why is None:
                fetched_from[commit] = redact_url(url)
                break
            problems.append(f"{redact_url(url)}: {why}")
        else:
            raise SdsetupError(
                t("could not fetch {name} at commit {commit} from any source ({problems})",
                  name=name, commit=commit[:10], problems='; '.join(problems) or 'no URL'),
                t("check the network or proxy (sdsetup check), or pick another mirror with --mirror"),
                ExitCode.NETWORK,
            )
    _publish(bare, commits, runner)
    return {"fetched_from": fetched_from, "already": False}


def _publish(bare: Path, commits: Sequence[str], runner: GitRunner) -> None:
    """Branches = the pins, nothing else; one pack; the files a dumb HTTP client reads."""
    git = ["--git-dir", str(bare)]
    runner.run([*git, "update-ref", "refs/heads/main", commits[0]])
    for commit in commits:
        runner.run([*git, "update-ref", pin_ref(commit), commit])
    runner.run([*git, "symbolic-ref", "HEAD", "refs/heads/main"])
    listed = runner.run([*git, "for-each-ref", "--format=%(refname)"]).stdout.split()
    wanted = {"refs/heads/main", *(pin_ref(c) for c in commits)}
    for ref in listed:
        if ref not in wanted:
            runner.run([*git, "update-ref", "-d", ref])
    runner.run([*git, "config", "uploadpack.allowAnySHA1InWant", "true"])
    runner.run([*git, "config", "core.logAllRefUpdates", "false"])
    for leftover in ("FETCH_HEAD", "ORIG_HEAD"):
        try:
            (bare / leftover).unlink()
        except OSError:
            pass
    shutil.rmtree(bare / "logs", ignore_errors=True)
    # Objects only the dropped fetch refs reached are left out of the pack, so the bundle serves the pins' history only.
    runner.run([*git, "repack", "-a", "-d", "-q", "--no-write-bitmap-index"])
    runner.run([*git, "prune", "--expire=now"])
    runner.run([*git, "update-server-info"])


def show_file(bare: Path, commit: str, path: str, runner: GitRunner) -> str | None:
    """A file's text at COMMIT (the web UI's requirements file), or None when the commit lacks it."""
    result = runner.run(["--git-dir", str(bare), "show", f"{commit}:{path}"], check=False)
    return result.stdout if result.returncode == 0 else None
