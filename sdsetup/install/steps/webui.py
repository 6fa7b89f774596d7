"""The web UI itself: DIR becomes a checkout of the manifest's commit (fetched by id, shallow where
the server allows), with sdsetup's own state excluded from git. Local changes are never overwritten."""

from __future__ import annotations

import sys
from typing import Any

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.layout import PREVIOUS_CHECKOUT_FILE as PREVIOUS_FILE
from sdsetup.layout import STATE_DIR, InstallLayout
from sdsetup.install.failover import failover_order
from sdsetup.install.steps.base import Step
from sdsetup.redact import redact_url
from sdsetup.i18n import t

# Paths sdsetup writes inside the checkout that are not the web UI's: kept out of `git status`.
EXCLUDES = (f"/{STATE_DIR}/", "/.cache/")


def inspect_existing_repo(install_dir, repo: Any, urls: tuple[str, ...], runner: Any) -> dict[str, Any] | None:
    """DIR's git repository as found (HEAD, branch, origin) and `foreign`: why it is not the web UI, or None.
    None for a DIR that is not a git repository (reads only)."""
    from sdsetup.gitops import current_branch, head_commit, judge_existing_checkout, origin_url, tracked_at_head

    if not (install_dir / ".git").exists():
        return None
    head = head_commit(install_dir, runner)
    origin = origin_url(install_dir, runner)
    found = tracked_at_head(install_dir, repo.markers, runner) if head else set()
    foreign = judge_existing_checkout(has_head=bool(head), origin=origin, known_urls=[*repo.urls, repo.replaces or "", *urls],
                                      markers=repo.markers, markers_found=found)
    return {"head": head, "branch": current_branch(install_dir, runner) if head else None, "origin": origin, "foreign": foreign}


def refuse_foreign_repo(plan: Any, runner: Any = None) -> None:
    """Before anything is written: a DIR that is a git repository of something else is refused unless
    --adopt-repo asks (install would detach its HEAD and replace its origin). Dry runs check the same."""
    from sdsetup.gitops import GitRunner

    step = next((s for s in plan.steps if isinstance(s, WebuiStep)), None)
    if step is None or plan.options.adopt_repo:
        return
    found = inspect_existing_repo(plan.install_dir, step.repo, step.urls, runner or GitRunner())
    if found and found["foreign"]:
        raise SdsetupError(
            t("{install_dir} is a git repository that is not the web UI: {foreign}", install_dir=plan.install_dir,
              foreign=found["foreign"]),
            t("install into another directory; or, to check the web UI out there anyway, rerun with --adopt-repo "
              "(its HEAD and origin are recorded in .sdsetup/{previous_file} so you can go back)", previous_file=PREVIOUS_FILE),
            ExitCode.USAGE,
            details={"path": str(plan.install_dir), "head": found["head"], "branch": found["branch"]},
        )


def record_previous(ctx: Any, found: dict[str, Any] | None, origin: str) -> dict[str, Any] | None:
    """Write what the checkout will change (old HEAD, branch, origin) before changing it; the first record
    is kept, so a second move still leads back to what the user had. Returns the record."""
    from sdsetup.fsutil import atomic_write_json

    if not found or found["head"] == ctx.manifest.webui.commit:
        return None  # HEAD at the pin: checkout_pinned touches nothing
    if not found["head"] and found["origin"] in (None, origin):
        return None  # an empty repository (a first run that stopped early): nothing of the user's to keep
    path = InstallLayout(ctx.install_dir).previous_checkout
    existing = load_previous(ctx.install_dir)
    if existing:
        return existing
    record = {"head": found["head"], "branch": found["branch"], "origin": found["origin"],
              "undo": undo_commands(ctx.install_dir, found)}
    atomic_write_json(path, record)
    return record


