"""The doctor's pipeline: read logs -> inspect the install -> rank -> fix -> support zip.

Each step is a function returning a small dataclass, so each can be read (and tested) on its own;
`run_doctor` chains them and returns the report's data and exit code (the command renders it).
Exit codes: 0 no error-level finding and no failed install check (or all findings fixed by --fix);
1 an error-level finding or a failed install check; 2 bad arguments; 5 a fix was attempted and failed.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterable

from sdsetup import __version__
from sdsetup.doctor.inputs import PRIORITY, LogSpec, dedupe, own_logs, validate
from sdsetup.doctor.install_state import InstallState, failed_items, inspect_install, install_json, machine_facts
from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.i18n import t
from sdsetup.layout import STATE_DIR, InstallLayout

if TYPE_CHECKING:  # types only: importing these here would slow start-up or make a circle
    from sdsetup.detect.machine import MachineFacts
    from sdsetup.doctor.fixes import PlannedFix
    from sdsetup.doctor.kb import KnowledgeBase
    from sdsetup.doctor.secrets import Redactor
    from sdsetup.settings import Settings

@dataclass
class LogsRead:
    scans: list[Any] = field(default_factory=list)  # match.SourceScan per log read
    sources: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    excerpts: list[tuple[str, Any]] = field(default_factory=list)  # (name, support_zip.Excerpt) when zipping
    empty_logs: list[str] = field(default_factory=list)


@dataclass
class Diagnosis:
    ranked: list[Any]  # match.Ranked, best first
    data: dict[str, Any]  # the --json document's data
    exit_code: ExitCode
    facts: MachineFacts | None = None
    install_failed: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass
class FixesDone:
    plans: list[Any]  # fixes.PlannedFix
    exit_code: ExitCode


@dataclass
class SupportZip:
    path: str
    files: list[str]
    removed: dict[str, int]
    removed_text: str


def make_redactor(settings: Settings, install_dir: Path | None) -> Redactor:
    from sdsetup.doctor.secrets import Redactor, machine_secrets

    webui_texts = []
    if install_dir is not None:
        for name in ("webui-user.bat", "webui-user.sh"):
            try:
                webui_texts.append((install_dir / name).read_text("utf-8", "replace"))
            except OSError:
                pass
    return Redactor(machine_secrets(settings, install_dir, extra_texts=webui_texts))


def read_logs(kb: KnowledgeBase, specs: list[LogSpec], redactor: Redactor, *, keep_excerpts: bool, stdin: BinaryIO | None) -> LogsRead:
    """Scan every log (streaming); learn the secrets they show; keep head+tail excerpts for the zip."""
    from sdsetup.doctor.logread import ReadStats, iter_lines
    from sdsetup.doctor.match import Scanner
    from sdsetup.doctor.secrets import assignment_secrets, url_secrets
    from sdsetup.doctor.support_zip import Excerpt

    out = LogsRead()
    for spec in specs:
        display = redactor(spec.name)
        excerpt = Excerpt() if keep_excerpts else None
        written = [0]  # lines with text: an empty paste must not read as "nothing wrong"

        def on_line(line_no: int, text: str, excerpt=excerpt, written=written) -> None:
            if excerpt is not None:
                excerpt.add(line_no, text)
            if text.strip():
                written[0] += 1
            if "://" in text:  # a password seen in a URL is masked wherever else it shows up
                redactor.learn(url_secrets(text))
            redactor.learn(assignment_secrets(text))  # so is a --gradio-auth login or a …_KEY= value

        scanner = Scanner(kb, display, kind=spec.kind, priority=PRIORITY[spec.kind], on_line=on_line)
        stats = ReadStats()
        try:
            if spec.path is None:
                stream = stdin if stdin is not None else sys.stdin.buffer
                scanner.feed_all(iter_lines(stream, stats))
            else:
                with open(spec.path, "rb") as handle:
                    scanner.feed_all(iter_lines(handle, stats))
        except OSError as exc:
            out.problems.append(f"could not read {display}: {exc.strerror or exc}")
            continue
        scan = scanner.finish()
        scan.stats = stats
        out.scans.append(scan)
        out.sources.append({"source": display, "kind": spec.kind, "lines": stats.lines, "bytes": stats.bytes,
                            "encoding": stats.encoding, "cut_lines": stats.cut_lines})
        if excerpt is not None:
            out.excerpts.append((display, excerpt))
        if spec.kind == "log" and not written[0]:
            out.empty_logs.append(display)
    return out


def diagnose(settings: Settings, kb: KnowledgeBase, logs: LogsRead, state: InstallState | None, redactor: Redactor) -> Diagnosis:
    """Rank what was found (pure ranking over the scans) and build the report's data."""
    from sdsetup.doctor.match import rank
    from sdsetup.doctor.report import finding_json, note_json

    scans = logs.scans + (state.scans if state else [])
    ranked, notes = rank(kb, scans)
    from sdsetup.i18n import current

    findings = [finding_json(r, redactor, current()) for r in ranked]  # the KB's text in the run's language
    check = state.check if state else None
    verify = state.verify if state else None
    facts = machine_facts(settings, check if isinstance(check, dict) and "unavailable" not in check else None)
    data: dict[str, Any] = {
        "findings": findings,
        "harmless": [note_json(n) for n in notes],
        "sources": logs.sources + (state.sources if state else []),
        "problems_reading": logs.problems + (state.problems if state else []),
        "empty_logs": logs.empty_logs,
        "environment": environment(settings, facts, redactor),
        "install": install_json(state, redactor) if state else None,
        "summary": _summary(findings, logs.sources + (state.sources if state else []),
                            failed_items(check) + failed_items(verify), logs.empty_logs),
    }
    warnings = [f"the log {name} was empty: nothing in it was diagnosed; "
                + ("paste the console text, then Ctrl+D (Ctrl+Z Enter on Windows)" if name == "stdin" else "send the log again")
                for name in logs.empty_logs]
    install_failed = failed_items(check) + failed_items(verify) > 0
    exit_code = ExitCode.FAILED if install_failed or any(f["severity"] == "error" for f in findings) else ExitCode.OK
    return Diagnosis(ranked, data, exit_code, facts, install_failed, warnings)


