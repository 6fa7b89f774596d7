"""`file://` sources (local offline bundles): copy into `DEST.part` while hashing, verify, then the
engine moves the file into place like any download."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sdsetup.net.partfile import DiskFull, is_disk_full
from sdsetup.net.sources import SourceError

CHUNK = 4 * 1024 * 1024


def is_file_url(url: str) -> bool:
    return url.lower().startswith("file:")


def file_url_path(url: str) -> Path:
    """The local path of a file:// URL (file:///abs/path, file://localhost/abs, file:///C:/x on Windows)."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise SourceError("fail", f"{url}: only local file:// URLs are supported (no host)")
    from urllib.request import url2pathname

    return Path(url2pathname(unquote(parts.path)) if os.name == "nt" else unquote(parts.path))


def copy_verified(url: str, part: Path, *, size: int | None, progress=None) -> tuple[str, int]:
    """Copy the file behind `url` to `part`; returns (sha256, size). Raises SourceError when the
    source is missing, unreadable or has another size (kind "folder": it names a folder, a user's
    mistake), DiskFull when the disk fills up."""
    source = file_url_path(url)
    if source.is_dir():  # open() fails on a folder differently per OS (EISDIR, EACCES on Windows)
        raise SourceError("folder", f"{source} is a folder, not a file")
    try:
        handle = open(source, "rb")
    except OSError as exc:
        raise SourceError("gone", f"{source}: {exc.strerror or exc}") from None
    digest = hashlib.sha256()
    copied = 0
    with handle:
        actual_size = os.fstat(handle.fileno()).st_size
        if size is not None and actual_size != size:
            raise SourceError("changed", f"{source} is {actual_size} bytes, expected {size}")
        try:
            with open(part, "wb") as out:
                while True:
                    chunk = handle.read(CHUNK)
                    if not chunk:
                        break
                    digest.update(chunk)
                    out.write(chunk)
                    copied += len(chunk)
                    if progress is not None:
                        progress(copied)
        except OSError as exc:
            if is_disk_full(exc):
                raise DiskFull(part, str(exc)) from None
            raise
    return digest.hexdigest(), copied
