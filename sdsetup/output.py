"""One renderer: a command returns an `Outcome`; it is printed once, for people or as JSON.

JSON goes to stdout as exactly one document (the envelope below, pinned by tests/test_output.py);
progress bars, logs and prompts go to stderr so `--json | jq` always works.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from sdsetup.errors import ExitCode, SdsetupError

SCHEMA_VERSION = 1

STATUS_MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip", "info": "info"}


@dataclass
class Outcome:
    """What a command produced: JSON-able data, an exit code, and how people should read it."""

    command: str
    data: dict[str, Any]
    exit_code: int = ExitCode.OK
    human: Callable[[dict[str, Any]], str] | str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return int(self.exit_code) == 0

    def envelope(self) -> dict[str, Any]:
        return redact_document({
            "schema_version": SCHEMA_VERSION,
            "command": self.command,
            "ok": self.ok,
            "exit_code": int(self.exit_code),
            "warnings": list(self.warnings) + item_warnings(self.data),
            "data": self.data,
        })

    def human_text(self) -> str:
        if callable(self.human):
            return self.human(self.data)
        if isinstance(self.human, str):
            return self.human
        return json.dumps(self.data, indent=2, default=str)


def item_warnings(data: Any) -> list[str]:
    """The check-style items ({status, name, value}) that people see as `[WARN]` lines, as the envelope's
    warnings: `check --json` listed none while its text counted them."""
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return []
    return [f"{item.get('name', '')}: {item.get('value', '')}".strip(": ") for item in items
            if isinstance(item, dict) and item.get("status") == "warn"]


def redact_document(value: Any) -> Any:
    """The whole document with every string (keys too) through sdsetup.redact: one pass over what is
    printed, so no field can leak a password because its command forgot to redact it (issue 23 item 5).
    Anything else JSON cannot hold becomes its str() first, as json.dumps(default=str) would print it."""
    from sdsetup.redact import redact_text

    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {redact_document(key) if isinstance(key, str) else key: redact_document(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_document(item) for item in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact_text(str(value))


def error_envelope(command: str, error: SdsetupError) -> dict[str, Any]:
    return redact_document({
        "schema_version": SCHEMA_VERSION,
        "command": command,
        "ok": False,
        "exit_code": int(error.exit_code),
        "warnings": [],
        "error": error.to_json(),
    })


def emit(outcome: Outcome, as_json: bool, stream=None) -> None:
    stream = stream or sys.stdout
    if as_json:
        stream.write(json.dumps(outcome.envelope(), indent=2, default=str, ensure_ascii=False) + "\n")
    else:
        for warning in outcome.warnings:
            sys.stderr.write(f"warning: {warning}\n")  # i18n: keep
        text = outcome.human_text()
        if text:
            stream.write(text.rstrip("\n") + "\n")
    stream.flush()


def emit_error(command: str, error: SdsetupError, as_json: bool) -> None:
    """One `error:` line and one `hint:` line on stderr; with --json also the envelope on stdout."""
    sys.stderr.write(f"error: {error.message}\n")  # i18n: keep
    if error.hint:
        sys.stderr.write(f"hint: {error.hint}\n")  # i18n: keep
    sys.stderr.flush()
    if as_json:
        sys.stdout.write(json.dumps(error_envelope(command, error), indent=2, default=str, ensure_ascii=False) + "\n")
        sys.stdout.flush()


def display_width(text: str) -> int:
    """Columns a terminal gives text: East Asian wide and fullwidth characters take two (中文 is 4 wide)."""
    if text.isascii():
        return len(text)
    from unicodedata import east_asian_width

    return sum(2 if east_asian_width(char) in ("W", "F") else 1 for char in text)


def status_lines(items: Iterable[dict[str, Any]], *, label_width: int = 22) -> str:
    """Render check-style items ({status, name, value, fix}) as aligned lines, fixes indented below."""
    lines = []
    for item in items:
        mark = STATUS_MARK.get(item.get("status", "info"), item.get("status", "?"))
        name = str(item.get("name", ""))
        value = item.get("value", "")
        lines.append(f"[{mark}] {name}{' ' * max(0, label_width - display_width(name))} {value}".rstrip())
        fix = item.get("fix")
        if fix and item.get("status") in ("warn", "fail"):
            for fix_line in str(fix).splitlines():
                lines.append(f"{'':>7}{'':<{label_width}} -> {fix_line}")
    return "\n".join(lines)


def progress_enabled(quiet: bool) -> bool:
    """Progress bars only for a person watching a terminal."""
    return not quiet and sys.stderr.isatty()
