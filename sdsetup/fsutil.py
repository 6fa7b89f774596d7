"""Small filesystem helpers every part uses: atomic writes and paths that may not escape a root."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.i18n import N_, t


_UMASK: list[int] = []


def umask() -> int:
    """The process's umask, read without changing it where the OS says it (Linux /proc); else set and
    put back once, at the first call (a thread creating a file in between would get mode 0666)."""
    if not _UMASK:
        value = None
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("Umask:"):
                    value = int(line.split()[1], 8)
        except (OSError, ValueError):
            pass
        if value is None:
            value = os.umask(0o022)
            os.umask(value)
        _UMASK.append(value)
    return _UMASK[0]


@contextmanager
def atomic_writer(path: Path, mode: int | None = None) -> Iterator[BinaryIO]:
    """A binary handle on a temp file in the same directory, moved to `path` with os.replace only when
    the block finishes, so readers never see half a file; on any error the temp file is removed.

    The file gets `mode` if given (0o600 for one holding a credential), else the mode of the file it
    replaces, else what a plain open() would give (0o666 less the umask). mkstemp's own 0600 is not
    kept: a bundle's index pages, lock and profile are served by a web server running as another
    user (issue 23 item 14)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if mode is None:
            try:
                mode = os.stat(path).st_mode & 0o7777
            except OSError:
                mode = 0o666 & ~umask()
        if os.name != "nt":
            os.fchmod(fd, mode)
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


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    with atomic_writer(path, mode) as handle:
        handle.write(data)


def atomic_write_text(path: Path, text: str, encoding: str = "utf-8", mode: int | None = None) -> None:
    atomic_write_bytes(path, text.encode(encoding), mode)


def atomic_write_json(path: Path, data: Any, mode: int | None = None) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", mode=mode)