def load_previous(install_dir) -> dict[str, Any] | None:
    import json

    try:
        data = json.loads(InstallLayout(install_dir).previous_checkout.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def undo_commands(install_dir, previous: dict[str, Any]) -> list[str]:
    """The git commands that give DIR's repository back its HEAD (branch) and origin (pure)."""
    from sdsetup.redact import redact_url

    where = f'git -C "{install_dir}"'
    commands = []
    if previous.get("branch") or previous.get("head"):
        # Uncommitted edits (the user's and sdsetup's in the tracked webui-user.sh/.bat) would block the
        # switch: stash them first (kept in `git stash list`, never discarded as --force did; nothing
        # stashed when there are none), then a plain checkout, which refuses rather than overwrite.
        commands.append(f"{where} stash push -m sdsetup-undo")
        commands.append(f"{where} checkout {previous.get('branch') or previous['head']}")
    if previous.get("origin"):
        commands.append(f"{where} remote set-url origin {redact_url(previous['origin'])}")
    else:
        commands.append(f"{where} remote remove origin")
    return commands


def _only_sdsetup_state(path) -> bool:
    """A fresh DIR may already hold sdsetup's own state (the lock is taken before the checkout)."""
    return all(child.name == STATE_DIR for child in path.iterdir())


class WebuiStep(Step):
    id = "webui"

    def __init__(self, repo: Any, mirrors: Any, size_bytes: int) -> None:
        self.repo = repo
        self.urls = failover_order([mirrors.git_urls(url) for url in repo.urls])
        self.size_bytes = size_bytes
        self.title = t("web UI at {ref} {commit}", ref=repo.ref, commit=repo.commit[:10]) if repo.ref \
            else t("web UI at {commit}", commit=repo.commit[:10])

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "path": ".", "commit": self.repo.commit, "ref": self.repo.ref,
                "url": self.repo.url, "urls": [redact_url(u) for u in self.urls]}

    def identity(self, ctx: Any) -> Any:
        return {"commit": self.repo.commit}

    def is_done(self, ctx: Any) -> bool:
        from sdsetup.gitops import head_commit

        if set_aside_pending(ctx.install_dir):
            return False  # a killed run's webui-user files are still set aside: run() puts them back
        if head_commit(ctx.install_dir, ctx.git_runner()) != self.repo.commit:
            return False
        exclude = ctx.install_dir / ".git" / "info" / "exclude"
        try:
            lines = exclude.read_text("utf-8").splitlines()
        except OSError:
            return False
        return all(pattern in lines for pattern in EXCLUDES)

    def bytes_needed(self) -> dict[str, int]:
        return {"install_dir": self.size_bytes}

    def run(self, ctx: Any) -> dict[str, Any]:
        from sdsetup.fsutil import atomic_write_bytes
        from sdsetup.gitops import changed_files, checkout_pinned, exclude_paths, head_commit

        runner = ctx.git_runner()
        for name in restore_set_aside(ctx) if set_aside_pending(ctx.install_dir) else ():
            ctx.reporter.detail(t("{name}: put back as you had it (an earlier run was stopped while it was set aside)", name=name))
        current = head_commit(ctx.install_dir, runner)
        found = inspect_existing_repo(ctx.install_dir, self.repo, self.urls, runner)
        if found and found["foreign"] and not ctx.options.adopt_repo:
            refuse_foreign_repo(ctx.plan, runner)
        previous = record_previous(ctx, found, self.repo.url)
        saved: dict = {}
        moving = bool(current) and current != self.repo.commit
        # Changes to anything but webui-user.sh/.bat stop the install in checkout_pinned (never overwritten).
        if moving and set(changed_files(ctx.install_dir, runner)) <= set(OWN_TRACKED):
            if not ctx.options.yes and not (sys.stdin.isatty() and sys.stderr.isatty() and _confirm(
                    f"{ctx.install_dir} is a web UI checkout at {current[:10]}; check out {self.repo.commit[:10]} instead? [y/N] ")):
                # Moving is reversible (the commits stay in git), but it is the user's tree: ask.
                raise SdsetupError(
                    t("{install_dir} is a checkout at {current}, not the manifest's {commit}", install_dir=ctx.install_dir,
                      current=current[:10], commit=self.repo.commit[:10]),
                    t("rerun with --yes to check out the manifest's commit there (your commits stay in git), "
                      "or install into another directory"),
                    ExitCode.USAGE,
                )
            saved = _set_aside_launcher_settings(ctx, runner)
        try:
            result = checkout_pinned(
                ctx.install_dir, self.urls, self.repo.commit, runner=runner, name="the web UI",
                origin=self.repo.url, allow_existing=_only_sdsetup_state, log=ctx.reporter.log.info, say=ctx.reporter.detail,
                proxy=ctx.mirrors.proxy,
            )
        finally:
            for path, data in saved.items():  # the user's lines and sdsetup's block, as they were
                atomic_write_bytes(path, data)
            if saved:
                _set_aside_file(ctx.install_dir).unlink(missing_ok=True)
        exclude_paths(ctx.install_dir, EXCLUDES)
        if previous and found and found["head"] != self.repo.commit:
            was = found["branch"] or (found["head"] or "no commit")[:10]
            ctx.warnings.append(
                t("the repository in {install_dir} moved from {was} to the web UI's {commit}; its origin was {origin} "
                  "(recorded in .sdsetup/{previous_file}; go back with: {undo})", install_dir=ctx.install_dir, was=was,
                  commit=self.repo.commit[:10], origin=redact_url(found["origin"]), previous_file=PREVIOUS_FILE,
                  undo=" && ".join(previous["undo"]))
                if found["origin"] not in (None, self.repo.url) else
                t("the repository in {install_dir} moved from {was} to the web UI's {commit} "
                  "(recorded in .sdsetup/{previous_file}; go back with: {undo})", install_dir=ctx.install_dir, was=was,
                  commit=self.repo.commit[:10], previous_file=PREVIOUS_FILE, undo=" && ".join(previous["undo"])))
        ctx.reporter.detail(t("from {url} (shallow)", url=redact_url(result.url)) if result.shallow
                            else t("from {url}", url=redact_url(result.url)))
        return {"url": redact_url(result.url), "shallow": result.shallow, "previous": current,
                "previous_branch": found["branch"] if found else None}


