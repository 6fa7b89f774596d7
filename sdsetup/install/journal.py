"""The install journal (DIR/.sdsetup/journal.json) and the lock on DIR (DIR/.sdsetup/lock).

The journal records, per step, what was done with which inputs (a fingerprint): a rerun skips a step
whose fingerprint matches and whose products are still there, and continues with the first one that is
not, also after SIGKILL (every write is atomic: the file is always the old or the new version). A run
with nothing to do writes nothing.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.fsutil import atomic_write_json
from sdsetup.layout import JOURNAL_FILE, LOCK_FILE, OWNER_FILE, STATE_DIR, InstallLayout  # noqa: F401 (re-exported)
from sdsetup.i18n import t

JOURNAL_SCHEMA = 1


class Journal:
    def __init__(self, install_dir: Path) -> None:
        self.path = InstallLayout(install_dir).journal
        self.data: dict[str, Any] = {"schema_version": JOURNAL_SCHEMA, "steps": {}}
        if self.path.is_file():
            try:
                loaded = json.loads(self.path.read_text("utf-8"))
            except (OSError, ValueError):
                loaded = None  # a damaged journal only costs re-checking every step
            if isinstance(loaded, dict) and loaded.get("schema_version") == JOURNAL_SCHEMA and isinstance(loaded.get("steps"), dict):
                self.data = loaded

    @property
    def steps(self) -> dict[str, dict[str, Any]]:
        return self.data["steps"]

    def entry(self, step_id: str) -> dict[str, Any]:
        return self.steps.get(step_id) or {}

    def is_done(self, step_id: str, fingerprint: str) -> bool:
        entry = self.entry(step_id)
        return entry.get("status") == "done" and entry.get("fingerprint") == fingerprint

    def detail(self, step_id: str) -> dict[str, Any]:
        return dict(self.entry(step_id).get("detail") or {})

    def started(self, step_id: str, fingerprint: str) -> None:
        self.steps[step_id] = self._keep_detail(step_id, {"status": "started", "fingerprint": fingerprint, "started_at": _now()})
        self._save()

    def _keep_detail(self, step_id: str, entry: dict[str, Any]) -> dict[str, Any]:
        """A step may read what it recorded last time (webui-user: the block it wrote) while it reruns;
        the detail stays until the step finishes again, also across a failure or a kill."""
        detail = self.entry(step_id).get("detail")
        if detail:
            entry["detail"] = detail
        return entry

    def done(self, step_id: str, fingerprint: str, *, seconds: float, detail: dict[str, Any] | None = None) -> None:
        entry = {"status": "done", "fingerprint": fingerprint, "finished_at": _now(), "seconds": round(seconds, 3)}
        if detail:
            entry["detail"] = detail
        self.steps[step_id] = entry
        self._save()

    def confirm(self, step_id: str, fingerprint: str, detail: dict[str, Any] | None = None) -> None:
        """A step found done by inspection but not journaled (killed after its work, before this write)."""
        if not self.is_done(step_id, fingerprint):
            self.done(step_id, fingerprint, seconds=0.0, detail=detail or self.detail(step_id) or None)

    def failed(self, step_id: str, fingerprint: str, error: str) -> None:
        self.steps[step_id] = self._keep_detail(step_id, {"status": "failed", "fingerprint": fingerprint, "finished_at": _now(), "error": error})
        self._save()

    def _save(self) -> None:
        atomic_write_json(self.path, self.data)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class InstallLock:
    """An exclusive lock on DIR; a second install on the same DIR exits BUSY naming the holder."""

    def __init__(self, install_dir: Path, command: str = "install") -> None:
        self.layout = InstallLayout(install_dir)
        self.state_dir = self.layout.state_dir
        self.command = command
        self._lock = None

    def __enter__(self) -> "InstallLock":
        from filelock import FileLock, Timeout

        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.layout.lock), timeout=0)
        try:
            self._lock.acquire()
        except Timeout:
            holder = self.holder()
            who = (f"pid {holder.get('pid')} on {holder.get('host')}, `sdsetup {holder.get('command')}` "
                   f"started {holder.get('started_at')}") if holder else "another process"
            raise SdsetupError(
                t("{parent} is busy: {who} is working on it", parent=self.state_dir.parent, who=who),
                t("wait for it to finish (or stop it), then run again"),
                ExitCode.BUSY,
                details={"holder": holder},
            ) from None
        atomic_write_json(self.layout.lock_owner, {
            "pid": os.getpid(), "host": socket.gethostname(), "command": self.command, "started_at": _now(),
        })
        return self

    def holder(self) -> dict[str, Any]:
        try:
            return json.loads(self.layout.lock_owner.read_text("utf-8"))
        except (OSError, ValueError):
            return {}

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self.layout.lock_owner.unlink()
        except OSError:
            pass
        if self._lock is not None:
            self._lock.release()
