"""Running the web UI: its console streamed to the user and kept in DIR/.sdsetup/logs/launch-STAMP.log
(where `doctor DIR` and `doctor --bundle` read install logs), the ready line noticed (and the browser
opened with --open), a fatal line or an error exit ending the run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TextIO

from sdsetup.launch.plan import LaunchPlan, fatal, ready_url

FATAL_GRACE = 5.0  # seconds a UI gets to exit by itself after a fatal line before it is stopped


@dataclass
class ConsoleResult:
    returncode: int | None
    ready: str | None
    fatal_line: str | None
    log: Path
    lines: int
    stopped: bool  # sdsetup ended it (fatal line, Ctrl-C)


def run_console(plan: LaunchPlan, cwd: Path, log_path: Path, *, echo: TextIO, on_ready: Callable[[str], None] | None = None) -> ConsoleResult:
    from sdsetup import children

    env = dict(os.environ)
    env.update(plan.env)
    env["PYTHONUNBUFFERED"] = "1"
    venv_bin = Path(plan.argv[0]).parent
    env["PATH"] = str(venv_bin) + os.pathsep + env.get("PATH", "")  # as the venv's activate script does
    env["VIRTUAL_ENV"] = str(venv_bin.parent)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(list(plan.argv), cwd=str(cwd), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, **children.popen_kwargs())
    record = children.adopt(process, plan.argv)
    ready = fatal_line = None
    lines = 0
    stopped = False
    fatal_at = None
    try:
        with open(log_path, "wb") as log:
            assert process.stdout is not None
            for raw in iter(process.stdout.readline, b""):
                log.write(raw)
                log.flush()
                lines += 1
                text = raw.decode("utf-8", "replace")
                echo.write(text)
                echo.flush()
                if ready is None:
                    ready = ready_url(text)
                    if ready and on_ready:
                        on_ready(ready)
                if fatal_line is None and fatal(text):
                    fatal_line = text.strip()
                    fatal_at = time.monotonic()
                if fatal_at is not None and time.monotonic() - fatal_at > FATAL_GRACE and process.poll() is None:
                    children.stop(process)
                    stopped = True
                    break
                if fatal_at is not None and process.poll() is None:
                    _stop_later(process, fatal_at)
            process.wait()
    except KeyboardInterrupt:
        children.stop(process)
        raise
    finally:
        if process.poll() is None:
            children.stop(process)
        children.release(record)
    stopped = stopped or (fatal_line is not None and (process.returncode or 0) < 0)
    return ConsoleResult(process.returncode, ready, fatal_line, log_path, lines, stopped)


def _stop_later(process: subprocess.Popen, since: float) -> None:
    """A UI that printed a fatal line and then waits (for a key, say) prints nothing more: a timer stops it."""
    import threading

    if getattr(process, "_sdsetup_timer", None) is not None:
        return

    def stop() -> None:
        from sdsetup import children

        if process.poll() is None:
            children.stop(process)

    timer = threading.Timer(max(0.0, FATAL_GRACE - (time.monotonic() - since)), stop)
    timer.daemon = True
    process._sdsetup_timer = timer  # type: ignore[attr-defined]
    timer.start()
