"""`DEST.part`: the file being assembled, written at offsets by several connections at once.

os.pwrite/os.pread where the OS has them (one shared descriptor, no seek races); elsewhere
(Windows) a lock around seek+write. A full disk becomes `DiskFull`, which the engine turns into a
DISK error that keeps the .part file for a later resume.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
from pathlib import Path

_HAS_PWRITE = hasattr(os, "pwrite") and hasattr(os, "pread")
_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


class DiskFull(Exception):
    """The disk (or quota) is full while writing `path`."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(detail)
        self.path = path
        self.detail = detail


def is_disk_full(exc: OSError) -> bool:
    return exc.errno in _NO_SPACE or getattr(exc, "winerror", None) in (39, 112)  # Windows: disk full


class PartFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0)
        self.fd = os.open(path, flags, 0o644)
        self._lock = threading.Lock()  # only used without pwrite

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def prepare(self, size: int | None, *, fresh: bool) -> None:
        """Give the file its final size. Fresh files are preallocated where the OS can (Linux), so a
        full disk shows up now rather than at 90 %."""
        try:
            if fresh:
                os.ftruncate(self.fd, 0)
            if size is None:
                return
            if self.size() != size:
                os.ftruncate(self.fd, size)
            if fresh and size > 0 and sys.platform.startswith("linux") and hasattr(os, "posix_fallocate"):
                try:
                    os.posix_fallocate(self.fd, 0, size)
                except OSError as exc:
                    if is_disk_full(exc):
                        raise
                    # EOPNOTSUPP/EINVAL on some filesystems: a sparse file does as well.
        except OSError as exc:
            if is_disk_full(exc):
                raise DiskFull(self.path, str(exc)) from None
            raise

    def write_at(self, offset: int, data) -> None:
        try:
            if _HAS_PWRITE:
                view = memoryview(data)
                while view:
                    written = os.pwrite(self.fd, view, offset)
                    view = view[written:]
                    offset += written
            else:
                with self._lock:
                    os.lseek(self.fd, offset, os.SEEK_SET)
                    view = memoryview(data)
                    while view:
                        view = view[os.write(self.fd, view):]
        except OSError as exc:
            if is_disk_full(exc):
                raise DiskFull(self.path, str(exc)) from None
            raise

    def write_pieces(self, offset: int, pieces: list[bytes], limit: int) -> None:
        """Write the first `limit` bytes of `pieces` back to back from `offset` (one pwritev)."""
        buffers, left = [], limit
        for piece in pieces:
            if left <= 0:
                break
            buffers.append(piece if len(piece) <= left else memoryview(piece)[:left])
            left -= len(buffers[-1])
        if len(buffers) == 1 or not hasattr(os, "pwritev"):
            self.write_at(offset, buffers[0] if len(buffers) == 1 else b"".join(buffers))
            return
        try:
            written = os.pwritev(self.fd, buffers, offset)
        except OSError as exc:
            if is_disk_full(exc):
                raise DiskFull(self.path, str(exc)) from None
            raise
        if written < limit:  # a short write: the rest the simple way
            self.write_at(offset + written, b"".join(bytes(b) for b in buffers)[written:])

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def read_at(fd: int, offset: int, count: int) -> bytes:
    """Positional read on a descriptor owned by one thread (the hasher's own)."""
    if _HAS_PWRITE:
        return os.pread(fd, count, offset)
    os.lseek(fd, offset, os.SEEK_SET)
    return os.read(fd, count)
