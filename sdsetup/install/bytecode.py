"""Bytecode for the venv's packages, written in the background while the install goes on.

uv installs wheels without compiling them (pip compiles as it installs). The first `import torch` in a
fresh venv then compiles every module it touches, one at a time, inside the smoke step: that is why the
smoke step took 15-30 s inside `install` and `verify --smoke` 4 s afterwards (the second run finds the
.pyc files; measured here with torch 2.13 CPU: 18.2 s for the first import, 8.0 s for the next). After
each install into the venv, `start` imports what the smoke test imports in a child of the venv's Python,
in a thread, while the network-bound steps that follow (git clones, the checkpoint) run; the smoke step
`wait`s for it, by then done. A .pyc records its source's size and mtime: a file replaced while it
was compiled is simply compiled again at import. Failures are ignored (import compiles what is missing).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

log = logging.getLogger("sdsetup.install")

# What the smoke test imports: importing them once in the background writes exactly the .pyc files the
# smoke test's imports need (compileall of all of torch's 2,285 modules took 51 s on 2 cores; the import
# compiles the 725 it uses) and leaves libtorch in the page cache.
_IMPORTS = ("torch", "numpy", "safetensors", "PIL", "huggingface_hub", "transformers", "diffusers")
_SCRIPT = ("import importlib, sys\n"
           "sys.dont_write_bytecode = False\n"
           f"for name in {_IMPORTS!r}:\n"
           "    try:\n"
           "        importlib.import_module(name)\n"
           "    except Exception:\n"
           "        pass\n")
_lock = threading.Lock()
_jobs: dict[str, "_Job"] = {}


class _Job:
    def __init__(self, python: Path) -> None:
        self.python = python
        self.again = False  # another install landed while compiling: one more pass
        self.thread = threading.Thread(target=self._run, name="sdsetup-bytecode", daemon=True)

    def _run(self) -> None:
        from sdsetup import children

        while True:
            try:
                import os

                env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
                result = children.run([str(self.python), "-c", _SCRIPT], env=env, timeout=600)
                log.info("bytecode for %s: written (exit %s)", self.python, result.returncode)
            except Exception as exc:  # noqa: BLE001 - an optimisation: import compiles what is missing
                log.info("bytecode for %s: not compiled ahead (%s)", self.python, exc)
            with _lock:
                if not self.again:
                    _jobs.pop(str(self.python), None)
                    return
                self.again = False


def start(python: Path) -> None:
    """Compile the venv's packages in the background (once more if a compile is already running)."""
    key = str(python)
    with _lock:
        job = _jobs.get(key)
        if job is not None:
            job.again = True
            return
        job = _jobs[key] = _Job(Path(python))
    job.thread.start()


def wait(python: Path, timeout: float | None = None) -> bool:
    """Wait for the venv's background compile; True when none is running any more."""
    with _lock:
        job = _jobs.get(str(python))
    if job is None:
        return True
    job.thread.join(timeout)
    return not job.thread.is_alive()
