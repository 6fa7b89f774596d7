"""Start and stop the installed web UI from the page, its console kept in a log the doctor reads.

The command is the one the install outcome tells people to run (the launcher's `start_hint`:
`./webui.sh`, or `webui-user.bat` on Windows; `run_comfyui.*` for ComfyUI), started in its own process
group so Stop ends it and everything it started. Its console goes to DIR/.sdsetup/logs/webui-console.log,
where `sdsetup doctor DIR` already looks, and the page offers it under "pick the console log".
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from sdsetup.errors import ExitCode, SdsetupError, usage_error
from sdsetup.i18n import t

CONSOLE_LOG = "webui-console.log"
_URL = re.compile(r"https?://(?:127\.0\.0\.1|localhost|0\.0\.0\.0)(?::\d+)?/?")
TAIL_BYTES = 16 * 1024


def start_command(install_dir: Path, start_hint: str, windows: bool | None = None) -> list[str]:
    """argv for the start hint ("./webui.sh        (Windows: webui-user.bat)") on this system (pure)."""
    windows = os.name == "nt" if windows is None else windows
    if windows:
        found = re.search(r"Windows:\s*([^\s)]+)", start_hint)
        script = found.group(1) if found else start_hint.split()[0]
        return ["cmd.exe", "/c", str(install_dir / script)]
    script = start_hint.split()[0]
    return ["bash", str(install_dir / script.removeprefix("./"))]


def local_url(text: str) -> str | None:
    """The last local address the web UI printed ("Running on local URL:  http://127.0.0.1:7860")."""
    found = _URL.findall(text)
    return found[-1].rstrip("/").replace("0.0.0.0", "127.0.0.1") if found else None


class WebUI:
    """At most one web UI started by this page."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.install_dir: Path | None = None
        self.log_path: Path | None = None
        self.started_at: float | None = None
        self._lock = threading.Lock()

    def start(self, install_dir: Path) -> dict[str, Any]:
        from sdsetup.install_record import load_record
        from sdsetup.launchers import for_record
        from sdsetup.layout import InstallLayout

        install_dir = Path(install_dir).expanduser().absolute()
        with self._lock:
            if self.process is not None and self.process.poll() is None:
                raise SdsetupError(t("the web UI is already running (pid {pid})", pid=self.process.pid),
                                   t("stop it first, or open its address"), ExitCode.BUSY)
            record = load_record(install_dir)
            if record is None or not getattr(record, "finished", False):
                raise usage_error(t("{install_dir} holds no finished install", install_dir=install_dir),
                                  t("install the web UI there first (the Install page)"))
            argv = start_command(install_dir, for_record(record).start_hint)
            logs = InstallLayout(install_dir).logs
            logs.mkdir(parents=True, exist_ok=True)
            self.log_path = logs / CONSOLE_LOG
            with open(self.log_path, "wb") as log:
                options: dict[str, Any] = {}
                if os.name == "nt":
                    options["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
                else:
                    options["start_new_session"] = True
                env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
                env["PYTHONUNBUFFERED"] = "1"
                self.process = subprocess.Popen(argv, cwd=install_dir, stdin=subprocess.DEVNULL, stdout=log,
                                                stderr=subprocess.STDOUT, env=env, **options)
            self.install_dir, self.started_at = install_dir, time.time()
        return self.status()

    def stop(self, wait: float = 10.0) -> dict[str, Any]:
        with self._lock:
            process = self.process
            if process is not None and process.poll() is None:
                try:
                    if os.name == "nt":
                        process.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
                    else:
                        os.killpg(process.pid, signal.SIGTERM)
                    process.wait(wait)
                except (subprocess.TimeoutExpired, OSError):
                    if os.name == "nt":
                        process.kill()
                    else:
                        try:
                            os.killpg(process.pid, signal.SIGKILL)
                        except OSError:
                            pass
                    process.wait(wait)
        return self.status()

    def status(self) -> dict[str, Any]:
        process = self.process
        text = self.console_tail()
        code = None if process is None else process.poll()
        return {
            "running": process is not None and code is None,
            "pid": process.pid if process is not None else None,
            "exit_code": code,
            "install_dir": str(self.install_dir) if self.install_dir else None,
            "log": str(self.log_path) if self.log_path else None,
            "url": local_url(text) if process is not None and code is None else None,
            "console": text,
        }

    def console_tail(self) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return ""
        with open(self.log_path, "rb") as handle:
            handle.seek(max(0, self.log_path.stat().st_size - TAIL_BYTES))
            return handle.read().decode("utf-8", "replace")


def console_logs(install_dir: Path) -> list[Path]:
    """The logs the page can hand the doctor: the web UI's console first, then sdsetup's run logs."""
    from sdsetup.layout import InstallLayout

    folder = InstallLayout(Path(install_dir).expanduser()).logs
    if not folder.is_dir():
        return []
    files = [p for p in folder.glob("*.log") if p.is_file()]
    return sorted(files, key=lambda p: (p.name != CONSOLE_LOG, -p.stat().st_mtime))
