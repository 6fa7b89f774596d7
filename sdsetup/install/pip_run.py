"""Running pip (and small snippets) in the web UI's venv: argv lists, the mirror's environment, and
failures turned into one message with the tail of pip's output (redacted)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.logs import get_logger
from sdsetup.redact import redact_text, redact_url, secrets_in_url
from sdsetup.i18n import t

log = get_logger("pip")

# pip's own update nag and colour codes only clutter the logs. PIP_RESUME_RETRIES: pip 25.1 resumes an
# interrupted download only when asked (on by default from 25.2); the environment also reaches the pip
# that an isolated build starts, and a pip older than 25.1 ignores it.
BASE_ENV = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_COLOR": "1", "PIP_NO_INPUT": "1", "PYTHONUTF8": "1",
            "PIP_RESUME_RETRIES": "5"}


def tool_env(mirrors: Any, extra: Mapping[str, str] | None = None, *, torch_tag: str | None = None) -> dict[str, str]:
    """pip's environment; with `torch_tag`, a login on the torch mirror too (it stays off argv)."""
    env = dict(os.environ)
    env.update(BASE_ENV)
    env.update(mirrors.pip_env(torch_tag=torch_tag) if torch_tag else mirrors.pip_env())
    if extra:
        env.update(extra)
    return env


def _show(argv: Sequence[str]) -> str:
    return " ".join(redact_url(a) if "://" in a else a for a in argv)


HEARTBEAT_EVERY: float | None = None  # None: the heartbeat's default (15 s of silence)


def _index_host(argv: Sequence[str]) -> str | None:
    """Where pip fetches from, for the heartbeat: the host of --index-url (or the first index given)."""
    from urllib.parse import urlsplit

    for option, value in zip(argv, list(argv)[1:]):
        if option in ("--index-url", "-i", "--extra-index-url", "--find-links") and "://" in str(value):
            return urlsplit(str(value)).hostname
    return None


def run_checked(argv: Sequence[str], *, env: Mapping[str, str], what: str, hint: str, secrets: Sequence[str] = (),
                cwd: Path | None = None, timeout: float | None = None,
                classify: Callable[[str], SdsetupError | None] | None = None) -> subprocess.CompletedProcess:
    """Run argv; a failure raises SdsetupError (exit 5, the tail of its output), or the error `classify`
    makes of the whole output (e.g. a network failure, exit 3)."""
    from sdsetup import children
    from sdsetup.net.heartbeat import Heartbeat

    log.info("run: %s", _show(argv))
    host = _index_host(argv)
    try:
        # The child runner: its own process group, dies with sdsetup, recorded for a rerun's check.
        with Heartbeat(what, status=lambda: (None, host), every=HEARTBEAT_EVERY):
            result = children.run(list(argv), env=dict(env), cwd=cwd, timeout=timeout)
    except FileNotFoundError:
        raise SdsetupError(t("{what}: {program} not found", what=what, program=argv[0]), hint, ExitCode.STEP) from None
    except subprocess.TimeoutExpired:
        raise SdsetupError(t("{what}: no answer within {timeout:.0f}s", what=what, timeout=timeout), hint, ExitCode.STEP) from None
    if result.stdout.strip():
        log.debug("stdout: %s", redact_text(result.stdout[-8000:], list(secrets)))
    if result.stderr.strip():
        log.debug("stderr: %s", redact_text(result.stderr[-8000:], list(secrets)))
    if result.returncode != 0:
        special = classify(redact_text(f"{result.stdout}\n{result.stderr}", list(secrets))) if classify else None
        if special is not None:
            special.details.setdefault("command", _show(argv))
            raise special
        raise SdsetupError(
            t("{what} failed (exit {returncode}): {tail}", what=what, returncode=result.returncode,
              tail=tail(result.stderr or result.stdout, secrets)),
            hint,
            ExitCode.STEP,
            details={"command": _show(argv)},
        )
    return result


def tail(text: str, secrets: Sequence[str] = (), lines: int = 6) -> str:
    kept = [line.rstrip() for line in (text or "").strip().splitlines() if line.strip()]
    # pip's error is in the lines starting with ERROR (or the last ones).
    errors = [line for line in kept if line.lstrip().startswith(("ERROR", "error:"))]
    chosen = (errors or kept)[-lines:]
    return redact_text(" | ".join(line.strip() for line in chosen), list(secrets)) or "(no output)"


PROBE = (
    "import sys, json\n"
    "from importlib import metadata\n"
    "def v(name):\n"
    "    try:\n"
    "        return metadata.version(name)\n"
    "    except Exception:\n"
    "        return None\n"
    "names = sys.argv[1:]\n"
    "print(json.dumps({'python': '%d.%d.%d' % tuple(sys.version_info[:3]), 'executable': sys.executable,"
    " 'packages': {n: v(n) for n in names}}))\n"
)


def probe_venv(python: Path, packages: Sequence[str] = ("pip",)) -> dict[str, Any] | None:
    """{'python': '3.11.7', 'packages': {name: version|None}} from the venv, or None if it does not run."""
    if not Path(python).exists():
        return None
    try:
        from sdsetup import children

        result = children.run([str(python), "-c", PROBE, *packages], timeout=60, env={**os.environ, "PYTHONUTF8": "1"})
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def proxy_secrets(settings: Any) -> list[str]:
    return secrets_in_url(getattr(settings, "proxy", None))