def apply_fixes(settings: Settings, state: InstallState, diagnosis: Diagnosis, redactor: Redactor, *, yes: bool,
                confirm: Callable[[str], bool] | None, err: Any) -> FixesDone:
    """Plan the findings' autofixes, show each, ask, apply; the exit code they leave."""
    from sdsetup.doctor import fixes as fixes_mod

    ctx = fixes_mod.FixContext(install_dir=state.install_dir, settings=settings, system=platform.system(),
                               venv_python=state.venv_python, facts=diagnosis.facts)
    wanted = [(r.entry.id, r.entry.autofix) for r in diagnosis.ranked if r.entry.autofix]
    plans = fixes_mod.plan_fixes(ctx, wanted)

    def ask(plan) -> bool:
        err.write("\n" + describe_plan(plan, redactor) + "\n")
        err.flush()
        if yes:
            return True
        return bool(confirm and confirm("Apply this fix?"))

    from sdsetup.install.journal import InstallLock

    # pip into the venv or an edit of webui-user while `sdsetup install` works on the same folder would
    # corrupt both: the install's lock is held while fixes are applied (another holder: exit 6, BUSY).
    if plans:
        with InstallLock(state.install_dir, "doctor --fix"):
            fixes_mod.apply_fixes(plans, ctx, ask)
    exit_code = diagnosis.exit_code
    if any(p.result == "failed" for p in plans):
        exit_code = ExitCode.STEP
    elif exit_code == ExitCode.FAILED:
        fixed = {fid for p in plans if p.result == "applied" or p.status == "done" for fid in p.finding_ids}
        if not diagnosis.install_failed and all(f["id"] in fixed for f in diagnosis.data["findings"] if f["severity"] == "error"):
            exit_code = ExitCode.OK
    return FixesDone(plans, exit_code)


