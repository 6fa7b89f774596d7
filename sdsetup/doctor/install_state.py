"""The install as the doctor sees it: its record, venv, the `check` and quick `verify` results and the
repositories' git state. check, verify and detect are other parts of sdsetup; the doctor must still work
when one of them is failing, so each call is guarded and its failure becomes a note in the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from sdsetup.doctor.inputs import PRIORITY
from sdsetup.errors import SdsetupError

if TYPE_CHECKING:  # types only: importing these here would slow start-up or make a circle
    from sdsetup.detect.machine import MachineFacts
    from sdsetup.doctor.kb import KnowledgeBase
    from sdsetup.doctor.secrets import Redactor
    from sdsetup.settings import Settings

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


def failed_items(section: dict[str, Any] | None) -> int:
    if not isinstance(section, dict):
        return 0
    return sum(1 for item in section.get("items", []) or [] if item.get("status") == "fail")


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
    for name, lines in (("verify", _output_lines(state.verify)), ("extra_model_paths.yaml", extra_model_paths_lines(install_dir)),
                        ("repositories", [e for r in state.repositories for err_text in r["errors"] for e in err_text.splitlines()])):
        scanner = Scanner(kb, name, kind="install", priority=PRIORITY["install"])
        scanner.feed_all(read_text_lines("\n".join(lines)) if lines else [])
        state.scans.append(scanner.finish())
        if lines:
            state.sources.append({"source": name, "kind": "install", "lines": len(lines)})
    return state


_YAML_ESCAPES = set("0abtnvfre \"/\\N_LPxuU\t")


def extra_model_paths_lines(install_dir: Path) -> list[str]:
    """What is wrong in a ComfyUI install's extra_model_paths.yaml, one line each, for the matcher: a
    base_path that does not exist, or a Windows path in double quotes (YAML reads its backslashes as
    escapes and ComfyUI stops at start). Read as the user wrote it: UTF-8, else the Chinese code page."""
    import re

    path = install_dir / "extra_model_paths.yaml"
    try:
        data = path.read_bytes()[:1024 * 1024]
    except OSError:
        return []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("gb18030", "replace")
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("#"):
            continue
        quoted = re.search(r':\s*"([^"]*)"', line)
        if quoted and re.search(r"\\(.)", quoted.group(1)) and any(
                esc not in _YAML_ESCAPES for esc in re.findall(r"\\(.)", quoted.group(1).replace("\\\\", ""))):
            out.append(f'extra_model_paths.yaml line {number}: a Windows path in double quotes ("{quoted.group(1)}")')
            continue
        m = re.match(r"\s*base_path:\s*(.+?)\s*$", line)
        if m:
            value = m.group(1).strip("'\"")
            folder = Path(value) if Path(value).is_absolute() else install_dir / value
            if value and not folder.is_dir():
                out.append(f"extra_model_paths.yaml line {number}: base_path {value} does not exist")
    return out


def install_json(state: InstallState, redactor: Redactor) -> dict[str, Any]:
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


def _install_section(section: dict[str, Any] | None, redact: Callable[[str], str]) -> dict[str, Any] | None:
    if section is None:
        return None
    if section.get("unavailable"):
        return {"unavailable": redact(str(section["unavailable"]))}
    items = [{k: (redact(v) if isinstance(v, str) else v) for k, v in item.items() if k in ("id", "name", "status", "value", "fix")}
             for item in section.get("items", [])]
    return {"items": items}
