"""`sdsetup doctor [DIR] [--log FILE|- ...] [--fix] [--bundle PATH.zip]`: name the cause, give the fix.

Reads the logs given (or stdin), sdsetup's own recent run logs (when DIR is given or no log is, i.e. on
the user's PC rather than a helpdesk reading a log it was sent) and, with DIR, the install itself
(the `check` results, the quick `verify` checks and the repositories' git state), matches every line
against manifests/known_errors.toml and reports the most likely cause first. The pipeline lives in
sdsetup/doctor/pipeline.py; this module only runs it and hands back the outcome.

Exit codes: 0 no error-level finding and no failed install check (or all findings fixed by --fix);
1 an error-level finding or a failed install check; 2 bad arguments; 5 a fix was attempted and failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable

from sdsetup.output import Outcome


def run(
    settings: Any,
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
    from sdsetup.doctor.pipeline import run_doctor
    from sdsetup.doctor.report import render

    result = run_doctor(settings, install_dir, logs, fix=fix, yes=yes, bundle=bundle, confirm=confirm, stdin=stdin, err=err)
    return Outcome("doctor", result.data, result.exit_code, human=render, warnings=result.warnings)
