"""Running a plan: lock DIR, find what is pending, preflight only if something is, then each step in
order - skipped when done, journaled when finished, timed in the run log."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sdsetup import events
from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.i18n import t
from sdsetup.install.context import InstallContext, Reporter
from sdsetup.install.inputs import validate_install_dir
from sdsetup.install.journal import InstallLock, Journal
from sdsetup.install.plan import Plan
from sdsetup.install.steps.base import StepSkipped
from sdsetup.install.steps.webui import refuse_foreign_repo
from sdsetup.layout import InstallLayout


def sources_json(mirrors: Any) -> dict[str, Any]:
    """Which source serves each channel and why (the routing's decision), for the outcome and --json."""
    from sdsetup.settings import CHANNELS

    return {"profile": mirrors.to_json()["profile"], "channels": {ch: mirrors.route(ch).to_json() for ch in CHANNELS}}


def source_lines(sources: dict[str, Any]) -> list[str]:
    """'pypi: aliyun (why)' per channel (pure)."""
    from sdsetup.i18n import t
    from sdsetup.route_reasons import route_reason

    return [t("{channel}: {source} ({reason})", channel=ch, source=route["source"], reason=route_reason(route["reason"]))
            for ch, route in sources["channels"].items()]


def execute(plan: Plan, settings: Any) -> dict[str, Any]:
    """Run the plan; returns the outcome data. Raises SdsetupError on the first failing step."""
    from sdsetup.logs import start_run_log

    install_dir = plan.install_dir
    log_path = start_run_log(settings, "install")
    reporter = Reporter(plan.options.quiet or settings.quiet)
    # The command checked DIR already; execute() is also called directly, so it refuses a file itself.
    validate_install_dir(install_dir, probe_write=False)
    refuse_foreign_repo(plan)  # before the lock writes .sdsetup/ into someone else's repository
    from sdsetup.fsutil import make_new_dir

    created = make_new_dir(install_dir)  # mkdir's answer: a run beside this one making DIR too gets False
    try:
        return _execute_locked(plan, settings, reporter, log_path, created)
    except BaseException:
        if created:
            _remove_if_only_state(install_dir)
        raise


def _execute_locked(plan: Plan, settings: Any, reporter: Reporter, log_path: Path | None, created: bool) -> dict[str, Any]:
    install_dir = plan.install_dir
    from sdsetup import children

    layout = InstallLayout(install_dir)
    with InstallLock(install_dir, "install"), children.tracking(layout.children):
        _refuse_while_children_run(layout)
        ctx = InstallContext(plan=plan, settings=settings, journal=Journal(install_dir), reporter=reporter)
        reporter.log.info("install into %s, manifest %s (%s), backend %s, torch tag %s", install_dir, plan.manifest.name,
                          plan.manifest.source, plan.decisions.backend, plan.decisions.torch_tag)
        sources = sources_json(plan.mirrors)
        for line in source_lines(sources):
            reporter.say(line)
            reporter.log.info("source %s", line)
        steps = plan.steps
        pending = [step.id for step in steps if step.journaled and not step.is_done(ctx)]
        ctx.results["pending_ids"] = pending
        report: list[dict[str, Any]] = []
        total = len(steps)
        started = time.monotonic()
        for number, step in enumerate(steps, 1):
            label = f"[{number}/{total}] {step.title}"
            if not step.journaled and not pending:
                report.append({"id": step.id, "status": "skipped", "reason": "nothing to do"})
                continue
            fingerprint = step.fingerprint(ctx) if step.journaled else ""
            if step.journaled and step.is_done(ctx):
                ctx.journal.confirm(step.id, fingerprint)
                reporter.say(t("{label}: already done", label=label))
                events.emit("step", id=step.id, number=number, total=total, title=str(step.title), status="done-before")
                report.append({"id": step.id, "status": "done-before"})
                continue
            reporter.say(label)
            events.emit("step", id=step.id, number=number, total=total, title=str(step.title), status="running")
            if step.journaled:
                ctx.journal.started(step.id, fingerprint)
            t0 = time.monotonic()
            try:
                detail = step.run(ctx) or {}
            except StepSkipped as skipped:
                seconds = time.monotonic() - t0
                reporter.say(t("      skipped: {skipped}", skipped=skipped))
                events.emit("step", id=step.id, number=number, total=total, title=str(step.title), status="skipped",
                            reason=str(skipped), seconds=round(seconds, 3))
                report.append({"id": step.id, "status": "skipped", "reason": str(skipped), "seconds": round(seconds, 3)})
                continue
            except SdsetupError as error:
                if step.journaled:
                    ctx.journal.failed(step.id, fingerprint, error.message)
                events.emit("step", id=step.id, number=number, total=total, title=str(step.title), status="failed",
                            reason=str(error.message))
                reporter.log.error("step %s failed after %.1fs: %s", step.id, time.monotonic() - t0, error.message)
                error.details.setdefault("step", step.id)
                if log_path:
                    error.details.setdefault("log", str(log_path))
                raise
            except KeyboardInterrupt:
                reporter.log.warning("step %s interrupted", step.id)
                raise
            seconds = time.monotonic() - t0
            if step.journaled:
                # The step's fingerprint after it ran (its inputs may be products of earlier steps).
                ctx.journal.done(step.id, step.fingerprint(ctx), seconds=seconds, detail=detail)
            reporter.log.info("step %s done in %.1fs", step.id, seconds)
            reporter.say(t("      done in {seconds:.1f}s", seconds=seconds))
            events.emit("step", id=step.id, number=number, total=total, title=str(step.title), status="done",
                        seconds=round(seconds, 3))
            report.append({"id": step.id, "status": "ran", "seconds": round(seconds, 3), "detail": detail})
    ran = [item for item in report if item["status"] == "ran" and item["id"] != "preflight"]
    return {
        "install_dir": str(install_dir),
        "created": created,
        "manifest": plan.manifest.name,
        "backend": plan.decisions.backend,
        "torch_tag": plan.decisions.torch_tag,
        "launch_args": list(plan.decisions.launch_args),
        "changed": bool(ran),
        "steps": report,
        "seconds": round(time.monotonic() - started, 3),
        "log": str(log_path) if log_path else None,
        "warnings": ctx.warnings,
        "smoke": ctx.results.get("smoke"),
        "mirror": sources,
    }


def _refuse_while_children_run(layout: InstallLayout, wait: float = 10.0) -> None:
    """A killed run's git or pip (or what they started) may still work in DIR: wait a little, then refuse."""
    from sdsetup import children

    alive = children.wait_for_children(layout.children, wait=wait)
    if alive:
        first = alive[0]
        what = f"{first.get('program')} {' '.join(first.get('args') or [])}".strip()
        raise SdsetupError(
            t("{root} is busy: {what} (pid {pid}), started {started} by an earlier sdsetup run that was stopped, is still running "
              "(and {more} more)", root=layout.root, what=what, pid=first["pid"], started=first.get("started_at"), more=len(alive) - 1)
            if len(alive) > 1 else
            t("{root} is busy: {what} (pid {pid}), started {started} by an earlier sdsetup run that was stopped, is still running",
              root=layout.root, what=what, pid=first["pid"], started=first.get("started_at")),
            t("wait for it to end, or stop it (kill -- -{pid} on Linux/macOS, or Task Manager on Windows), then run again",
              pid=first["pid"]),
            ExitCode.BUSY,
            details={"children": alive},
        )


def _remove_if_only_state(install_dir: Path) -> None:
    """A run that created DIR and failed before any of the web UI was in it leaves no trace.

    Only called when this run created DIR, so everything in it is this run's: its state files and, when
    the web UI step got as far as `git init`, a repository without a commit (fetched objects at most)."""
    import shutil

    from sdsetup.gitops import head_commit
    from sdsetup.layout import CHILDREN_DIR, JOURNAL_FILE, LOCK_FILE, OWNER_FILE, STATE_DIR

    try:
        names = {p.name for p in install_dir.iterdir()}
        if not names <= {STATE_DIR, ".git"} or STATE_DIR not in names:
            return
        if {p.name for p in (install_dir / STATE_DIR).iterdir()} - {JOURNAL_FILE, LOCK_FILE, OWNER_FILE, CHILDREN_DIR}:
            return
        if ".git" in names and ((install_dir / ".git").is_symlink() or head_commit(install_dir) is not None):
            return
        shutil.rmtree(install_dir)
    except (OSError, SdsetupError):
        pass
