"""`sdsetup doctor [DIR] [--log FILE|- ...] [--fix] [--bundle PATH.zip]`: name the cause, give the fix.

Reads the logs given (or stdin), sdsetup's own recent run logs (when DIR is given or no log is, i.e. on
the user's PC rather than a helpdesk reading a log it was sent) and, with DIR, the install itself
(the `check` results, the quick `verify` checks and the repositories' git state), matches every line
against manifests/known_errors.toml and reports the most likely cause first.

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
from sdsetup.errors import ExitCode, SdsetupError, usage_error
from sdsetup.layout import STATE_DIR, InstallLayout
from sdsetup.output import Outcome
from sdsetup.i18n import t

if TYPE_CHECKING:  # types only: importing these here would slow start-up or make a circle
    from sdsetup.detect.machine import MachineFacts
    from sdsetup.doctor.fixes import PlannedFix
    from sdsetup.doctor.kb import KnowledgeBase
    from sdsetup.doctor.secrets import Redactor
    from sdsetup.settings import Settings

PRIORITY = {"log": 3, "install": 2, "install-log": 1, "run-log": 0}
MAX_RUN_LOGS = 5
SKIP_RUN_LOGS = ("sdsetup-doctor-", "sdsetup-mirrors-")


@dataclass
class LogSpec:
    name: str  # what to show (home redacted later)
    kind: str  # log | install-log | run-log
    path: Path | None = None  # None: stdin


# ------------------------------------------------------------------------------------------ inputs


def _given_logs(logs: Iterable[str]) -> list[LogSpec]:
    specs: list[LogSpec] = []
    seen_stdin = False
    for raw in logs:
        if raw == "-":
            if seen_stdin:
                raise usage_error(t("--log - is given twice"), t("stdin can be read once; give it one time"))
            seen_stdin = True
            specs.append(LogSpec("stdin", "log"))
            continue
        path = Path(raw).expanduser()
        if not path.exists():
            raise usage_error(t("--log {raw}: no such file", raw=raw),
                              t("give the path of a saved console log, or --log - to read stdin"))
        if path.is_dir():
            raise usage_error(t("--log {raw} is a folder", raw=raw),
                              t("give a log file; for an install folder use `sdsetup doctor DIR`"))
        if not os.access(path, os.R_OK):
            raise usage_error(t("--log {raw}: cannot read it (permissions)", raw=raw),
                              t("copy the log somewhere you can read and try again"))
        specs.append(LogSpec(raw, "log", path))
    return specs


def _own_logs(settings: Settings, install_dir: Path | None) -> list[LogSpec]:
    from sdsetup.logs import recent_run_logs

    specs: list[LogSpec] = []
    if install_dir is not None:
        folder = InstallLayout(install_dir).logs
        if folder.is_dir():
            files = sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True)[:MAX_RUN_LOGS]
            specs += [LogSpec(str(p), "install-log", p) for p in files]
    try:
        recent = recent_run_logs(settings, limit=50)
    except OSError:
        recent = []
    # The doctor's own logs would quote earlier findings back to it; mirror probes fail on purpose.
    specs += [LogSpec(str(p), "run-log", p) for p in recent if not p.name.startswith(SKIP_RUN_LOGS)][:MAX_RUN_LOGS]
    return specs


def _dedupe(specs: list[LogSpec]) -> list[LogSpec]:
    seen: set[str] = set()
    out = []
    for spec in specs:
        key = str(spec.path.resolve()) if spec.path else "-"
        if key not in seen:
            seen.add(key)
            out.append(spec)
    return out


# ------------------------------------------------------------------------------------------ adapters
# check, verify and detect are other parts of sdsetup; the doctor must still work when one of them is
# failing, so each call is guarded and its failure becomes a note in the report.


def _guarded(what: str, call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`call()`'s result, or {"unavailable": why} when it fails: another part's bug must not hide the diagnosis."""
    try:
        return call()
    except SdsetupError as exc:
        return {"unavailable": exc.message}
    except Exception as exc:
        return {"unavailable": f"{what} failed: {type(exc).__name__}: {exc}"}


def collect_check(settings: Settings, install_dir: Path, python: Path | None) -> dict[str, Any]:
    def call() -> dict[str, Any]:
        from sdsetup.detect.readiness import collect

        return collect(settings, install_dir, str(python) if python and python.exists() else None)

    return _guarded("check", call)


def collect_verify(settings: Settings, install_dir: Path) -> dict[str, Any]:
    def call() -> dict[str, Any]:
        from sdsetup import verify

        return verify.verify_install(settings, install_dir, full=False, rehash=False, out=None, smoke=False, progress=False)

    return _guarded("verify", call)


def machine_facts(settings: Settings, check: dict[str, Any] | None) -> MachineFacts | None:
    try:
        from sdsetup.detect.machine import MachineFacts, probe_machine
    except ImportError:
        return None
    try:
        if check and isinstance(check.get("machine"), dict):
            return MachineFacts.from_json(check["machine"])
        return probe_machine(settings)
    except SdsetupError:
        raise
    except Exception:
        return None


