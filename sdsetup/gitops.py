"""git, the way install needs it: a repository at one pinned commit, fetched by commit id.

`checkout_pinned` makes PATH a checkout of COMMIT: `git init` + `git fetch --depth 1 URL COMMIT`
(a full fetch when the server refuses a shallow fetch by id), retries on network trouble, failover over
several URLs (mirrors, then forks, then the canonical one), then a detached checkout. A commit id names
exact content, so whichever URL served it, the result is the same. Local changes are never overwritten.
No shell, argv lists only; output quoted in errors is redacted.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from sdsetup import children
from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.i18n import t
from sdsetup.redact import redact_text, redact_url

# Every git call of sdsetup: the repository's own configuration must not run programs through us
# (a DIR owned by someone else may set core.fsmonitor or hooks; `git status` runs the first,
# `git checkout` the post-checkout hook). os.devnull names no folder, so no hook is ever found there.
SAFETY_ARGS = ("-c", "core.fsmonitor=false", "-c", f"core.hooksPath={os.devnull}")
# A fetch that moves less than 1 KB/s for a minute is stalled: fail it and retry (git waits forever otherwise).
STALL_ARGS = ["-c", "http.lowSpeedLimit=1000", "-c", "http.lowSpeedTime=60"]
# While another source is left to try, a fetch crawling under this for this long is stopped and the next
# source continues (routing's floor, net/decide.py); the last source keeps STALL_ARGS, and a source left
# for slowness is tried again, patiently, when none of the others could serve.
SLOW_GIT_BPS = 64 * 1024
SLOW_GIT_SECONDS = 15
_TOO_SLOW = ("operation too slow", "transfer rate", "less than")
# The most one fetch may take in all (a trickle above the low-speed limit would otherwise go on for hours):
# past it, that source has failed and the next is tried.
FETCH_TIMEOUT = 900.0
HEARTBEAT_EVERY: float | None = None  # None: the heartbeat's default (15 s of silence)
# Answers that no retry will change: move on to the next URL.
_PERMANENT = (
    "not found",
    "does not appear to be a git repository",
    "could not read username",
    "authentication failed",
    "terminal prompts disabled",
    "not our ref",
    "unadvertised object",
    "no such remote ref",
    "couldn't find remote ref",
    "error: 403",
    "error: 404",
    "returned error: 4",
)
_SHALLOW_REFUSED = ("not our ref", "unadvertised object", "does not support shallow", "server does not allow request",
                    "couldn't find remote ref", "no such remote ref")


class GitError(SdsetupError):
    pass


_USER_HELPERS: dict[tuple, tuple[tuple[str, str], ...]] = {}


def credential_config(git: str = "git", env: Mapping[str, str] | None = None) -> tuple[tuple[str, str], ...]:
    """(key, value) config entries that empty git's list of credential helpers, then give back the
    user's own (system and global, URL-scoped ones too): a repository's .git/config, which whoever
    owns DIR may write, must not run a program through a fetch of ours. Read once per git binary and
    configuration (two `git config` calls)."""
    env = os.environ if env is None else env
    cache_key = (git, *(env.get(name) for name in ("HOME", "XDG_CONFIG_HOME", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM",
                                                    "GIT_CONFIG_NOSYSTEM")))
    if cache_key not in _USER_HELPERS:
        found: list[tuple[str, str]] = [("credential.helper", "")]
        for scope in ("--system", "--global"):
            try:
                result = subprocess.run([git, "config", scope, "--null", "--get-regexp", r"^credential\..*helper$"],
                                        capture_output=True, text=True, timeout=15, env={**env, "LC_ALL": "C"})
            except (OSError, subprocess.SubprocessError):
                continue
            for entry in result.stdout.split("\0"):
                key, _, value = entry.partition("\n")
                if key:
                    found.append((key, value))
        _USER_HELPERS[cache_key] = tuple(found)
    return _USER_HELPERS[cache_key]


def with_config_first(env: dict[str, str], entries: Sequence[tuple[str, str]]) -> dict[str, str]:
    """env with `entries` as the first GIT_CONFIG_KEY_n/VALUE_n (git reads them in order, after the
    config files and before `-c`): sdsetup's own entries there (a mirror login's helper) come after."""
    try:
        count = int(env.get("GIT_CONFIG_COUNT") or 0)
    except ValueError:
        count = 0
    existing = [(env.pop(f"GIT_CONFIG_KEY_{i}", ""), env.pop(f"GIT_CONFIG_VALUE_{i}", "")) for i in range(count)]
    for index, (key, value) in enumerate([*entries, *existing]):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    env["GIT_CONFIG_COUNT"] = str(len(entries) + len(existing))
    return env


@dataclass
class GitRunner:
    """How to run git: extra `-c` options (proxy, mirrors) and environment (no prompts, proxy secrets)."""

    config_args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    git: str = "git"
    secrets: Sequence[str] = ()

    def run(self, args: Sequence[str], *, cwd: Path | None = None, check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess:
        argv = [self.git, *SAFETY_ARGS, *self.config_args, *args]
        env = dict(os.environ)
        env.update(self.env)
        env = with_config_first(env, credential_config(self.git, env))
        env.setdefault("GIT_TERMINAL_PROMPT", "0")
        env["LC_ALL"] = "C"  # messages in English, so the patterns above match
        try:
            result = children.run(argv, cwd=cwd, env=env, timeout=timeout)
        except FileNotFoundError:
            raise SdsetupError(t("git is not installed (or not on PATH)"), t("install git (https://git-scm.com) and run again"),
                               ExitCode.STEP) from None
        except subprocess.TimeoutExpired:
            raise GitError(f"git {' '.join(args[:2])} took longer than {timeout:.0f}s", "check the network and run again",
                           ExitCode.NETWORK) from None
        if check and result.returncode != 0:
            raise GitError(
                f"git {' '.join(self._show(args[:3]))} failed (exit {result.returncode}): {self.tail(result.stderr)}",
                "see the log file for the full output",
                ExitCode.STEP,
            )
        return result

    def tail(self, text: str, lines: int = 4) -> str:
        kept = [line.strip() for line in (text or "").strip().splitlines() if line.strip()][-lines:]
        return redact_text(" | ".join(kept), list(self.secrets)) or "(no output)"

    def _show(self, args: Sequence[str]) -> list[str]:
        return [redact_url(a) if "://" in a else a for a in args]


def head_commit(path: Path, runner: GitRunner | None = None) -> str | None:
    """HEAD's commit id, or None when PATH is not a git checkout (or has no commit yet)."""
    path = Path(path)
    if not (path / ".git").exists():
        return None
    result = (runner or GitRunner()).run(["-C", str(path), "rev-parse", "--verify", "-q", "HEAD"], check=False)
    value = result.stdout.strip()
    return value if result.returncode == 0 and len(value) == 40 else None


