"""Adding an extension (effects). Everything that can refuse runs before anything
changes: the clone goes to DIR/.sdsetup/ext-staging/NAME, the requirements are checked against the held
packages and resolved (a dry run), and only then are packages installed and the checkout moved into
extensions/NAME (custom_nodes/NAME for ComfyUI). A kill leaves the staging clone, which the next run
replaces; the venv is only touched by the final install of already-downloaded, verified files."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.ext.record import load_extensions, upsert
from sdsetup.ext.held import held_versions
from sdsetup.ext.rules import (REQUIREMENT_FILES, Conflict, canonical_git_url, conflicts, folder_for, name_from_url,
                               requirement_lines)
from sdsetup.i18n import t

_SHA = re.compile(r"^[0-9a-f]{40}$")
STAGING = "ext-staging"


def remote_head(runner: Any, urls: tuple[str, ...]) -> str:
    """The commit HEAD points at, from the first URL (mirrors first) that answers `git ls-remote`."""
    errors = []
    for url in urls:
        result = runner.run(["ls-remote", url, "HEAD"], check=False, timeout=120)
        first = (result.stdout.split() or [""])[0]
        if result.returncode == 0 and _SHA.match(first):
            return first
        errors.append(runner.tail(result.stderr, 1))
    raise SdsetupError(t("could not read the newest commit of {url} from any source ({errors})", url=urls[-1], errors="; ".join(errors)),
                       t("check the network or the github mirror (`sdsetup check --network`), or give --commit SHA"), ExitCode.NETWORK)


def conflict_error(name: str, found: list[Conflict], resolver: str | None = None) -> SdsetupError:
    if found:
        shown = "; ".join(t("{wanted} (this install holds {package}=={held})", wanted=c.wanted, package=c.package, held=c.held)
                          for c in found)
        message = t("the extension {name} asks for packages this install holds: {shown}; nothing was changed", name=name, shown=shown)
    else:
        message = t("the requirements of the extension {name} cannot be installed beside the held packages ({resolver}); "
                    "nothing was changed", name=name, resolver=resolver or "-")
    return SdsetupError(
        message,
        t("choose: leave the extension out (it would replace torch and break the web UI), or add it without its "
          "requirements with `sdsetup ext add URL --skip-requirements` (it may fail at launch)"),
        ExitCode.FAILED,
        details={"conflicts": [c.to_json() for c in found], "choices": ["leave it out", "--skip-requirements"]},
    )


def _rmtree(path: Path) -> None:
    def unlock(func, target, _exc):  # git's read-only pack files on Windows
        os.chmod(target, 0o700)
        func(target)

    if path.exists():
        shutil.rmtree(path, onerror=unlock)


def add_extension(ctx: Any, launcher: str, url: str, *, commit: str | None = None, skip_requirements: bool = False,
                  extra_held: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    from sdsetup.gitops import checkout_pinned, head_commit
    from sdsetup.install import wheelhouse

    canonical = canonical_git_url(url)
    name = name_from_url(canonical)
    rel = f"{folder_for(launcher)}/{name}"
    dest = ctx.install_dir / rel
    runner = ctx.git_runner()
    urls = ctx.mirrors.git_urls(canonical)
    if commit is None:
        ctx.reporter.say(t("{name}: reading the newest commit", name=name))
        commit = remote_head(runner, urls)
    if dest.exists():
        if head_commit(dest, runner) == commit and any(e.get("name") == name for e in load_extensions(ctx.install_dir)):
            return {"name": name, "path": rel, "url": canonical, "commit": commit, "changed": False, "requirements": [],
                    "skipped_requirements": skip_requirements}
        raise SdsetupError(t("{path} already exists", path=dest),
                           t("remove it first with `sdsetup ext remove {name}` (it is kept in .sdsetup/backups), then add it again", name=name),
                           ExitCode.FAILED)
    staging = ctx.state_dir / STAGING / name
    _rmtree(staging)  # a clone a killed run left: ours, made again from the commit
    ctx.reporter.say(t("{name}: fetching commit {commit}", name=name, commit=commit[:10]))
    checkout_pinned(staging, urls, commit, runner=runner, name=name, origin=canonical)
    lines: list[str] = []
    for file_name in REQUIREMENT_FILES:
        path = staging / file_name
        if path.is_file():
            lines += requirement_lines(path.read_text("utf-8", "replace"))
    picks: list[Any] = []
    held: dict[str, str] = {}
    if lines and not skip_requirements:
        held = held_versions(ctx.constraints_file, ctx.python, extra_held)
        found = conflicts(lines, held)
        if found:
            _rmtree(staging)
            raise conflict_error(name, found)
        held_file = ctx.state_dir / "ext-constraints.txt"  # the install's pins plus torch & co as installed
        from sdsetup.fsutil import atomic_write_text

        atomic_write_text(held_file, "".join(f"{k}=={v}\n" for k, v in sorted(held.items())))
        index_args = ctx.mirrors.pip_index_args()
        try:
            picks = wheelhouse.resolve(ctx, lines, index_args=index_args, label=f"ext-{name}", constraints=held_file)
        except SdsetupError as error:
            if error.exit_code != ExitCode.STEP:
                _rmtree(staging)
                raise
            _rmtree(staging)
            raise conflict_error(name, [], error.message) from None
        if picks:
            ctx.reporter.detail(wheelhouse.download_summary(picks, [wheelhouse.already_in_wheelhouse(ctx, p) for p in picks]))
            paths = wheelhouse.fetch(ctx, picks)
            wheelhouse.install(ctx, [paths[p.filename] for p in picks], label=f"ext-{name}", build_index_args=index_args)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, dest)
    entry = {"name": name, "path": rel, "url": canonical, "commit": commit,
             "requirements": [f"{p.name}=={p.version}" for p in picks], "skipped_requirements": bool(skip_requirements and lines),
             "added": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    upsert(ctx.install_dir, entry)
    from sdsetup.launch.held import held_file, write_held

    if picks or held_file(ctx.install_dir).is_file():
        write_held(ctx.install_dir, ctx.python, extra_held)
    return {**entry, "changed": True}