def _venv_python(install_dir: Path, record: Any) -> Path | None:
    from sdsetup.fsutil import safe_join

    if record is not None and record.python:
        try:
            return safe_join(install_dir, record.python, "venv python")
        except SdsetupError:
            pass
    for rel in ("venv/Scripts/python.exe", "venv/bin/python"):
        if (install_dir / rel).exists():
            return install_dir / rel
    return None


def _output_lines(section: dict[str, Any]) -> list[str]:
    """What the venv itself printed during verify (the smoke test's error and stderr), for the matcher.

    The check/verify items are sdsetup's own words with their own fixes; they are shown as they are,
    not matched (a prediction such as "the web UI would stop with ..." is not an error that happened).
    """
    lines: list[str] = []
    for key in ("smoke", "full"):
        doc = section.get(key)
        if not isinstance(doc, dict) or doc.get("ok", True):
            continue
        error = doc.get("error")
        if isinstance(error, dict):
            lines += str(error.get("message", "")).splitlines()
        for tail_key in ("stderr_tail", "tail", "stderr"):
            tail = doc.get(tail_key)
            if isinstance(tail, list):
                lines += [str(x) for x in tail]
            elif isinstance(tail, str):
                lines += tail.splitlines()
    return lines


def _failed_items(section: dict[str, Any] | None) -> int:
    if not isinstance(section, dict):
        return 0
    return sum(1 for item in section.get("items", []) or [] if item.get("status") == "fail")


# ------------------------------------------------------------------------------------------ the pipeline
# run() = validate -> read logs -> inspect install -> rank -> fix -> support zip; each step is a function
# returning a small dataclass, so each can be read (and tested) on its own.


@dataclass
class Request:
    """The validated arguments."""

    install_dir: Path | None
    specs: list[LogSpec]
    fix: bool
    yes: bool
    bundle: Path | None


@dataclass
class LogsRead:
    scans: list[Any] = field(default_factory=list)  # match.SourceScan per log read
    sources: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    excerpts: list[tuple[str, Any]] = field(default_factory=list)  # (name, support_zip.Excerpt) when zipping
    empty_logs: list[str] = field(default_factory=list)


@dataclass
class InstallState:
    install_dir: Path
    record: Any = None
    venv_python: Path | None = None
    check: dict[str, Any] | None = None
    verify: dict[str, Any] | None = None
    repositories: list[dict[str, Any]] = field(default_factory=list)
    scans: list[Any] = field(default_factory=list)  # git's and the venv's own words, matched like log lines
    sources: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


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


def validate(install_dir: Path | None, logs: Iterable[str], *, fix: bool, yes: bool, bundle: Path | None) -> Request:
    specs = _given_logs(list(logs or []))
    if install_dir is not None:
        install_dir = Path(install_dir).expanduser()
        if not install_dir.is_dir():
            raise usage_error(t("{install_dir} is not a folder", install_dir=install_dir),
                              t("give the web UI's folder (the one with webui-user.bat/.sh), or leave DIR out"))
        install_dir = install_dir.resolve()
    if fix and install_dir is None:
        raise usage_error(t("--fix needs the install folder"), t("run `sdsetup doctor DIR --fix` with the web UI's folder"))
    if fix and not yes and any(s.path is None for s in specs):
        raise usage_error(t("--fix cannot ask for confirmation while the log comes from stdin"),
                          t("add --yes to apply the fixes without asking, or save the log to a file and use --log FILE"))
    if bundle is not None:
        bundle = Path(bundle).expanduser()
        if bundle.exists():
            raise usage_error(t("--bundle {bundle} already exists", bundle=bundle),
                              t("choose another file name, or move the old bundle away first"))
        if bundle.parent and not bundle.parent.exists():
            raise usage_error(t("--bundle {bundle}: the folder {parent} does not exist", bundle=bundle, parent=bundle.parent),
                              t("create it, or choose another path"))
        if not bundle.parent.is_dir():
            raise usage_error(t("--bundle {bundle}: {parent} is a file, not a folder", bundle=bundle, parent=bundle.parent),
                              t("choose a path inside a folder, e.g. --bundle report.zip"))
        from sdsetup.fsutil import check_output_file

        check_output_file(bundle, "--bundle")  # a dangling link, /proc, a long name (issue 23 item 2)
    return Request(install_dir, specs, fix, yes, bundle)


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


