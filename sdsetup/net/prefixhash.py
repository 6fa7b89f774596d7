"""sha256 of `DEST.part` computed while it downloads: a thread follows the contiguous prefix of done
bytes and reads them back (from the page cache) as it grows. With blocks handed out in file order
the prefix grows all the time, so little is left to hash when the last byte arrives; on resume the
part already on disk is hashed first.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from sdsetup.net.partfile import read_at

CHUNK = 1024 * 1024  # read back in 1 MiB steps: hashing speed is the same, memory a quarter


class PrefixHasher:
    def __init__(self, path: Path, available: int = 0) -> None:
        self.path = path
        self._digest = hashlib.sha256()
        self._position = 0  # bytes hashed
        self._available = available  # bytes from 0 known to be written
        self._final: int | None = None
        self._stopped = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        self._thread = threading.Thread(target=self._run, name=f"sha256 {path.name}", daemon=True)
        self._thread.start()

    def advance(self, prefix_end: int) -> None:
        """More bytes from 0 are written (cheap; called under the download's lock)."""
        if prefix_end > self._available:
            with self._cond:
                if prefix_end > self._available:
                    self._available = prefix_end
                    self._cond.notify()

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while self._available <= self._position and not self._stopped and (
                        self._final is None or self._position < self._final
                    ):
                        self._cond.wait()
                    if self._stopped or (self._final is not None and self._position >= self._final):
                        return
                    target = self._available if self._final is None else min(self._available, self._final)
                while self._position < target and not self._stopped:
                    count = min(CHUNK, target - self._position)
                    data = read_at(self._fd, self._position, count)
                    if not data:
                        raise OSError(f"{self.path} is shorter than expected at {self._position}")
                    self._digest.update(data)
                    self._position += len(data)
        except BaseException as exc:  # reported by result()
            self._error = exc
        finally:
            with self._cond:
                self._stopped = True
                self._cond.notify_all()

    def result(self, size: int) -> str:
        """The hex digest of bytes [0, size) once all of them are written."""
        with self._cond:
            self._final = size
            self._available = max(self._available, size)
            self._cond.notify_all()
        self._thread.join()
        self._close()
        if self._error is not None:
            raise self._error
        if self._position != size:
            raise OSError(f"hashed {self._position} bytes of {self.path}, expected {size}")
        return self._digest.hexdigest()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join()
        self._close()

    def _close(self) -> None:
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1
