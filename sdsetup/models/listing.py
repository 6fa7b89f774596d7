"""`models list`: what model files an install has, by type, with size and hash state (no hashing here:
the state comes from the hash cache, so listing 50 GB of checkpoints is instant)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sdsetup.hashing import trusted_digest
from sdsetup.models.folders import FOLDERS, MODEL_SUFFIXES, TYPES

# hash states: verified (the cached hash of this exact file equals the recorded one), differs (it does
# not), unchecked (recorded, not hashed since it last changed: `sdsetup verify` hashes), unrecorded
# (no hash known: a file sdsetup did not bring)


def hash_state(expected: str | None, cached: list | None, stat: os.stat_result) -> str:
    """Pure: the state of one file from its recorded sha256 and its hash-cache entry [*fingerprint, sha256]
    (the same fingerprint the cache trusts: size, mtime, ctime, inode, owner, mode)."""
    if not expected:
        return "unrecorded"
    digest = trusted_digest(cached, stat)
    if digest is None:
        return "unchecked"
    return "verified" if digest == expected else "differs"


def list_models(root: Path, launcher: str, expected: dict[str, str], cache: dict[str, list]) -> list[dict[str, Any]]:
    """Every model file under the type folders of this UI: {type, path, size, sha256, state, links}."""
    items = []
    folders = FOLDERS.get(launcher, FOLDERS["a1111"])
    for model_type in TYPES:
        folder = root / folders[model_type]
        if not folder.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            for name in sorted(filenames):
                if not name.lower().endswith(MODEL_SUFFIXES):
                    continue
                path = Path(dirpath) / name
                try:
                    stat = path.stat()
                except OSError:
                    continue
                rel = path.relative_to(root).as_posix()
                sha = expected.get(rel)
                state = hash_state(sha, cache.get(str(path.resolve())), stat)
                items.append({"type": model_type, "path": rel, "size": stat.st_size, "sha256": sha, "state": state,
                              "links": stat.st_nlink})
    return items
