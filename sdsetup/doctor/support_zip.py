"""The support zip (`sdsetup doctor --bundle PATH.zip`), not the offline mirror of `sdsetup bundle`: one zip
a user can send to the helpdesk, with every secret taken out.

Contents (all text, all passed through the counting redactor):
  README.txt               what is inside and what was removed (counts per kind, never values)
  report.html              the same for a person: one self-contained page (no script, no external file)
  doctor.json              findings, harmless notes, sources read, environment, fixes
  check.json, verify.json  the install checks (when DIR was given and they ran)
  logs/NN-NAME.log         each log read, decoded to UTF-8 and cleaned; long logs as head + tail
  install/pip-freeze.txt   `pip freeze --all` of the web UI's venv
  install/repositories.json  HEAD, pinned commit, origin URL and `git status --porcelain` per repository
  install/webui-user.*, install/install.json   the launch settings and the install record
  redactions.json          the counts per kind
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import zipfile
from collections import deque
from pathlib import Path
from typing import Any, Iterator

from sdsetup import children
from sdsetup.doctor.secrets import KIND_LABELS, Redactor
from sdsetup.fsutil import atomic_writer
from sdsetup.layout import RECORD_REL

HEAD_BYTES = 256 * 1024
TAIL_BYTES = 2 * 1024 * 1024


class Excerpt:
    """The head and the tail of a log's clean lines, bounded in bytes (stdin cannot be read twice)."""

    def __init__(self, head_bytes: int = HEAD_BYTES, tail_bytes: int = TAIL_BYTES) -> None:
        self.head: list[str] = []
        self.tail: deque[tuple[int, str]] = deque()
        self.head_bytes = head_bytes
        self.tail_bytes = tail_bytes
        self.head_size = 0
        self.tail_size = 0
        self.dropped = 0
        self.lines = 0

    def add(self, line_no: int, text: str) -> None:
        self.lines = line_no
        size = len(text) + 1
        if self.head_size + size <= self.head_bytes and not self.tail:
            self.head.append(text)
            self.head_size += size
            return
        self.tail.append((line_no, text))
        self.tail_size += size
        while self.tail_size > self.tail_bytes and self.tail:
            _, dropped = self.tail.popleft()
            self.tail_size -= len(dropped) + 1
            self.dropped += 1

    def text_lines(self) -> Iterator[str]:
        yield from self.head
        if self.dropped:
            yield f"[... sdsetup doctor: {self.dropped} lines left out here to keep the bundle small ...]"
        for _, text in self.tail:
            yield text


def pip_freeze(python: Path | None) -> str:
    if python is None or not python.exists():
        return "(no venv python found: the web UI's venv does not exist yet)\n"
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONIOENCODING="utf-8")
    try:
        result = children.run([str(python), "-m", "pip", "freeze", "--all"], timeout=180, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"(pip freeze failed: {exc})\n"
    if result.returncode != 0:
        return f"(pip freeze exited with {result.returncode})\n{result.stderr}"
    return result.stdout


def _safe_name(name: str) -> str:
    base = os.path.basename(name.replace("\\", "/")) or "log"
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in base)[:80]


def write_support_zip(
    path: Path,
    *,
    redactor: Redactor,
    doctor_data: dict[str, Any],
    check: dict[str, Any] | None,
    verify: dict[str, Any] | None,
    logs: list[tuple[str, Excerpt]],
    install_dir: Path | None,
    venv_python: Path | None,
    repositories: list[dict[str, Any]] | None,
    report_html: str | None = None,
) -> dict[str, Any]:
    """Write the zip atomically; returns what is in it and what was removed."""
    entries: list[tuple[str, str]] = []

    def add_json(name: str, data: Any) -> None:
        entries.append((name, redactor(json.dumps(data, indent=2, default=str, ensure_ascii=False)) + "\n"))

    if report_html is not None:
        entries.append(("report.html", redactor(report_html)))
    add_json("doctor.json", doctor_data)
    if check is not None:
        add_json("check.json", check)
    if verify is not None:
        add_json("verify.json", verify)
    for index, (source, excerpt) in enumerate(logs, start=1):
        body = "\n".join(redactor(line) for line in excerpt.text_lines()) + "\n"
        entries.append((f"logs/{index:02d}-{_safe_name(source)}" + ("" if source.endswith((".log", ".txt")) else ".log"), body))
    if install_dir is not None:
        entries.append(("install/pip-freeze.txt", redactor(pip_freeze(venv_python))))
        if repositories is not None:
            add_json("install/repositories.json", repositories)
        for name in ("webui-user.bat", "webui-user.sh", RECORD_REL):
            file = install_dir / name
            if file.is_file():
                try:
                    data = file.read_bytes()[:1024 * 1024]
                except OSError:
                    continue
                text = data.decode("utf-8", "replace")
                entries.append((f"install/{Path(name).name}", redactor(text)))
    removed = redactor.summary()
    add_json("redactions.json", {"removed": removed, "labels": {k: KIND_LABELS[k] for k in removed}})
    readme = [
        "sdsetup doctor support bundle",
        f"created {time.strftime('%Y-%m-%d %H:%M:%S %z')}",
        "",
        "Passwords, tokens and your home folder path were replaced by *** (or ~) before anything was written.",
        redactor.describe() + ".",
        "",
        "Contents:",
        *[f"  {name}" for name, _ in entries],
        "",
    ]
    entries.insert(0, ("README.txt", "\n".join(readme)))

    with atomic_writer(path) as handle, zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in entries:
            archive.writestr(name, text.encode("utf-8"))
    return {"path": str(path), "files": [name for name, _ in entries], "removed": removed, "removed_text": redactor.describe()}
