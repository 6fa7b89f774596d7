"""Where an install keeps what: the one place that names DIR's folders and sdsetup's state files.

`InstallLayout(root)` is used by install, verify, doctor and bundle; it imports nothing of sdsetup, so
any module may use it. Relative names (`*_REL`) are what the install record and .git/info/exclude hold.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

STATE_DIR = ".sdsetup"  # sdsetup's own state inside DIR (excluded from the web UI's git status)
RECORD_FILE = "install.json"  # the install record (sdsetup/install_record.py)
JOURNAL_FILE = "journal.json"  # per-step progress of install (install/journal.py)
LOCK_FILE = "lock"  # the exclusive lock on DIR
OWNER_FILE = "lock.owner.json"  # who holds the lock (pid, host, command)
CHILDREN_DIR = "children"  # one file per running child process (sdsetup/children.py)
HASH_CACHE_FILE = "hash-cache.json"  # sha256 of files install downloaded, keyed by size and mtime
CONSTRAINTS_FILE = "constraints.txt"  # pip constraints that keep the chosen torch build
PREVIOUS_CHECKOUT_FILE = "previous-checkout.json"  # what DIR's git repository was before install moved it
BACKUPS_DIR = "backups"  # copies of files sdsetup (or doctor --fix) changed
LOGS_DIR = "logs"  # run logs kept with the install (doctor reads them)
WHEELHOUSE_DIR = "wheelhouse"  # every wheel and archive install downloaded, verified
SMOKE_CACHE_DIR = "smoke-cache"  # the smoke test's tiny model
VENV_MARKER_FILE = "venv-creating"  # present while the venv is being made (a kill leaves it: remake)

STATE_REL = STATE_DIR
RECORD_REL = f"{STATE_DIR}/{RECORD_FILE}"
HASH_CACHE_REL = f"{STATE_DIR}/{HASH_CACHE_FILE}"
WHEELHOUSE_REL = f"{STATE_DIR}/{WHEELHOUSE_DIR}"
BACKUPS_REL = f"{STATE_DIR}/{BACKUPS_DIR}"
LOGS_REL = f"{STATE_DIR}/{LOGS_DIR}"
HF_HOME_REL = ".cache/huggingface"  # the Hugging Face cache the web UI is pointed at (HF_HOME)
VENV_REL = "venv"  # the web UI's own venv (its launcher's default)


def venv_python_rel() -> str:
    return f"{VENV_REL}/Scripts/python.exe" if os.name == "nt" else f"{VENV_REL}/bin/python"


@dataclass(frozen=True)
class InstallLayout:
    """The paths of one install directory (pure: constructing it or reading a property touches nothing)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def record(self) -> Path:
        return self.state_dir / RECORD_FILE

    @property
    def journal(self) -> Path:
        return self.state_dir / JOURNAL_FILE

    @property
    def lock(self) -> Path:
        return self.state_dir / LOCK_FILE

    @property
    def lock_owner(self) -> Path:
        return self.state_dir / OWNER_FILE

    @property
    def children(self) -> Path:
        return self.state_dir / CHILDREN_DIR

    @property
    def hash_cache(self) -> Path:
        return self.state_dir / HASH_CACHE_FILE

    @property
    def constraints(self) -> Path:
        return self.state_dir / CONSTRAINTS_FILE

    @property
    def previous_checkout(self) -> Path:
        return self.state_dir / PREVIOUS_CHECKOUT_FILE

    @property
    def backups(self) -> Path:
        return self.state_dir / BACKUPS_DIR

    @property
    def logs(self) -> Path:
        return self.state_dir / LOGS_DIR

    @property
    def wheelhouse(self) -> Path:
        return self.state_dir / WHEELHOUSE_DIR

    @property
    def smoke_cache(self) -> Path:
        return self.state_dir / SMOKE_CACHE_DIR

    @property
    def venv_marker(self) -> Path:
        return self.state_dir / VENV_MARKER_FILE

    @property
    def hf_home(self) -> Path:
        return self.root / HF_HOME_REL

    @property
    def venv(self) -> Path:
        return self.root / VENV_REL

    @property
    def python(self) -> Path:
        return self.root / venv_python_rel()

    def backup_path(self, name: str, stamp: str) -> Path:
        """Where a copy of NAME taken at STAMP (YYYYmmdd-HHMMSS) goes."""
        return self.backups / f"{name}.{stamp}"
