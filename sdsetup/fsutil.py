"""Small filesystem helpers every part uses: atomic writes and paths that may not escape a root."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from sdsetup.errors import ExitCode, SdsetupError


@contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """A binary handle on a temp file in the same directory, moved to `path` with os.replace only when
    the block finishes, so readers never see half a file; on any error the temp file is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_writer(path) as handle:
        handle.write(data)


def atomic_write_text(path: Path, text: str, encoding: str = "utf-8") -> None:
    atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def file_in_the_way(path: Path) -> Path | None:
    """The first existing parent of `path` that is a file (mkdir would fail on it), or None."""
    return next((parent for parent in Path(path).absolute().parents if parent.exists() and not parent.is_dir()), None)


def safe_join(root: Path, relative: str, what: str = "path") -> Path:
    """root/relative, refusing absolute paths, '..' and anything that resolves outside root."""
    rel = str(relative).replace("\\", "/")
    if not rel or rel.startswith("/") or (len(rel) > 1 and rel[1] == ":"):
        raise SdsetupError(
            f"{what} '{relative}' must be relative to the install directory",
            "use a path like models/Stable-diffusion/model.safetensors",
            ExitCode.USAGE,
        )
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise SdsetupError(
            f"{what} '{relative}' escapes the install directory",
            "remove '..' from the path; sdsetup only writes inside the install directory",
            ExitCode.USAGE,
        )
    candidate = root.joinpath(*parts)
    root_resolved = root.resolve()
    resolved = candidate.resolve()
    if resolved != root_resolved and root_resolved not in resolved.parents:
        raise SdsetupError(
            f"{what} '{relative}' resolves outside {root} (a symlink?)",
            "remove the symlink or choose another path",
            ExitCode.USAGE,
        )
    return candidate


def free_bytes(path: Path) -> int | None:
    """Free space on the filesystem that holds `path` (or its nearest existing parent)."""
    import shutil

    probe = Path(path).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return None


def human_bytes(count: float | int | None) -> str:
    if count is None:
        return "unknown"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