def is_dirty(path: Path, runner: GitRunner | None = None) -> bool:
    """True when tracked files have changes (untracked files - venv, models - do not count)."""
    result = (runner or GitRunner()).run(["-C", str(path), "status", "--porcelain", "--untracked-files=no"], check=False)
    return result.returncode != 0 or bool(result.stdout.strip())


def changed_files(path: Path, runner: GitRunner | None = None) -> list[str]:
    result = (runner or GitRunner()).run(["-C", str(path), "status", "--porcelain", "--untracked-files=no"], check=False)
    return [line[3:] for line in result.stdout.splitlines() if line.strip()]


def has_commit(path: Path, commit: str, runner: GitRunner | None = None) -> bool:
    result = (runner or GitRunner()).run(["-C", str(path), "cat-file", "-e", f"{commit}^{{commit}}"], check=False)
    return result.returncode == 0


def origin_url(path: Path, runner: GitRunner | None = None) -> str | None:
    result = (runner or GitRunner()).run(["-C", str(path), "config", "--get", "remote.origin.url"], check=False)
    return result.stdout.strip() or None


def current_branch(path: Path, runner: GitRunner | None = None) -> str | None:
    """The branch HEAD is on (short name), or None when HEAD is detached or PATH is not a checkout."""
    result = (runner or GitRunner()).run(["-C", str(path), "symbolic-ref", "-q", "--short", "HEAD"], check=False)
    return result.stdout.strip() or None if result.returncode == 0 else None


def tracked_at_head(path: Path, names: Sequence[str], runner: GitRunner | None = None) -> set[str]:
    """Which of NAMES (paths relative to the checkout) are files of HEAD's tree."""
    if not names:
        return set()
    result = (runner or GitRunner()).run(["-C", str(path), "ls-tree", "-r", "--name-only", "HEAD", "--", *names], check=False)
    return {line.strip() for line in result.stdout.splitlines() if line.strip()} if result.returncode == 0 else set()


