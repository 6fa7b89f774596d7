"""The one error type sdsetup raises for anything a user can act on, and the exit codes.

A `SdsetupError` is rendered once, in `cli.run_command`, as an `error:` line and a `hint:` line.
Anything else escaping a command is a bug and keeps its traceback (with --debug).
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Documented in README.md ("Exit codes"); the JSON envelope carries the same number."""

    OK = 0
    FAILED = 1  # a check or verification found a hard failure
    USAGE = 2  # bad flag, argument, manifest or config (same code Typer uses for usage errors)
    NETWORK = 3  # a download, clone or probe could not reach any source
    INTEGRITY = 4  # a file's size or sha256 did not match
    STEP = 5  # an external step (git, pip, python) failed
    BUSY = 6  # another sdsetup process holds the lock
    DISK = 7  # not enough free space, or the disk filled up
    INTERNAL = 70  # a bug in sdsetup
    INTERRUPTED = 130  # Ctrl-C; partial work is kept for the next run


class SdsetupError(Exception):
    """A failure with a message that names the thing, a hint that says what to do, and an exit code."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        exit_code: ExitCode = ExitCode.FAILED,
        *,
        details: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = ExitCode(exit_code)
        self.details = details or {}

    def to_json(self) -> dict:
        return {
            "message": self.message,
            "message_id": getattr(self.message, "id", None),  # stable across languages (sdsetup/i18n.py)
            "hint": self.hint,
            "hint_id": getattr(self.hint, "id", None),
            "exit_code": int(self.exit_code),
            "kind": self.exit_code.name.lower(),
            "details": self.details,
        }


def usage_error(message: str, hint: str | None = None) -> SdsetupError:
    return SdsetupError(message, hint, ExitCode.USAGE)
