"""One log file per run, with credentials redacted before anything is written.

The file lives in Settings.log_dir (`sdsetup-<command>-<time>.log`); `sdsetup doctor` reads these.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from sdsetup.redact import redact_text, secrets_in_url
from sdsetup.settings import Settings

LOGGER_NAME = "sdsetup"


class _RedactingFilter(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact_text(message, self.secrets)
        record.args = ()
        return True


class _RunLogHandler(logging.FileHandler):
    """The run log's file: when a write fails (the log folder's disk is full, the file was removed) it
    stops quietly instead of printing logging's "--- Logging error ---" traceback on every line; the
    command itself goes on and says what matters on the console."""

    _sdsetup_run_log = True

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        logging.getLogger(LOGGER_NAME).removeHandler(self)
        try:
            self.close()
        except Exception:  # closing flushes, and that write fails the same way
            pass


def get_logger(name: str = "") -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


def start_run_log(settings: Settings, command: str) -> Path | None:
    """Attach a file handler for this run; returns its path, or None when the log dir is unwritable."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.DEBUG)
    for handler in list(logger.handlers):
        if getattr(handler, "_sdsetup_run_log", False):
            logger.removeHandler(handler)
            handler.close()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = settings.log_dir / f"sdsetup-{command}-{stamp}-{os.getpid()}.log"
    try:
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        handler = _RunLogHandler(path, encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    secrets = secrets_in_url(settings.proxy)
    for env_name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        secrets += secrets_in_url(os.environ.get(env_name))
    handler.addFilter(_RedactingFilter(secrets))
    logger.addHandler(handler)
    logger.propagate = False
    return path


def recent_run_logs(settings: Settings, limit: int = 5) -> list[Path]:
    if not settings.log_dir.is_dir():
        return []
    logs = sorted(settings.log_dir.glob("sdsetup-*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    return logs[:limit]