def normalize_repo_url(url: str | None) -> str:
    """A clone URL reduced to what names the repository: no credentials, scheme, case of host,
    trailing slash or .git (pure; `https://u:p@GitHub.com/o/r.git/` == `http://github.com/o/r`)."""
    from urllib.parse import urlsplit

    if not url:
        return ""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return url.strip().rstrip("/").removesuffix(".git").rstrip("/")
    host = (parts.hostname or "").lower() + (f":{parts.port}" if parts.port else "")
    path = parts.path.rstrip("/").removesuffix(".git").rstrip("/")
    return f"{host}{path}"


def judge_existing_checkout(*, has_head: bool, origin: str | None, known_urls: Sequence[str],
                            markers: Sequence[str], markers_found: set[str]) -> str | None:
    """None when an existing repository in DIR is the web UI (or an empty one sdsetup may fill);
    otherwise why it is not, in words (pure; table-tested).

    The web UI is recognised by its origin (the canonical URL, a fork or a mirror of it) or, for a
    clone from elsewhere, by the manifest's marker files all being tracked at HEAD."""
    known = {normalize_repo_url(url) for url in known_urls if url}
    if origin and normalize_repo_url(origin) in known:
        return None
    if not has_head:
        return None if not origin else f"its origin is {origin}, not the web UI"
    if markers and set(markers) <= markers_found:
        return None
    if origin:
        return f"its origin is {origin} and it does not hold the web UI's files ({', '.join(markers) or 'none known'})"
    missing = [m for m in markers if m not in markers_found]
    return f"it has no origin and does not hold the web UI's files ({', '.join(missing) or 'none known'})"


def exclude_paths(path: Path, patterns: Sequence[str]) -> bool:
    """Add patterns to .git/info/exclude (local, never committed); True when the file changed."""
    exclude = Path(path) / ".git" / "info" / "exclude"
    try:
        text = exclude.read_text("utf-8")
    except OSError:
        text = ""
    lines = text.splitlines()
    missing = [p for p in patterns if p not in lines]
    if not missing:
        return False
    from sdsetup.fsutil import atomic_write_text

    prefix = text if not text or text.endswith("\n") else text + "\n"
    atomic_write_text(exclude, prefix + "# written by sdsetup: its own state, never part of the web UI\n"
                      + "".join(p + "\n" for p in missing))
    return True


# Left behind when git is killed mid-fetch or mid-checkout; the next git call would refuse to run.
_GIT_LOCKS = ("shallow.lock", "index.lock", "HEAD.lock", "config.lock", "FETCH_HEAD.lock")


def clear_stale_locks(path: Path, log: Callable[[str], None] = lambda _msg: None) -> list[str]:
    """Remove git's lock files in PATH/.git. Only called while sdsetup holds the install lock on DIR,
    so the git that left them was one of ours and is gone."""
    removed = []
    for name in _GIT_LOCKS:
        lock = Path(path) / ".git" / name
        if lock.is_file():
            try:
                lock.unlink()
                removed.append(name)
                log(f"removed a stale {lock} (a git process was interrupted)")
            except OSError:
                pass
    return removed


def classify_failure(stderr: str) -> str:
    """'shallow-refused', 'permanent' or 'transient' (pure; table-tested)."""
    text = (stderr or "").lower()
    if any(marker in text for marker in _SHALLOW_REFUSED):
        return "shallow-refused"
    if any(marker in text for marker in _PERMANENT):
        return "permanent"
    return "transient"


@dataclass
class FetchResult:
    commit: str
    url: str  # the URL that served it (redact before showing)
    shallow: bool
    already: bool = False
    attempts: list[dict] = field(default_factory=list)


