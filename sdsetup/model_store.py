"""One model store for several web UIs: a second UI installed beside another sdsetup install takes a
checkpoint with the same sha256 from it instead of downloading it again.

Where the file system allows, the file is hard-linked into the new install (the bytes are on disk
once). Where it does not (another file system: the first install's models folder is a link to another
disk, or a FAT/exFAT drive), the new install points at the other file with the UI's own model-path
setting (A1111/Forge `--ckpt-dir`, ComfyUI `extra_model_paths.yaml`), and DIR/.sdsetup/shared-models.json
names it, so the launcher writes that setting and `verify` checks the file where it is.
A low module (like install_record.py): install, the launchers and verify use it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

from sdsetup.layout import InstallLayout

SHARED_NAME = "shared-models.json"


def shared_path(install_dir: Path) -> Path:
    return InstallLayout(install_dir).state_dir / SHARED_NAME


def load_shared(install_dir: Path) -> dict[str, str]:
    """{model path in this install: absolute path of the file it uses instead} (empty when none)."""
    try:
        data = json.loads(shared_path(install_dir).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    models = data.get("models") if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in models.items()} if isinstance(models, dict) else {}


def save_shared(install_dir: Path, shared: dict[str, str]) -> None:
    from sdsetup.fsutil import atomic_write_json

    path = shared_path(install_dir)
    if not shared:
        path.unlink(missing_ok=True)
        return
    atomic_write_json(path, {"models": dict(sorted(shared.items()))})


def sibling_copy(install_dir: Path, sha256: str | None, matches: Callable[[Path], bool]) -> Path | None:
    """A file with this sha256 in another sdsetup install beside this one (per its record), for which
    `matches(path)` holds (size and hash checked by the caller's hash cache)."""
    if not sha256:
        return None
    here = Path(install_dir).resolve()
    for record_file in sorted(here.parent.glob("*/.sdsetup/install.json")):
        sibling = record_file.parent.parent
        if sibling == here:
            continue
        try:
            entries = json.loads(record_file.read_text("utf-8")).get("models") or []
        except (OSError, ValueError, AttributeError):
            continue
        shared = load_shared(sibling)
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("sha256") != sha256:
                continue
            rel = str(entry.get("path")).replace("\\", "/")
            parts = Path(rel).parts
            if rel in shared:
                candidate = Path(shared[rel])
            elif rel.startswith("/") or ":" in rel or not parts or ".." in parts:
                continue  # a record naming a path outside its install is not followed
            else:
                # Lexically inside the sibling; its models folder may link to another disk (that is
                # the point of sharing), and only a file with the expected sha256 is ever used.
                candidate = sibling / rel
            if matches(candidate):
                return candidate
    return None


def private_to_us(path: Path) -> bool:
    """The file is ours and no one else can write it: only then may this install share its bytes (a hard
    link, or using it where it is). Another user could otherwise rewrite a checkpoint both installs load."""
    try:
        stat = os.stat(path)
    except OSError:
        return False
    if not hasattr(os, "geteuid"):  # Windows: no POSIX owner and mode bits to go by; ACLs decide there
        return True
    return stat.st_uid == os.geteuid() and not stat.st_mode & 0o022


def copy_into(source: Path, dest: Path, sha256: str) -> bool:
    """Copy source to dest, hashing the bytes copied; keep the copy only when they hash to sha256 (the
    source may change between the check and the copy: what we keep is what we hashed)."""
    import hashlib

    from sdsetup.hashing import CHUNK

    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = dest.with_name(dest.name + ".sdsetup-copy")
    digest = hashlib.sha256()
    try:
        with open(source, "rb") as reader, open(temp, "wb") as writer:
            while chunk := reader.read(CHUNK):
                digest.update(chunk)
                writer.write(chunk)
            writer.flush()
            os.fsync(writer.fileno())
        if digest.hexdigest() != sha256:
            temp.unlink(missing_ok=True)
            return False
        os.replace(temp, dest)
    except OSError:
        temp.unlink(missing_ok=True)
        return False
    return True


def take_from_sibling(source: Path, dest: Path, sha256: str) -> str | None:
    """Give dest the sibling's verified file: "linked" (hard link, ours and private), "shared" (ours and
    private, but another file system: use it where it is), "copied" (someone else owns it or can write
    it: our own copy, hashed as copied), or None (the copy did not hash to sha256: download instead)."""
    if private_to_us(source):
        return "linked" if link_into(source, dest) else "shared"
    return "copied" if copy_into(source, dest, sha256) else None


def link_into(source: Path, dest: Path) -> bool:
    """Hard-link source at dest (atomically, via a temporary name); False where the file system refuses."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = dest.with_name(dest.name + ".sdsetup-link")
    temp.unlink(missing_ok=True)
    try:
        os.link(source, temp)
    except OSError:  # another file system, or one without hard links (FAT, exFAT, some network shares)
        return False
    os.replace(temp, dest)
    return True


def shared_dirs(install_dir: Path, *, under: str = "") -> list[str]:
    """The folders holding this install's shared files whose own path starts with `under` (in order, once)."""
    out: list[str] = []
    for rel, source in sorted(load_shared(install_dir).items()):
        if rel.startswith(under):
            folder = str(Path(source).parent)
            if folder not in out:
                out.append(folder)
    return out


def describe(install_dir: Path) -> dict[str, Any]:
    return {"shared": load_shared(install_dir)}