def pack_support_zip(path: Path, data: dict[str, Any], logs: LogsRead, state: InstallState | None, redactor: Redactor) -> SupportZip:
    import errno

    from sdsetup.doctor.support_zip import write_support_zip

    try:
        summary = _write_zip(write_support_zip, path, data, logs, state, redactor)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG):
            raise SdsetupError(t("cannot write the support zip {path}: the disk is full ({reason})", path=path,
                                 reason=exc.strerror or exc),
                               t("free some space on that drive, or give --bundle a path on another drive"), ExitCode.DISK) from None
        raise SdsetupError(t("cannot write the support zip {path}: {reason}", path=path, reason=exc.strerror or exc),
                           t("give --bundle a path in a folder you can write to"), ExitCode.USAGE) from None
    return SupportZip(redactor(summary["path"]), summary["files"], summary["removed"], summary["removed_text"])


def _write_zip(write_support_zip, path: Path, data: dict[str, Any], logs: LogsRead, state: InstallState | None,
               redactor: Redactor) -> dict[str, Any]:
    return write_support_zip(path, redactor=redactor, doctor_data=data, check=state.check if state else None,
                             verify=state.verify if state else None, logs=logs.excerpts,
                             install_dir=state.install_dir if state else None,
                             venv_python=state.venv_python if state else None,
                             repositories=state.repositories if state else None,
                             report_html=report_page(data, state.install_dir if state else None))


@dataclass
class Result:
    data: dict[str, Any]
    exit_code: ExitCode
    warnings: list[str]


def run_doctor(
    settings: Settings,
    install_dir: Path | None = None,
    logs: Iterable[str] = (),
    *,
    fix: bool = False,
    yes: bool = False,
    bundle: Path | None = None,
    confirm: Callable[[str], bool] | None = None,
    stdin: BinaryIO | None = None,
    err: Any = None,
) -> Result:
    from sdsetup.doctor.kb import load_kb

    request = validate(install_dir, logs, fix=fix, yes=yes, bundle=bundle)
    kb = load_kb()
    redactor = make_redactor(settings, request.install_dir)
    specs = request.specs
    # sdsetup's own run logs describe this machine: read them on the user's PC (DIR given, or no log
    # given), not when a helpdesk reads a log someone sent.
    if request.install_dir is not None or not specs:
        specs = specs + own_logs(settings, request.install_dir)
    read = read_logs(kb, dedupe(specs), redactor, keep_excerpts=request.bundle is not None, stdin=stdin)
    state = inspect_install(settings, kb, request.install_dir) if request.install_dir is not None else None
    diagnosis = diagnose(settings, kb, read, state, redactor)
    data, exit_code = diagnosis.data, diagnosis.exit_code
    if request.fix:
        assert state is not None
        done = apply_fixes(settings, state, diagnosis, redactor, yes=request.yes, confirm=confirm, err=err or sys.stderr)
        data["fixes"] = [p.to_json(redactor) for p in done.plans]
        exit_code = done.exit_code
    if request.bundle is not None:
        data["bundle"] = {"path": redactor(str(request.bundle))}
        packed = pack_support_zip(request.bundle, data, read, state, redactor)
        data["bundle"] = {"path": packed.path, "files": packed.files, "removed": packed.removed, "removed_text": packed.removed_text}
    return Result(data, exit_code, diagnosis.warnings)


SMOKE_IMAGE = Path(STATE_DIR) / "smoke.png"  # where `sdsetup verify DIR --out` can keep the last image
MAX_IMAGE_BYTES = 8 * 1024 * 1024


