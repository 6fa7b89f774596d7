"""How every probe touches the machine: a subprocess or a call with a timeout, never an exception.

A probe that cannot answer returns None; the caller decides what "unknown" means. Parsers live next
to each probe as separate pure functions, so tests feed them recorded outputs.
"""

from __future__ import annotations

import os
import subprocess
import threading
from typing import Any, Callable, Mapping, Sequence, TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT = 5.0


def run_text(
    argv: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
) -> str | None:
    """stdout of `argv` when it exits 0 within `timeout`; None when missing, failing or hanging."""
    result = run_result(argv, timeout=timeout, env=env)
    if result is None or result[0] != 0:
        return None
    return result[1]


def run_result(
    argv: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
) -> tuple[int, str, str] | None:
    """(exit code, stdout, stderr), or None when the program cannot be started or times out.

    Through sdsetup.children like every child: its own process group, stopped whole at the timeout (a
    grandchild holding the output pipe would otherwise keep the probe waiting), and gone with sdsetup."""
    from sdsetup import children

    try:
        proc = children.run(list(argv), timeout=timeout, env=dict(env) if env is not None else None, windowless=True)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return proc.returncode, proc.stdout or "", proc.stderr or ""


def call_with_timeout(func: Callable[[], T], timeout: float, default: T) -> T:
    """func() in a daemon thread; `default` when it raises or has not returned after `timeout`.

    For library probes (NVML) that can block inside a driver: a stuck daemon thread does not keep
    sdsetup from exiting, unlike a ThreadPoolExecutor worker.
    """
    box: list[Any] = []

    def target() -> None:
        try:
            box.append(func())
        except Exception:  # a probe never raises; unknown is an answer
            pass

    thread = threading.Thread(target=target, daemon=True, name="sdsetup-probe")
    thread.start()
    thread.join(timeout)
    return box[0] if box else default


def read_text(path: "os.PathLike[str] | str") -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None
