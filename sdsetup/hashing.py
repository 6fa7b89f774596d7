"""sha256 of files, with a cache keyed by the path and its inode's stat so re-verifying a 4 GB model is instant.

The key is not just (size, mtime): anyone who can write a file can put its mtime back after changing the
bytes, but not its ctime, and a new owner, mode or inode is a different file as far as trust goes."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

CHUNK = 4 * 1024 * 1024


def sha256_file(path: Path, progress=None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as handle:
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return digest.hexdigest()


def fingerprint(stat: os.stat_result) -> list[int]:
    """What must be unchanged for a cached hash to stand: size, mtime, ctime, inode, owner and mode."""
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev, stat.st_uid, stat.st_mode]


def trusted_digest(entry: object, stat: os.stat_result) -> str | None:
    """The cached sha256 when the entry's fingerprint still matches the file, else None."""
    if isinstance(entry, list) and len(entry) >= 2 and entry[:-1] == fingerprint(stat):
        return entry[-1]
    return None


class HashCache:
    """A JSON file of {abs path: [*fingerprint, sha256]}; a stale entry (or one in an older shape) is
    simply recomputed."""

    def __init__(self, cache_file: Path) -> None:
        self.cache_file = cache_file
        try:
            self.entries: dict[str, list] = json.loads(cache_file.read_text("utf-8"))
        except (OSError, ValueError):
            self.entries = {}

    def sha256(self, path: Path, *, rehash: bool = False) -> tuple[str, bool]:
        """(hex digest, whether it came from the cache)."""
        stat = os.stat(path)
        key = str(Path(path).resolve())
        cached = None if rehash else trusted_digest(self.entries.get(key), stat)
        if cached is not None:
            return cached, True
        digest = sha256_file(path)
        # The stat from before reading: a write during the read makes the next check rehash.
        self.entries[key] = [*fingerprint(stat), digest]
        self._save()
        return digest, False

    def remember(self, path: Path, digest: str) -> None:
        """Record a hash computed elsewhere (the download engine already verified the file)."""
        stat = os.stat(path)
        self.entries[str(Path(path).resolve())] = [*fingerprint(stat), digest]
        self._save()

    def _save(self) -> None:
        from sdsetup.fsutil import atomic_write_json

        try:
            atomic_write_json(self.cache_file, self.entries)
        except OSError:
            pass  # a cache that cannot be written only costs time