OWN_TRACKED = ("webui-user.sh", "webui-user.bat")


def _set_aside_launcher_settings(ctx: Any, runner: Any) -> dict:
    """webui-user.sh/.bat are tracked by the web UI and changed by sdsetup (and by their owner): when
    they are the only changes, keep them aside while the checkout moves, then put them back as they
    were (a copy also goes to .sdsetup/backups). Any other change stops the install as usual."""
    import time

    from sdsetup.fsutil import atomic_write_bytes, atomic_write_json
    from sdsetup.gitops import changed_files

    changed = changed_files(ctx.install_dir, runner)
    if not changed or not set(changed) <= set(OWN_TRACKED):
        return {}
    saved = {}
    pending = {}
    for name in changed:
        path = ctx.install_dir / name
        data = path.read_bytes()
        saved[path] = data
        backup = ctx.layout.backup_path(name, time.strftime('%Y%m%d-%H%M%S'))
        atomic_write_bytes(backup, data, mode=0o600)  # may hold a password
        pending[name] = str(backup.relative_to(ctx.install_dir))
    # Recorded before the files are reverted: a kill from here until they are back leaves the record, and
    # the next run puts them back first (restore_set_aside), whatever the checkout did meanwhile.
    atomic_write_json(_set_aside_file(ctx.install_dir), {"files": pending})
    runner.run(["-C", str(ctx.install_dir), "checkout", "--quiet", "HEAD", "--", *changed])
    return saved


def _set_aside_file(install_dir):
    return InstallLayout(install_dir).state_dir / "set-aside.json"


def set_aside_pending(install_dir) -> bool:
    """webui-user files were set aside by a run that did not put them back (it was killed)."""
    return _set_aside_file(install_dir).is_file()


def restore_set_aside(ctx: Any) -> list[str]:
    """Put back what a killed run set aside (from its backups), then forget the record; the names."""
    import json

    from sdsetup.fsutil import atomic_write_bytes, safe_join

    record = _set_aside_file(ctx.install_dir)
    try:
        files = json.loads(record.read_text("utf-8")).get("files") or {}
    except (OSError, ValueError, AttributeError):
        files = {}
    restored = []
    for name, backup in files.items():
        if name not in OWN_TRACKED:
            continue  # only the two files sdsetup sets aside, whatever the record says
        try:
            data = safe_join(ctx.install_dir, str(backup), "backup").read_bytes()
        except (OSError, SdsetupError):
            continue
        atomic_write_bytes(ctx.install_dir / name, data)
        restored.append(name)
    record.unlink(missing_ok=True)
    return restored


def _confirm(question: str) -> bool:
    sys.stderr.write(question)
    sys.stderr.flush()
    try:
        return sys.stdin.readline().strip().lower() in ("y", "yes")
    except OSError:
        return False
