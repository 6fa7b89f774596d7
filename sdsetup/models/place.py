"""Putting one verified model file into every installed web UI: one download, hard links for the rest.

The installs are DIR and every sdsetup install beside it (the same neighbourhood `model_store` shares
checkpoints in). Decisions first (`plan_placement`, pure), then effects (`place`): nothing is
downloaded when a UI already has the file; a different file under the same name is the user's and is
never replaced; where a hard link is refused (another disk, FAT), a verified copy is made and said.
Each install keeps what was added in DIR/.sdsetup/models-added.json (read by `models list`)."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from sdsetup.errors import ExitCode, SdsetupError, usage_error
from sdsetup.i18n import t
from sdsetup.layout import STATE_DIR, InstallLayout
from sdsetup.models.folders import folder_for

ADDED_FILE = "models-added.json"


@dataclass(frozen=True)
class Install:
    root: Path
    launcher: str  # a1111 | forge | comfyui


@dataclass(frozen=True)
class Target:
    install: Install
    rel: str  # the file's path inside the install
    state: str  # missing | same (the file is there, verified) | other (a different file is there)

    @property
    def path(self) -> Path:
        return self.install.root / self.rel


def added_path(root: Path) -> Path:
    return InstallLayout(root).state_dir / ADDED_FILE


def load_added(root: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(added_path(root).read_text("utf-8"))
    except (OSError, ValueError):
        return []
    entries = data.get("models") if isinstance(data, dict) else None
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def save_added(root: Path, entry: dict[str, Any]) -> None:
    from sdsetup.fsutil import atomic_write_json

    entries = [e for e in load_added(root) if e.get("path") != entry["path"]] + [entry]
    atomic_write_json(added_path(root), {"models": entries})


def find_installs(primary: Path) -> list[Install]:
    """DIR first, then every sdsetup install beside it (by folder name)."""
    from sdsetup.install_record import load_record

    record = load_record(primary)
    if record is None:
        raise usage_error(t("{dir} holds no sdsetup install", dir=primary),
                          t("give the install folder with --dir DIR, or install one with `sdsetup install`"))
    out = [Install(primary, record.launcher)]
    here = primary.resolve()
    for record_file in sorted(here.parent.glob(f"*/{STATE_DIR}/install.json")):
        sibling = record_file.parent.parent
        if sibling.resolve() == here:
            continue
        try:
            other = load_record(sibling)
        except SdsetupError:
            continue  # a damaged neighbour is its own problem, not this command's
        if other is not None:
            out.append(Install(sibling, other.launcher))
    return out


def check_file_name(name: str) -> str:
    if not name or name in (".", "..") or any(c in name for c in "/\\\0:") or name.startswith("."):
        raise usage_error(t("'{name}' is not a plain file name", name=name), t("give a file name without folders with --name FILE"))
    return name


def plan_placement(installs: Iterable[Install], model_type: str, name: str, state_of: Callable[[Path], str]) -> list[Target]:
    """Pure apart from `state_of(path)` → missing | same | other."""
    targets = []
    for install in installs:
        rel = f"{folder_for(install.launcher, model_type)}/{name}"
        targets.append(Target(install, rel, state_of(install.root / rel)))
    return targets


def copy_verified(source: Path, dest: Path, sha256: str) -> None:
    """Where a hard link is refused: copy to a temporary name, check the hash, then move into place."""
    from sdsetup.hashing import sha256_file

    temp = dest.with_name(dest.name + ".sdsetup-copy")
    shutil.copyfile(source, temp)
    if sha256_file(temp) != sha256:
        temp.unlink(missing_ok=True)
        raise SdsetupError(t("the copy of {source} at {dest} does not match its sha256", source=source, dest=dest),
                           t("check the disk, then run again"), ExitCode.INTEGRITY)
    os.replace(temp, dest)


def entry_for(target: Target, model_file: Any, model_type: str, sha256: str, size: int, how: str) -> dict[str, Any]:
    source = model_file.source
    return {
        "path": target.rel,
        "type": model_type,
        "sha256": sha256,
        "size": size,
        "source": source.text,
        "url": model_file.url,
        "revision": model_file.revision,
        "how": how,  # downloaded | linked | copied | present
        "added": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