def _fetch_commit(runner: GitRunner, path: Path, url: str, commit: str, *, retries: int, backoff: float,
                  attempts: list[dict], log: Callable[[str], None], timeout: float = FETCH_TIMEOUT,
                  floor: tuple[int, int] | None = None) -> bool | None:
    """Fetch COMMIT from URL into PATH. True: shallow; False: full; None: this URL cannot serve it (its
    last attempt's kind "slow": it crawled under `floor` = (bytes/s, seconds) and was stopped)."""
    shallow = True
    attempt = 0
    guard = STALL_ARGS if floor is None else ["-c", f"http.lowSpeedLimit={floor[0]}", "-c", f"http.lowSpeedTime={floor[1]}"]
    while attempt <= retries:
        if shallow:
            args = ["-C", str(path), *guard, "fetch", "--quiet", "--no-tags", "--depth", "1", url, commit]
        else:
            # Some servers refuse a fetch by id: take every branch and tag, then look for the commit.
            args = ["-C", str(path), *guard, "fetch", "--quiet", "--tags", url,
                    "+refs/heads/*:refs/remotes/origin/*"]
        try:
            result = _heartbeat_run(runner, path, args, url, timeout)
        except GitError:  # ran past `timeout` (its process group is stopped): a failed source
            from sdsetup.i18n import t

            result = subprocess.CompletedProcess(args, 124, "", t("did not finish within {seconds}s", seconds=f"{timeout:.0f}"))
        if result.returncode == 0 and has_commit(path, commit, runner):
            attempts.append({"url": redact_url(url), "shallow": shallow, "ok": True})
            return shallow
        kind = "missing" if result.returncode == 0 else classify_failure(result.stderr)
        if floor is not None and result.returncode != 0 and any(m in (result.stderr or "").lower() for m in _TOO_SLOW):
            kind = "slow"
        attempts.append({"url": redact_url(url), "shallow": shallow, "ok": False, "kind": kind,
                         "error": runner.tail(result.stderr, 2) if result.returncode else "commit not found after fetch"})
        log(f"fetch {redact_url(url)} ({'shallow' if shallow else 'full'}) failed: {attempts[-1]['error']}")
        if shallow and kind in ("shallow-refused",):
            shallow = False  # same URL, full fetch; not counted as a retry
            continue
        if kind in ("permanent", "missing", "slow"):
            return None
        attempt += 1
        if attempt <= retries:
            time.sleep(backoff * (2 ** (attempt - 1)))
    return None


def _switch_line(slow_url: str, next_url: str, floor: tuple[int, int]) -> str:
    """'github.com under 66 KB/s for 15 s → ghproxy.example': the one line a switch of git source gets."""
    from urllib.parse import urlsplit

    from sdsetup.i18n import t
    from sdsetup.net.decide import human_rate

    def host(url: str) -> str:
        parts = urlsplit(url)
        return (parts.hostname or url) + (f":{parts.port}" if parts.port else "")

    return t("{slow_host} under {rate} for {seconds} s → {next_host}", slow_host=host(slow_url), rate=human_rate(floor[0]),
             seconds=floor[1], next_host=host(next_url))


def _pack_bytes(path: Path) -> int | None:
    """Bytes git has received so far into PATH's object store (its pack files grow as data arrives)."""
    try:
        return sum(entry.stat().st_size for entry in (path / ".git" / "objects" / "pack").iterdir())
    except OSError:
        return None


def _heartbeat_run(runner: GitRunner, path: Path, args: list[str], url: str, timeout: float) -> subprocess.CompletedProcess:
    """runner.run, with a line after each 15 s of silence: what git waits for, bytes so far, from where."""
    from urllib.parse import urlsplit

    from sdsetup.net.heartbeat import Heartbeat

    host = urlsplit(url).hostname
    with Heartbeat(f"git fetch of {path.name}", status=lambda: (_pack_bytes(path), host), every=HEARTBEAT_EVERY):
        return runner.run(args, check=False, timeout=timeout)


def network_failure(name: str, commit: str, urls: Sequence[str], attempts: list[dict], proxy: str | None) -> SdsetupError:
    """One readable line from the first network failure (the proxy or the host, and the next step);
    every source's answer stays in `details` and the log."""
    from sdsetup.i18n import t
    from sdsetup.net.netcheck import explain_failure

    first = attempts[0]
    failed = [a for a in attempts if not a["ok"]]
    line, hint = explain_failure(urls[0], first.get("error", ""), proxy=proxy)
    sources = len({a["url"] for a in failed})
    more = t("; {count} other source(s) failed too (see the log)", count=sources - 1) if sources > 1 else ""
    return SdsetupError(t("could not fetch {name} at commit {commit}: {line}{more}", name=name, commit=commit[:10],
                          line=line, more=more), hint, ExitCode.NETWORK, details={"attempts": attempts})


