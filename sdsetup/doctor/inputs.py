"""The doctor's inputs: which logs to read (given, the install's own, sdsetup's recent runs) and the
validated arguments of one run. Bad input is a usage error naming the thing and what to do."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from sdsetup.errors import usage_error
from sdsetup.i18n import t
from sdsetup.layout import InstallLayout

if TYPE_CHECKING:
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


def special_file_kind(path: Path) -> str | None:
    """'a character device', 'a FIFO (named pipe)', ... for what is not a regular file (links followed)."""
    from sdsetup.fsutil import _kind

    try:
        return _kind(os.stat(path).st_mode)
    except OSError:
        return None


def given_logs(logs: Iterable[str]) -> list[LogSpec]:
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
        kind = special_file_kind(path)
        if kind is not None:  # /dev/zero never ends, a FIFO blocks until someone writes: never opened
            raise usage_error(t("--log {raw} is {kind}, not a log file", raw=raw, kind=kind),
                              t("save the console output to a file and give that, or pipe it in with --log -"))
        if not os.access(path, os.R_OK):
            raise usage_error(t("--log {raw}: cannot read it (permissions)", raw=raw),
                              t("copy the log somewhere you can read and try again"))
        specs.append(LogSpec(raw, "log", path))
    return specs


def own_logs(settings: Settings, install_dir: Path | None) -> list[LogSpec]:
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


def dedupe(specs: list[LogSpec]) -> list[LogSpec]:
    seen: set[str] = set()
    out = []
    for spec in specs:
        key = str(spec.path.resolve()) if spec.path else "-"
        if key not in seen:
            seen.add(key)
            out.append(spec)
    return out


@dataclass
class Request:
    """The validated arguments."""

    install_dir: Path | None
    specs: list[LogSpec]
    fix: bool
    yes: bool
    bundle: Path | None


def validate(install_dir: Path | None, logs: Iterable[str], *, fix: bool, yes: bool, bundle: Path | None) -> Request:
    specs = given_logs(list(logs or []))
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
