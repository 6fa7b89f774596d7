"""`sdsetup update [DIR] [--to REF | --manifest M]` and `sdsetup rollback [DIR] [--list | SNAPSHOT]`.

Both hold the install's lock and keep a journal (sdsetup/snapshot/journal.py): a killed update or
rollback is continued by running the same command again. Exit codes: 0 done; 1 the new pin's
requirements would move a held package (the web UI stays where it was); 2 bad input, no install, no
snapshot; 3 network; 5 git or pip failed; 6 another sdsetup holds DIR.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdsetup.errors import ExitCode, SdsetupError, usage_error
from sdsetup.i18n import t
from sdsetup.output import Outcome
from sdsetup.settings import Settings


def _install(install_dir: Path | None):
    from sdsetup.commands.ext import _install as find

    return find(install_dir)


def update(settings: Settings, install_dir: Path | None, *, to: str | None = None, manifest: str | None = None) -> Outcome:
    from sdsetup.install.journal import InstallLock
    from sdsetup.logs import start_run_log
    from sdsetup.snapshot import journal
    from sdsetup.snapshot.take import load_snapshot, take
    from sdsetup.snapshot.update import update_to
    from sdsetup.venv_context import open_context

    if (to is None) == (manifest is None):
        raise usage_error(t("give exactly one of --to REF and --manifest M"),
                          t("--to moves the web UI to a branch, tag or commit; --manifest runs the install of a newer manifest"))
    root, record = _install(install_dir)
    start_run_log(settings, "update")
    with InstallLock(root, "update"):
        pending = journal.load(root)
        if pending and pending["op"] == "rollback":
            raise SdsetupError(t("a rollback of {dir} was interrupted", dir=root), t("finish it first: `sdsetup rollback {dir}`", dir=root),
                               ExitCode.FAILED)
        ctx = open_context(settings, root)
        if pending and pending["op"] == "update":
            snap = load_snapshot(root, pending["snapshot"])  # the interrupted update's own snapshot: the state before it
            ctx.reporter.say(t("continuing the interrupted update (snapshot {id})", id=snap.id))
        else:
            snap = take(ctx, record, f"before update to {to or manifest}")
            journal.begin(root, "update", snap.id, to or f"manifest:{manifest}")
            ctx.reporter.say(t("snapshot {id} taken (`sdsetup rollback` returns to it)", id=snap.id))
        if to is not None:
            result = update_to(ctx, record, to)
            journal.finish(root)
            return Outcome("update", {"dir": str(root), "snapshot": snap.id, **result}, human=_human_update)
    # --manifest: the install engine itself moves the install to the new manifest's pins (its own lock and journal).
    from sdsetup.commands import install as install_command
    from sdsetup.install.plan import InstallOptions

    outcome = install_command.run(settings, root, InstallOptions(manifest=manifest, yes=True, skip_smoke=True, quiet=settings.quiet))
    if outcome.ok:
        journal.finish(root)
    outcome.data = {**outcome.data, "snapshot": snap.id}
    return outcome


def _human_update(data: dict[str, Any]) -> str:
    lines = [t("web UI {old} -> {new}; snapshot {id} keeps the state before (`sdsetup rollback`)", old=(data["from"] or "-")[:10],
               new=data["to"][:10], id=data["snapshot"])]
    if data["packages"]:
        lines.append(t("installed: {packages}", packages=", ".join(data["packages"])))
    return "\n".join(lines)


def rollback(settings: Settings, install_dir: Path | None, snapshot: str | None = None, *, list_only: bool = False) -> Outcome:
    from sdsetup.install.journal import InstallLock
    from sdsetup.logs import start_run_log
    from sdsetup.snapshot import journal
    from sdsetup.snapshot.restore import restore
    from sdsetup.snapshot.take import list_snapshots, load_snapshot
    from sdsetup.venv_context import open_context

    root, record = _install(install_dir)
    if list_only:
        snaps = [{"id": s.id, "created": s.created, "reason": s.reason, "webui_commit": s.webui_commit, "packages": len(s.packages),
                  "extensions": len(s.extensions)} for s in list_snapshots(root)]
        return Outcome("rollback", {"dir": str(root), "snapshots": snaps}, human=_human_list)
    start_run_log(settings, "rollback")
    with InstallLock(root, "rollback"):
        pending = journal.load(root)
        snap = load_snapshot(root, snapshot or (pending or {}).get("snapshot"))
        journal.begin(root, "rollback", snap.id, None)
        ctx = open_context(settings, root)
        result = restore(ctx, record, snap)
        journal.finish(root)
    return Outcome("rollback", {"dir": str(root), **result}, human=_human_rollback)


def _human_list(data: dict[str, Any]) -> str:
    if not data["snapshots"]:
        return t("no snapshots in {dir}", dir=data["dir"])
    return "\n".join(f"{s['id']}  {s['webui_commit'][:10]}  {s['packages']:>4} pkgs  {s['reason']}" for s in data["snapshots"])


def _human_rollback(data: dict[str, Any]) -> str:
    venv = data["venv"]
    return t("back at snapshot {id}: web UI {commit}; venv: {cache} from the local wheel cache, {index} from the index, {removed} removed",
             id=data["snapshot"], commit=data["webui_commit"][:10], cache=len(venv["from_cache"]), index=len(venv["from_index"]),
             removed=len(venv["removed"]))