def checkout_pinned(
    path: Path,
    urls: Sequence[str],
    commit: str,
    *,
    runner: GitRunner,
    name: str,
    origin: str | None = None,
    allow_existing: Callable[[Path], bool] | None = None,
    retries: int = 2,
    backoff: float = 1.0,
    log: Callable[[str], None] = lambda _msg: None,
    proxy: str | None = None,
    fetch_timeout: float = FETCH_TIMEOUT,
    say: Callable[[str], None] | None = None,
    slow_floor: tuple[int, int] = (SLOW_GIT_BPS, SLOW_GIT_SECONDS),
) -> FetchResult:
    """Make PATH a checkout of COMMIT, fetched from the first of URLS that serves it.

    - HEAD already at COMMIT: nothing is touched (no network), like the web UI's own git_clone.
    - An existing checkout with changes to tracked files is never overwritten: SdsetupError, exit FAILED.
    - An existing non-empty directory that is not a git checkout is refused unless `allow_existing(path)`.
    - `origin` (the canonical URL) becomes remote.origin.url, so later `git fetch`es need no mirror.
    """
    path = Path(path)
    if head_commit(path, runner) == commit:
        return FetchResult(commit, origin or urls[-1], shallow=False, already=True)
    fresh = not (path / ".git").exists()
    if not fresh:
        clear_stale_locks(path, log)
    if fresh:
        if path.exists() and any(path.iterdir()) and not (allow_existing and allow_existing(path)):
            raise SdsetupError(
                t("{path} exists, is not empty and is not a git checkout of {name}", path=path, name=name),
                t("move it away (sdsetup never overwrites what is there) or choose another directory"),
                ExitCode.FAILED,
            )
        path.mkdir(parents=True, exist_ok=True)
        runner.run(["init", "--quiet", str(path)])
        runner.run(["-C", str(path), "config", "core.filemode", "false"])  # as the web UI's own clone does
    elif head_commit(path, runner) is not None and is_dirty(path, runner):
        files = changed_files(path, runner)
        shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
        raise SdsetupError(
            t("{name} at {path} has local changes ({shown}); sdsetup does not overwrite them", name=name, path=path,
              shown=shown),
            t("commit or stash them (git -C \"{path}\" stash), or install into another directory; "
              "sdsetup needs commit {commit} checked out", path=path, commit=commit[:10]),
            ExitCode.FAILED,
            details={"path": str(path), "changed": files},
        )
    attempts: list[dict] = []
    served_by: str | None = None
    shallow = False
    if has_commit(path, commit, runner):
        served_by = "(already fetched)"
    else:
        slow: list[str] = []
        for index, url in enumerate(urls):
            last = index == len(urls) - 1
            outcome = _fetch_commit(runner, path, url, commit, retries=retries, backoff=backoff, attempts=attempts, log=log,
                                    timeout=fetch_timeout, floor=None if last else slow_floor)
            if outcome is not None:
                served_by, shallow = url, outcome
                break
            if attempts and attempts[-1].get("kind") == "slow":
                slow.append(url)
                line = _switch_line(url, urls[index + 1], slow_floor)
                log(line)
                if say is not None:
                    say(line)
        for url in slow if served_by is None else ():
            # Nothing else could serve: the slow one, patiently.
            outcome = _fetch_commit(runner, path, url, commit, retries=retries, backoff=backoff, attempts=attempts, log=log,
                                    timeout=fetch_timeout)
            if outcome is not None:
                served_by, shallow = url, outcome
                break
    if served_by is None and attempts and attempts[0].get("kind") == "transient":
        raise network_failure(name, commit, urls, attempts, proxy)
    if served_by is None:
        tried = "; ".join(f"{a['url']}: {a.get('error', '')}" for a in attempts if not a["ok"]) or "no URL"
        raise SdsetupError(
            t("could not fetch {name} at commit {commit} from any source ({tried})", name=name, commit=commit[:10], tried=tried),
            t("check the network or proxy (sdsetup check), or pick another mirror with --mirror; "
              "a mirror that does not have this commit is skipped automatically"),
            ExitCode.NETWORK,
            details={"attempts": attempts},
        )
    # --force is never used: git refuses to overwrite untracked files in the way, and so do we.
    result = runner.run(["-C", str(path), "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit], check=False)
    if result.returncode != 0:
        raise SdsetupError(
            t("could not check out {name} at {commit} in {path}: {stderr}", name=name, commit=commit[:10], path=path,
              stderr=runner.tail(result.stderr)),
            t("files in the way were left untouched; move them away and run again"),
            ExitCode.STEP,
        )
    if origin:
        current = origin_url(path, runner)
        if current is None:
            runner.run(["-C", str(path), "remote", "add", "origin", origin])
        elif current != origin:
            runner.run(["-C", str(path), "remote", "set-url", "origin", origin])
    return FetchResult(commit, served_by, shallow=shallow, attempts=attempts)