def report_page(data: dict[str, Any], install_dir: Path | None) -> str:
    """report.html for the support zip, from the doctor's (already redacted) data."""
    import time

    from sdsetup.doctor.html_report import journal_steps, render_report

    install = data.get("install") or {}
    record = install.get("record") or {}
    checks = [i for part in ("check", "verify") for i in ((install.get(part) or {}).get("items") or [])]
    image = None
    if install_dir is not None:
        try:
            png = (install_dir / SMOKE_IMAGE).read_bytes()
            image = png if png.startswith(b"\x89PNG") and len(png) <= MAX_IMAGE_BYTES else None
        except OSError:
            image = None
    return render_report(
        title=t("sdsetup doctor report"), generated=f"sdsetup {__version__}, {time.strftime('%Y-%m-%d %H:%M:%S %z')}",
        environment=data.get("environment") or {}, summary=data.get("summary", ""), findings=data.get("findings", []),
        install={"folder": install.get("dir"), **record, "venv": install.get("venv_python")} if install else None,
        checks=checks, steps=journal_steps(install_dir), image_png=image, image_caption=t("the last smoke test's image"),
    )


def _summary(findings: list[dict[str, Any]], sources: list[dict[str, Any]], failed_checks: int = 0,
             empty_logs: list[str] | None = None) -> str:
    # The summary is assembled from small catalog messages: plurals and optional clauses each get their own.
    read = t("1 source") if len(sources) == 1 else t("{count} sources", count=len(sources))
    checks = "" if not failed_checks else t("; 1 install check failed (below)") if failed_checks == 1 \
        else t("; {count} install checks failed (below)", count=failed_checks)
    logs = ", ".join(empty_logs or [])
    was_empty = t("{logs} was empty", logs=logs) if len(empty_logs or []) == 1 else t("{logs} were empty", logs=logs)
    empty = t(" ({was_empty})", was_empty=was_empty) if empty_logs else ""
    if not findings:
        if empty_logs and len(empty_logs) == len(sources):
            return t("Nothing to diagnose: {was_empty}{checks}.", was_empty=was_empty, checks=checks)
        if sources:
            return t("No known problem found in {read}{empty}{checks}.", read=read, empty=empty, checks=checks)
        return t("No known problem found (nothing was read){empty}{checks}.", empty=empty, checks=checks)
    errors = sum(1 for f in findings if f["severity"] == "error")
    warnings = len(findings) - errors
    parts = [t("1 problem") if errors == 1 else t("{count} problems", count=errors)] if errors else []
    if warnings:
        parts.append(t("1 warning") if warnings == 1 else t("{count} warnings", count=warnings))
    found = t("{problems} and {warnings}", problems=parts[0], warnings=parts[1]) if len(parts) == 2 else parts[0]
    return t("Found {found} in {read}{empty}{checks}, the most likely cause first:", found=found, read=read, empty=empty,
             checks=checks)


def environment(settings: Settings, facts: MachineFacts | None, redact: Callable[[str], str]) -> dict[str, Any]:
    env: dict[str, Any] = {
        "sdsetup": __version__,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "proxy": redact(settings.proxy) if getattr(settings, "proxy", None) else None,
        "proxy_env": sorted(n for n in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
                            if os.environ.get(n)),
        "mirror": getattr(settings, "mirror", None),
        "gpus": None,
    }
    if facts is not None:
        env["os"] = {k: facts.os.get(k) for k in ("system", "release", "machine", "bits", "wsl")}
        env["gpus"] = [{"vendor": g.vendor, "name": g.name, "vram_total_bytes": g.vram_total_bytes, "driver_version": g.driver_version,
                        "cuda_driver_version": g.cuda_driver_version, "compute_capability": g.compute_capability} for g in facts.gpus]
    return env


def describe_plan(plan: PlannedFix, redact: Callable[[str], str]) -> str:
    lines = [f"Fix for {', '.join(plan.finding_ids)}: {plan.autofix.text}"]
    for op in plan.operations:
        lines.append(f"  - {redact(op.summary)}")
        if op.kind == "edit" and op.path is not None and op.path.exists():
            lines.append(f"    (the old file is kept in {redact(str(InstallLayout(op.path.parent).backups))})")
    return "\n".join(lines)
