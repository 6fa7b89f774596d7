"""The web UI itself: DIR becomes a checkout of the manifest's commit (fetched by id, shallow where
the server allows), with sdsetup's own state excluded from git. Local changes are never overwritten."""

from __future__ import annotations

import sys
from typing import Any

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.install.journal import STATE_DIR
from sdsetup.install.plan import failover_order
from sdsetup.install.steps.base import Step
from sdsetup.redact import redact_url

# Paths sdsetup writes inside the checkout that are not the web UI's: kept out of `git status`.
EXCLUDES = (f"/{STATE_DIR}/", "/.cache/")


def _only_sdsetup_state(path) -> bool:
    """A fresh DIR may already hold sdsetup's own state (the lock is taken before the checkout)."""
    return all(child.name == STATE_DIR for child in path.iterdir())


class WebuiStep(Step):
    id = "webui"

    def __init__(self, repo: Any, mirrors: Any, size_bytes: int) -> None:
        self.repo = repo
        self.urls = failover_order([mirrors.git_urls(url) for url in repo.urls])
        self.size_bytes = size_bytes
        self.title = f"web UI at {repo.ref + ' ' if repo.ref else ''}{repo.commit[:10]}"

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "path": ".", "commit": self.repo.commit, "ref": self.repo.ref,
                "url": self.repo.url, "urls": [redact_url(u) for u in self.urls]}

    def identity(self, ctx: Any) -> Any:
        return {"commit": self.repo.commit}

    def is_done(self, ctx: Any) -> bool:
        from sdsetup.gitops import head_commit

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
        current = head_commit(ctx.install_dir, runner)
        saved: dict = {}
        moving = bool(current) and current != self.repo.commit
        # Changes to anything but webui-user.sh/.bat stop the install in checkout_pinned (never overwritten).
        if moving and set(changed_files(ctx.install_dir, runner)) <= set(OWN_TRACKED):
            if not ctx.options.yes and not (sys.stdin.isatty() and sys.stderr.isatty() and _confirm(
                    f"{ctx.install_dir} is a web UI checkout at {current[:10]}; check out {self.repo.commit[:10]} instead? [y/N] ")):
                # Moving is reversible (the commits stay in git), but it is the user's tree: ask.
                raise SdsetupError(
                    f"{ctx.install_dir} is a checkout at {current[:10]}, not the manifest's {self.repo.commit[:10]}",
                    "rerun with --yes to check out the manifest's commit there (your commits stay in git), "
                    "or install into another directory",
                    ExitCode.USAGE,
                )
            saved = _set_aside_launcher_settings(ctx, runner)
        try:
            result = checkout_pinned(
                ctx.install_dir, self.urls, self.repo.commit, runner=runner, name="the web UI",
                origin=self.repo.url, allow_existing=_only_sdsetup_state, log=ctx.reporter.log.info,
            )
        finally:
            for path, data in saved.items():  # the user's lines and sdsetup's block, as they were
                atomic_write_bytes(path, data)
        exclude_paths(ctx.install_dir, EXCLUDES)
        if current and current != self.repo.commit:
            ctx.warnings.append(f"the web UI in {ctx.install_dir} moved from {current[:10]} to {self.repo.commit[:10]} "
                                f"(go back with: git -C \"{ctx.install_dir}\" checkout {current})")
        ctx.reporter.detail(f"from {redact_url(result.url)}{' (shallow)' if result.shallow else ''}")
        return {"url": redact_url(result.url), "shallow": result.shallow, "previous": current}


OWN_TRACKED = ("webui-user.sh", "webui-user.bat")


def _set_aside_launcher_settings(ctx: Any, runner: Any) -> dict:
    """webui-user.sh/.bat are tracked by the web UI and changed by sdsetup (and by their owner): when
    they are the only changes, keep them aside while the checkout moves, then put them back as they
    were (a copy also goes to .sdsetup/backups). Any other change stops the install as usual."""
    import time

    from sdsetup.fsutil import atomic_write_bytes
    from sdsetup.gitops import changed_files

    changed = changed_files(ctx.install_dir, runner)
    if not changed or not set(changed) <= set(OWN_TRACKED):
        return {}
    saved = {}
    for name in changed:
        path = ctx.install_dir / name
        data = path.read_bytes()
        saved[path] = data
        atomic_write_bytes(ctx.state_dir / "backups" / f"{name}.{time.strftime('%Y%m%d-%H%M%S')}", data)
    runner.run(["-C", str(ctx.install_dir), "checkout", "--quiet", "HEAD", "--", *changed])
    return saved


def _confirm(question: str) -> bool:
    sys.stderr.write(question)
    sys.stderr.flush()
    try:
        return sys.stdin.readline().strip().lower() in ("y", "yes")
    except OSError:
        return False
