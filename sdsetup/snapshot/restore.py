"""Bringing an install back to a snapshot (effects), every step idempotent so a killed rollback reruns:
the web UI's checkout (no network when the commit is local, as it is after an update), the extensions'
checkouts (ones added since are moved to .sdsetup/backups), the venv's exact package set (wheels from
DIR/.sdsetup/wheelhouse checked against their sha256, only the rest from the index), the launch files'
sdsetup blocks, and the install record."""

from __future__ import annotations

from typing import Any

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.i18n import t
from sdsetup.snapshot.model import LAUNCH_FILES, Snapshot, package_changes


OWN_TRACKED = ("webui-user.sh", "webui-user.bat")  # tracked by A1111/Forge, changed by sdsetup and their owner


def move_webui(ctx: Any, runner: Any, urls: tuple[str, ...], commit: str, origin: str) -> None:
    """Check the web UI out at `commit`. webui-user.sh/.bat, which the web UI tracks and sdsetup's block
    changes, are set aside (a copy in .sdsetup/backups first, so a kill loses nothing) and put back as
    they were; any other local change stops it in checkout_pinned, as in install."""
    import time

    from sdsetup.fsutil import atomic_write_bytes
    from sdsetup.gitops import changed_files, checkout_pinned

    root = ctx.install_dir
    changed = changed_files(root, runner)
    saved = {}
    if changed and set(changed) <= set(OWN_TRACKED):
        for name in changed:
            saved[root / name] = (root / name).read_bytes()
            atomic_write_bytes(ctx.layout.backup_path(name, time.strftime("%Y%m%d-%H%M%S")), saved[root / name])
        runner.run(["-C", str(root), "checkout", "--quiet", "HEAD", "--", *changed])
    try:
        checkout_pinned(root, urls, commit, runner=runner, name="web UI", origin=origin)
    finally:
        for path, data in saved.items():
            atomic_write_bytes(path, data)


def restore_checkouts(ctx: Any, record: Any, snap: Snapshot) -> list[str]:
    from sdsetup.ext.listing import list_extensions
    from sdsetup.ext.remove import remove_extension
    from sdsetup.gitops import checkout_pinned, head_commit

    runner = ctx.git_runner()
    root = ctx.install_dir
    moved = []
    if head_commit(root, runner) != snap.webui_commit:
        ctx.reporter.say(t("web UI: back to {commit}", commit=snap.webui_commit[:10]))
        move_webui(ctx, runner, ctx.mirrors.git_urls(snap.webui_url), snap.webui_commit, snap.webui_url)
    wanted = {e.name: e for e in snap.extensions}
    for item in list_extensions(root, record.launcher):
        if item["present"] and item["name"] not in wanted:
            moved.append(remove_extension(root, record.launcher, item["name"])["backup"])
    for ext in snap.extensions:
        path = root / ext.path
        if head_commit(path, runner) == ext.commit:
            continue
        urls = ctx.mirrors.git_urls(ext.url) if ext.url else ()
        if not urls and not (path / ".git").exists():
            raise SdsetupError(t("the extension {name} is gone and the snapshot has no URL for it", name=ext.name),
                               t("add it again with `sdsetup ext add URL --commit {commit}`", commit=ext.commit), ExitCode.FAILED)
        checkout_pinned(path, urls or (str(path),), ext.commit, runner=runner, name=ext.name, origin=ext.url)
    return moved


def restore_venv(ctx: Any, snap: Snapshot) -> dict[str, Any]:
    from sdsetup.install import wheelhouse
    from sdsetup.install.pip_run import proxy_secrets, run_checked, tool_env
    from sdsetup.snapshot.take import venv_packages

    target = snap.package_set()
    current = venv_packages(ctx.python)
    remove, install = package_changes(current, target)
    extra = [name for name in remove if name not in target]  # a changed version is replaced by its install
    local, remote = [], []
    by_name = {p.name: p for p in snap.packages}
    for name in install:
        package = by_name[name]
        wheel = ctx.wheelhouse / package.wheel if package.wheel else None
        if wheel is not None and wheel.is_file() and package.sha256 and ctx.hash_cache.sha256(wheel)[0] == package.sha256:
            local.append(wheel)
        else:
            remote.append(f"{name}=={package.version}")
    if extra:
        ctx.reporter.say(t("venv: removing {names}", names=", ".join(extra)))
        run_checked([str(ctx.python), "-m", "pip", "uninstall", "--yes", "--quiet", *extra], env=tool_env(ctx.mirrors),
                    what="pip uninstall", hint=t("the log file has pip's full output; run the same command again"),
                    secrets=proxy_secrets(ctx.settings))
    if local:
        ctx.reporter.say(t("venv: {count} package(s) from the local wheel cache (no network)", count=len(local)))
        wheelhouse.install(ctx, local, label="rollback")
    if remote:
        ctx.reporter.say(t("venv: {count} package(s) not in the wheel cache, from the index: {names}", count=len(remote), names=", ".join(remote)))
        wheelhouse.resolve_fetch_install(ctx, remote, index_args=ctx.mirrors.pip_index_args(), label="rollback")
    after = venv_packages(ctx.python)
    differs = sorted(name for name in set(after) | set(target) if after.get(name) != target.get(name)
                     and not (name not in target and name in ("pip", "setuptools", "wheel")))
    if differs:
        shown = ", ".join(f"{n} {after.get(n, '-')} (snapshot: {target.get(n, '-')})" for n in differs[:6])
        raise SdsetupError(t("the venv does not match the snapshot after the restore: {shown}", shown=shown),
                           t("run the same command again; the log file has pip's output"), ExitCode.STEP)
    return {"removed": extra, "from_cache": [w.name for w in local], "from_index": remote}


def restore_launch_blocks(root: Any, snap: Snapshot) -> list[str]:
    from sdsetup.fsutil import atomic_write_bytes
    from sdsetup.install.webui_config import merge
    from sdsetup.webui_user_file import flavour_of

    changed = []
    for name in LAUNCH_FILES:
        block = snap.launch_blocks.get(name)
        path = root / name
        if block is None or not path.is_file():
            continue
        raw = path.read_bytes()
        text, how = merge(raw.decode("utf-8", "replace"), block, flavour_of(name))
        if how != "unchanged" and text.encode("utf-8") != raw:
            atomic_write_bytes(path, text.encode("utf-8"))
            changed.append(name)
    return changed


def restore(ctx: Any, record: Any, snap: Snapshot) -> dict[str, Any]:
    from sdsetup.ext.record import load_extensions, save_extensions
    from sdsetup.install_record import save_record

    moved = restore_checkouts(ctx, record, snap)
    venv = restore_venv(ctx, snap)
    launch = restore_launch_blocks(ctx.install_dir, snap)
    record.webui.commit = snap.webui_commit
    save_record(ctx.install_dir, record)
    commits = {e.name: e.commit for e in snap.extensions}
    save_extensions(ctx.install_dir, [{**e, "commit": commits[e["name"]]} for e in load_extensions(ctx.install_dir) if e["name"] in commits])
    from sdsetup.launch.held import write_held

    write_held(ctx.install_dir, ctx.python, record.held)  # what pip at launch holds: the venv as restored
    return {"snapshot": snap.id, "webui_commit": snap.webui_commit, "extensions_moved_away": moved, "venv": venv,
            "launch_files": launch}