def make_new_dir(path: Path) -> bool:
    """Make `path` (and its parents); True only when this call made `path` itself. mkdir decides, so of
    two processes making the same new folder at the same moment exactly one is told it made it (the
    one whose cleanup may remove it again)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir()
    except FileExistsError:
        if not path.is_dir():
            raise
        return False
    return True


def file_in_the_way(path: Path) -> Path | None:
    """The first existing parent of `path` that is a file (mkdir would fail on it), or None."""
    return next((parent for parent in Path(path).absolute().parents if _exists(parent) and not os.path.isdir(parent)), None)


# Where a link inside an install may never lead (sdsetup would write a model or a script there):
# kernel interfaces and the operating system's own folders. Anywhere else is the user's choice.
SYSTEM_TREES = ("/proc", "/sys", "/dev", "/etc", "/bin", "/sbin", "/usr", "/lib", "/lib32", "/lib64", "/boot", "/System",
                "/Library", "C:/Windows", "C:/Program Files", "C:/Program Files (x86)")


def system_target(path: Path) -> str | None:
    """The system folder `path` lies in once every link is followed (or is), or None."""
    real = os.path.realpath(path).replace("\\", "/")
    if real in ("/", "") or (len(real) <= 3 and real[1:2] == ":"):
        return real or "/"
    for tree in SYSTEM_TREES:
        if real.lower() == tree.lower() or real.lower().startswith(tree.lower() + "/"):
            return tree
    return None


def linked_into_system(root: Path, relative: str, what: str) -> SdsetupError | None:
    """The refusal for an install path that a link inside root takes into a system folder, or None.
    Only the folders on the way count: a file that is itself a link (a venv's python) is read, or
    replaced whole (os.replace), never written through; and an install that lives in /usr/local is
    not refused for being there."""
    parts = [p for p in str(relative).replace("\\", "/").split("/") if p not in ("", ".")]
    folder = Path(root).joinpath(*parts[:-1])
    real_root, real_folder = os.path.realpath(root), os.path.realpath(folder)
    if real_folder == real_root or real_folder.startswith(real_root.rstrip("/\\") + os.sep):
        return None
    tree = system_target(folder)
    if tree is None:
        return None
    return SdsetupError(
        t("{what} '{relative}' leads through a link into {tree}, a system folder", what=what, relative=relative, tree=tree),
        t("point the link at a folder of your own (a models folder on another disk is fine), or remove it"),
        ExitCode.USAGE,
    )


def safe_join(root: Path, relative: str, what: str = "path", *, follow_links: bool = False) -> Path:
    """root/relative, refusing absolute paths, '..' and anything that resolves outside root.

    With follow_links (an install's own paths), a link inside root may lead elsewhere (a models folder
    on another disk) unless it leads into a system folder; the lexical checks stay."""
    rel = str(relative).replace("\\", "/")
    if not rel or rel.startswith("/") or (len(rel) > 1 and rel[1] == ":"):
        raise SdsetupError(
            t("{what} '{relative}' must be relative to the install directory", what=what, relative=relative),
            t("use a path like models/Stable-diffusion/model.safetensors"),
            ExitCode.USAGE,
        )
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise SdsetupError(
            t("{what} '{relative}' escapes the install directory", what=what, relative=relative),
            t("remove '..' from the path; sdsetup only writes inside the install directory"),
            ExitCode.USAGE,
        )
    candidate = root.joinpath(*parts)
    if follow_links:
        refusal = linked_into_system(root, rel, what)
        if refusal is not None:
            raise refusal
        return candidate
    root_resolved = root.resolve()
    resolved = candidate.resolve()
    if resolved != root_resolved and root_resolved not in resolved.parents:
        raise SdsetupError(
            t("{what} '{relative}' resolves outside {root} (a symlink?)", what=what, relative=relative, root=root),
            t("remove the symlink or choose another path"),
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


# Kernel file systems: a "file" there is an interface, never a place for a download.
KERNEL_TREES = ("/proc", "/sys", "/dev")
# The longest name sdsetup puts beside a destination: DEST.part.json.tmp (the sidecar's temp file).
LONGEST_SUFFIX = len(".part.json.tmp")


def _kind(mode: int) -> str | None:
    import stat

    for test, name in ((stat.S_ISCHR, N_("a character device")), (stat.S_ISBLK, N_("a block device")),
                       (stat.S_ISFIFO, N_("a FIFO (named pipe)")), (stat.S_ISSOCK, N_("a socket"))):
        if test(mode):
            return t(name)
    return None


def _exists(path: Path) -> bool:
    try:
        os.stat(path)
        return True
    except OSError:  # missing, or a name the file system cannot even look up (too long)
        return False


def nearest_existing(path: Path) -> Path:
    probe = Path(path).absolute()
    while not _exists(probe) and probe != probe.parent:
        probe = probe.parent
    return probe


def check_destination(dest: Path) -> None:
    """A path a download may write: a regular file or a new name in a folder sdsetup can write to.
    Raises a usage error (exit 2) for a device node, FIFO or socket (never replaced by a file, never
    opened: a FIFO would block), anything under /proc, /sys or /dev, a name too long for the file
    system (with room for DEST.part.json.tmp beside it), or a folder that cannot be written."""
    import errno as errnos

    dest = Path(dest).absolute()
    try:
        info = os.stat(dest)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        if exc.errno == errnos.ENAMETOOLONG:
            info = None  # reported below, with the limit
        else:
            raise SdsetupError(t("cannot use {dest} as the output: {reason}", dest=dest, reason=exc.strerror or exc),
                               t("give another output path (-o)"), ExitCode.USAGE) from None
    if info is not None:
        kind = _kind(info.st_mode)
        if kind is not None:
            raise SdsetupError(t("{dest} is {kind}, not a regular file", dest=dest, kind=kind),
                               t("give the path of a regular file to write (-o)"), ExitCode.USAGE)
    real = Path(os.path.realpath(nearest_existing(dest)))
    if os.name != "nt":
        for tree in KERNEL_TREES:
            if real == Path(tree) or Path(tree) in real.parents:
                raise SdsetupError(
                    t("{dest} is inside {tree}, a kernel file system, not a place for a download", dest=dest, tree=tree),
                    t("give an output path in a normal folder (-o)"),
                    ExitCode.USAGE,
                )
    existing = nearest_existing(dest.parent)
    try:
        name_max = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        name_max = 255
    for part in dest.relative_to(existing).parts if existing in dest.parents else (dest.name,):
        length = len(os.fsencode(part)) + (LONGEST_SUFFIX if part == dest.name else 0)
        if length > name_max:
            raise SdsetupError(
                (t("the name '{part}…' is too long ({size} bytes; this file system allows {name_max}, and sdsetup "
                   "adds up to {suffix} for its part file)", part=part[:40], size=len(os.fsencode(part)),
                   name_max=name_max, suffix=LONGEST_SUFFIX) if part == dest.name else
                 t("the name '{part}…' is too long ({size} bytes; this file system allows {name_max})",
                   part=part[:40], size=len(os.fsencode(part)), name_max=name_max)),
                t("give a shorter output name (-o), at most {limit} bytes",
                  limit=name_max - (LONGEST_SUFFIX if part == dest.name else 0)),
                ExitCode.USAGE,
            )
    if existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
        raise SdsetupError(
            (t("cannot write in {folder}: read-only file system", folder=existing) if _read_only(existing)
             else t("cannot write in {folder}: permission denied", folder=existing)),
            t("choose an output folder you can write to (-o), or fix its permissions"),
            ExitCode.USAGE,
        )


def check_output_file(path: Path, option: str) -> Path:
    """A file a command writes whole (verify --report/--out, doctor --bundle): fetch -o's checks
    (check_destination), and it is not a folder, not under a file, and not a symbolic link (a link, even a
    dangling one, would be replaced by a regular file, or, followed, write where the user did not say).
    Returns the absolute path; raises a usage error (exit 2) naming `option`."""
    import stat

    path = Path(path).expanduser().absolute()
    try:
        info = os.lstat(path)
    except OSError:
        info = None
    if info is not None and stat.S_ISLNK(info.st_mode):
        raise SdsetupError(t("{option} {path} is a symbolic link; sdsetup does not write through or replace links",
                             option=option, path=path),
                           t("give the path of a regular file to write ({option}), not a link", option=option), ExitCode.USAGE)
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise SdsetupError(t("{option} {path} is a folder", option=option, path=path),
                           t("give the path of the file to write ({option})", option=option), ExitCode.USAGE)
    blocking = file_in_the_way(path)
    if blocking is not None:
        raise SdsetupError(t("{option} {path}: {blocking} is a file, not a folder", option=option, path=path, blocking=blocking),
                           t("give a path inside a folder ({option})", option=option), ExitCode.USAGE)
    try:
        check_destination(path)
    except SdsetupError as exc:  # the same reason; the hint names the option it came from, not -o
        exc.hint = t("give the path of a regular file to write ({option})", option=option)
        raise
    return path


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & getattr(os, "ST_RDONLY", 1))
    except (OSError, AttributeError):
        return False
