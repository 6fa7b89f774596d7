"""The Step protocol shared by every install step."""

from __future__ import annotations

import hashlib
import json
from typing import Any


class StepSkipped(Exception):
    """Raised by a step that could not run and has said why; it is reported as skipped, not done."""


class Step:
    """An install step.

    - `describe()` (pure): what --dry-run shows - title, URLs after mirror rewriting, sizes.
    - `identity(ctx)`: what the result depends on (commits, versions, hashes; never mirror URLs, so
      switching mirrors does not redo finished work). Its hash is the journal fingerprint.
    - `is_done(ctx)`: the products are there and match (cheap; no network).
    - `run(ctx)`: do it; returns a small detail dict kept in the journal.
    """

    id: str = ""
    title: str = ""
    journaled = True  # False: runs whenever anything else is pending (preflight)

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title}

    def identity(self, ctx: Any) -> Any:
        return self.describe()

    def fingerprint(self, ctx: Any) -> str:
        text = json.dumps(self.identity(ctx), sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def is_done(self, ctx: Any) -> bool:
        return ctx.journal.is_done(self.id, self.fingerprint(ctx))

    def run(self, ctx: Any) -> dict[str, Any] | None:
        raise NotImplementedError

    def bytes_needed(self) -> dict[str, int]:
        """Disk space this step needs, per location label ('install_dir', 'temp')."""
        return {}
