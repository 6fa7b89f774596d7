"""A long command (install, verify, doctor) run in a thread, with the progress events it emitted.

The page follows a job through server-sent events (app.py); an event stream that drops and comes back
(EventSource does that by itself) continues from the last id it saw, because every event is kept
until the job is forgotten. Only one job runs at a time: two installs into one folder would only
meet the folder's lock, and a person clicking twice means once.
"""

from __future__ import annotations

import itertools
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from sdsetup import events

KEEP_JOBS = 20  # finished jobs kept for their result and files; older ones are forgotten


class Job:
    def __init__(self, job_id: str, kind: str, redact: Callable[[Any], Any]) -> None:
        self.id = job_id
        self.kind = kind
        self.redact = redact
        self.folder = Path(tempfile.mkdtemp(prefix=f"sdsetup-gui-{kind}-"))  # smoke.png, report.html, support zip
        self.events: list[dict[str, Any]] = []
        self.result: dict[str, Any] | None = None
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    @property
    def done(self) -> bool:
        return self.result is not None

    def add(self, kind: str, fields: dict[str, Any]) -> None:
        event = self.redact({"kind": kind, **fields, "t": round(time.monotonic() - self.started, 3)})
        with self.lock:
            event["seq"] = len(self.events)  # the stream's id; a step's own "id" stays its name
            self.events.append(event)

    def since(self, last: int) -> list[dict[str, Any]]:
        with self.lock:
            return self.events[last + 1:]


class Jobs:
    def __init__(self, redact: Callable[[Any], Any]) -> None:
        self.redact = redact
        self.jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def running(self) -> Job | None:
        with self._lock:
            return next((job for job in self.jobs.values() if not job.done), None)

    def start(self, kind: str, work: Callable[[Job], dict[str, Any]]) -> Job | None:
        """Run `work(job)` in a thread, its events going to the job; None when another job still runs."""
        with self._lock:
            if any(not job.done for job in self.jobs.values()):
                return None
            job = Job(str(next(self._ids)), kind, self.redact)
            self.jobs[job.id] = job
            for old in [j for j in self.jobs.values() if j.done][:-KEEP_JOBS]:
                self._forget(old)

        def run() -> None:
            result: dict[str, Any]
            try:
                with events.sink(job.add):
                    result = work(job)
            except BaseException as exc:  # work() turns errors into envelopes; this is the last net
                result = {"ok": False, "error": {"message": f"{type(exc).__name__}: {exc}", "hint": ""}}
            job.result = self.redact(result)
            job.add("end", {"ok": bool(job.result.get("ok"))})

        job.thread = threading.Thread(target=run, name=f"sdsetup-gui-{kind}-{job.id}", daemon=True)
        job.thread.start()
        return job

    def _forget(self, job: Job) -> None:
        import shutil

        self.jobs.pop(job.id, None)
        shutil.rmtree(job.folder, ignore_errors=True)

    def close(self) -> None:
        """The server stops: the jobs' files (smoke image, report, support zip) go with it."""
        with self._lock:
            for job in [j for j in self.jobs.values() if j.done]:
                self._forget(job)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self.jobs.get(job_id)
