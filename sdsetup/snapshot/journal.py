"""What an update or rollback in progress is doing: DIR/.sdsetup/daytwo-journal.json
({"op", "snapshot", "target", "started"}). Written before the first change and removed after the last,
so a killed run leaves it and the next `update` / `rollback` continues the same operation (every step is
idempotent: a checkout at its commit and a venv with its package set are left alone)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from sdsetup.layout import InstallLayout

NAME = "daytwo-journal.json"


def path(root: Path) -> Path:
    return InstallLayout(root).state_dir / NAME


def load(root: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path(root).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("op") else None


def begin(root: Path, op: str, snapshot: str, target: str | None) -> None:
    from sdsetup.fsutil import atomic_write_json

    atomic_write_json(path(root), {"op": op, "snapshot": snapshot, "target": target,
                                   "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def finish(root: Path) -> None:
    path(root).unlink(missing_ok=True)