def inspect_install(settings: Settings, kb: KnowledgeBase, install_dir: Path) -> InstallState:
    """The install's record, venv, check and quick verify results and repositories' git state."""
    from sdsetup.doctor.logread import read_text_lines
    from sdsetup.doctor.match import Scanner
    from sdsetup.doctor.repos import install_repo_states
    from sdsetup.install_record import load_record

    state = InstallState(install_dir)
    try:
        state.record = load_record(install_dir)
    except SdsetupError as exc:
        state.problems.append(exc.message)
    state.venv_python = _venv_python(install_dir, state.record)
    state.check = collect_check(settings, install_dir, state.venv_python)
    state.verify = collect_verify(settings, install_dir) if state.record is not None else {
        "unavailable": "no install record (DIR/.sdsetup/install.json): this folder was not installed by sdsetup"}
    state.repositories = install_repo_states(install_dir, state.record)
    for name, lines in (("verify", _output_lines(state.verify)),
                        ("repositories", [e for r in state.repositories for err_text in r["errors"] for e in err_text.splitlines()])):
        scanner = Scanner(kb, name, kind="install", priority=PRIORITY["install"])
        scanner.feed_all(read_text_lines("\n".join(lines)) if lines else [])
        state.scans.append(scanner.finish())
        if lines:
            state.sources.append({"source": name, "kind": "install", "lines": len(lines)})
    return state


def _install_json(state: InstallState, redactor: Redactor) -> dict[str, Any]:
    record = state.record
    return {
        "dir": redactor(str(state.install_dir)),
        "record": {"manifest": record.manifest, "backend": record.backend, "torch_tag": record.torch_tag,
                   "webui_commit": record.webui.commit, "finished": record.finished} if record else None,
        "venv_python": redactor(str(state.venv_python)) if state.venv_python else None,
        "check": _install_section(state.check, redactor),
        "verify": _install_section(state.verify, redactor),
        "repositories": [{"name": r["name"], "head": r["head"], "pinned": r["pinned"], "at_pin": r.get("at_pin"),
                          "changed_files": len(r["status"]), "errors": [redactor(e) for e in r["errors"]]} for r in state.repositories],
    }


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
        "install": _install_json(state, redactor) if state else None,
        "summary": _summary(findings, logs.sources + (state.sources if state else []),
                            _failed_items(check) + _failed_items(verify), logs.empty_logs),
    }
    warnings = [f"the log {name} was empty: nothing in it was diagnosed; "
                + ("paste the console text, then Ctrl+D (Ctrl+Z Enter on Windows)" if name == "stdin" else "send the log again")
                for name in logs.empty_logs]
    install_failed = _failed_items(check) + _failed_items(verify) > 0
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
    from sdsetup.doctor.support_zip import write_support_zip

    summary = write_support_zip(path, redactor=redactor, doctor_data=data, check=state.check if state else None,
                                verify=state.verify if state else None, logs=logs.excerpts,
                                install_dir=state.install_dir if state else None,
                                venv_python=state.venv_python if state else None,
                                repositories=state.repositories if state else None,
                                report_html=report_page(data, state.install_dir if state else None))
    return SupportZip(redactor(summary["path"]), summary["files"], summary["removed"], summary["removed_text"])


def run(
    settings: Settings,
    install_dir: Path | None = None,
    logs: Iterable[str] = (),
    *,
    as_json: bool = False,
    fix: bool = False,
    yes: bool = False,
    bundle: Path | None = None,
    confirm: Callable[[str], bool] | None = None,
    stdin: BinaryIO | None = None,
    err: Any = None,
) -> Outcome:
    from sdsetup.doctor.kb import load_kb
    from sdsetup.doctor.report import render

    request = validate(install_dir, logs, fix=fix, yes=yes, bundle=bundle)
    kb = load_kb()
    redactor = make_redactor(settings, request.install_dir)
    specs = request.specs
    # sdsetup's own run logs describe this machine: read them on the user's PC (DIR given, or no log
    # given), not when a helpdesk reads a log someone sent.
    if request.install_dir is not None or not specs:
        specs = specs + _own_logs(settings, request.install_dir)
    read = read_logs(kb, _dedupe(specs), redactor, keep_excerpts=request.bundle is not None, stdin=stdin)
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
    return Outcome("doctor", data, exit_code, human=render, warnings=diagnosis.warnings)


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
        title="sdsetup doctor report", generated=f"sdsetup {__version__}, {time.strftime('%Y-%m-%d %H:%M:%S %z')}",
        environment=data.get("environment") or {}, summary=data.get("summary", ""), findings=data.get("findings", []),
        install={"folder": install.get("dir"), **record, "venv": install.get("venv_python")} if install else None,
        checks=checks, steps=journal_steps(install_dir), image_png=image, image_caption="the last smoke test's image",
    )


def _install_section(section: dict[str, Any] | None, redact: Callable[[str], str]) -> dict[str, Any] | None:
    if section is None:
        return None
    if section.get("unavailable"):
        return {"unavailable": redact(str(section["unavailable"]))}
    items = [{k: (redact(v) if isinstance(v, str) else v) for k, v in item.items() if k in ("id", "name", "status", "value", "fix")}
             for item in section.get("items", [])]
    return {"items": items}


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
