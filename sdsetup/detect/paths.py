"""Pitfalls in the install path: spaces, non-ASCII, FAT32, OneDrive, long paths; and a usable --dir.

A --dir that cannot be used at all (a file, a path under a file, no permission, read-only disk) is a
user mistake: `validate_install_dir` raises one usage error with a hint. The rest are verdicts.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from pathlib import Path, PurePath
from typing import Iterable, Mapping

from sdsetup.errors import usage_error
from sdsetup.i18n import t

# FAT has a 4 GiB - 1 byte file size limit: no SDXL checkpoint (~6.5 GiB) fits, and it has no
# file ownership, which makes git refuse the repositories.
FAT_TYPES = {"vfat", "msdos", "fat", "fat12", "fat16", "fat32", "umsdos"}
NO_OWNERSHIP_TYPES = {"exfat"}
NETWORK_TYPES = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "sshfs", "fuse.sshfs", "afpfs", "webdav", "davfs"}
# WSL mounts the Windows drives (C: is /mnt/c) through these: slow and without Linux permissions.
WSL_WINDOWS_TYPES = {"9p", "drvfs", "v9fs"}

# Windows' classic MAX_PATH, and how deep an install nests below DIR (an estimate from the deepest
# files in a web UI venv, torch's C++ headers under venv\Lib\site-packages\torch\include\...).
MAX_PATH = 260
DEEPEST_RELATIVE = 160
MAX_DIR = MAX_PATH - 12  # CreateDirectoryW's limit: room for an 8.3 file name


def validate_install_dir(
    path: Path, *, label: str = "--dir", example: str = "--dir ~/stable-diffusion-webui", probe_write: bool = True
) -> Path:
    """The absolute install dir, or a usage error naming what is wrong with it and what to do.

    `probe_write=False` skips the writability test (it creates a file): install --dry-run writes nothing.
    """
    raw = str(path)
    if not raw.strip():
        raise usage_error(t("{label} is empty", label=label), t("give the folder to install into, e.g. {example}", example=example))
    target = Path(os.path.abspath(os.path.expanduser(raw)))
    if target.exists() and not target.is_dir():
        raise usage_error(
            t("{label} {target} is a file, not a folder", label=label, target=target),
            t("give a folder path (sdsetup creates it when missing), e.g. {example}", example=example),
        )
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise usage_error(
            t("{label} {target} cannot be created: {existing} is a file", label=label, target=target, existing=existing),
            t("choose a folder path whose parents are folders, e.g. {example}", example=example),
        )
    problem = _write_problem(existing) if probe_write else None
    if problem:
        raise usage_error(
            t("{label} {target} is not writable: cannot create a file in {existing} ({problem})", label=label, target=target, existing=existing, problem=problem),
            t("choose a folder you own, e.g. {example}, or fix the folder's permissions", example=example),
        )
    return target


def _write_problem(folder: Path) -> str | None:
    """Why nothing can be written in `folder` (tried for real: ACLs and read-only mounts lie to access())."""
    try:
        fd, name = tempfile.mkstemp(prefix=".sdsetup-write-test-", dir=folder)
    except PermissionError:
        return "permission denied"
    except OSError as exc:
        if exc.errno == errno.EROFS:
            return "read-only filesystem"
        return exc.strerror or type(exc).__name__
    os.close(fd)
    try:
        os.unlink(name)
    except OSError:
        pass
    return None


# ---------------------------------------------------------------------------------- filesystem type

_OCTAL = re.compile(r"\\([0-7]{3})")


def parse_mounts(text: str | None) -> list[tuple[str, str]]:
    """(mount point, fs type) from /proc/mounts; spaces come escaped as \\040."""
    mounts = []
    for line in (text or "").splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point = _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), fields[1])
        mounts.append((mount_point, fields[2]))
    return mounts


def fs_type_for(path: str, mounts: Iterable[tuple[str, str]]) -> str | None:
    """The type of the filesystem holding `path`: the longest mount point above it (the last one wins ties)."""
    best: tuple[int, str] | None = None
    for mount_point, fs_type in mounts:
        prefix = mount_point.rstrip("/") + "/"
        if path == mount_point or path.startswith(prefix):
            if best is None or len(mount_point) >= best[0]:
                best = (len(mount_point), fs_type)
    return best[1] if best else None


def _windows_fs_type(path: str) -> str | None:
    import ctypes

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    volume = ctypes.create_unicode_buffer(1024)
    if not kernel32.GetVolumePathNameW(ctypes.c_wchar_p(path), volume, len(volume)):
        return None
    fs_name = ctypes.create_unicode_buffer(64)
    ok = kernel32.GetVolumeInformationW(ctypes.c_wchar_p(volume.value), None, 0, None, None, None, fs_name, len(fs_name))
    return fs_name.value.lower() if ok else None


def probe_fs_type(existing: Path, system: str) -> str | None:
    """Filesystem type of an existing folder: /proc/mounts, GetVolumeInformationW, or psutil (macOS)."""
    path = os.path.realpath(existing)
    try:
        if system == "Linux":
            from sdsetup.detect._probe import read_text

            return fs_type_for(path, parse_mounts(read_text("/proc/mounts")))
        if system == "Windows":
            return _windows_fs_type(path)
        import psutil

        return fs_type_for(path, [(p.mountpoint, p.fstype) for p in psutil.disk_partitions(all=True)])
    except Exception:
        return None


def windows_long_paths_enabled() -> bool | None:
    """HKLM\\SYSTEM\\CurrentControlSet\\Control\\FileSystem\\LongPathsEnabled, or None when unreadable."""
    try:
        import winreg  # type: ignore[import-not-found]

        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"SYSTEM\CurrentControlSet\Control\FileSystem") as key:
            value, _ = winreg.QueryValueEx(key, "LongPathsEnabled")
            return bool(value)
    except Exception:
        return None


# ------------------------------------------------------------------------------------------ verdicts


def onedrive_roots(env: Mapping[str, str]) -> list[str]:
    return [env[name] for name in ("OneDrive", "OneDriveConsumer", "OneDriveCommercial", "ONEDRIVE") if env.get(name)]


def under_onedrive(path: str, roots: Iterable[str]) -> bool:
    lowered = path.replace("/", "\\").lower().rstrip("\\") + "\\"
    for root in roots:
        prefix = root.replace("/", "\\").lower().rstrip("\\") + "\\"
        if lowered.startswith(prefix):
            return True
    # "OneDrive" or "OneDrive - Company" anywhere in the path, even when the variables are not set.
    return any(part.lower().startswith("onedrive") for part in PurePath(path.replace("\\", "/")).parts)


def path_pitfalls(
    path: str,
    *,
    system: str,
    fs_type: str | None,
    wsl: bool = False,
    env: Mapping[str, str] | None = None,
    long_paths_enabled: bool | None = None,
) -> list[tuple[str, str, str]]:
    """(status, what, fix) for each pitfall of installing into `path` (pure)."""
    env = env or {}
    found: list[tuple[str, str, str]] = []
    if " " in path:
        found.append(("warn", t("the path has spaces"),
                      t("choose a path without spaces (some extensions and scripts break on them), e.g. ~/sd-webui or "
                        "C:\\sd\\webui")))
    odd = sorted({ch for ch in path if ord(ch) > 127})
    if odd:
        found.append(
            (
                "warn",
                t("the path has non-ASCII characters ({chars})", chars="".join(odd[:8])),
                t("choose an ASCII-only path (pip builds, git and compilers trip over them), e.g. C:\\sd\\webui or "
                  "~/sd-webui"),
            )
        )
    kind = (fs_type or "").lower()
    if kind in FAT_TYPES:
        found.append(
            (
                "fail",
                t("the disk is {fs_type} (FAT32): no file can exceed 4 GiB", fs_type=fs_type),
                t("choose a folder on an NTFS, ext4 or APFS disk (SDXL checkpoints are ~6.5 GiB; git also needs file "
                  "ownership)"),
            )
        )
    elif kind in NO_OWNERSHIP_TYPES:
        found.append(
            (
                "warn",
                t("the disk is exFAT: no file ownership, so git reports 'dubious ownership'"),
                t("prefer an NTFS, ext4 or APFS disk, or run `git config --global --add safe.directory '*'`"),
            )
        )
    elif wsl and kind in WSL_WINDOWS_TYPES:
        found.append(
            (
                "warn",
                t("the folder is on a Windows drive seen from WSL: very slow, and Linux permissions do not stick"),
                t("install inside the Linux filesystem, e.g. --dir ~/stable-diffusion-webui"),
            )
        )
    elif kind in NETWORK_TYPES:
        found.append(("warn", t("the folder is on a network filesystem ({fs_type})", fs_type=fs_type),
                      t("install on a local disk: network filesystems are slow and file locking can fail")))
    if system == "Windows":
        if under_onedrive(path, onedrive_roots(env)):
            found.append(
                (
                    "warn",
                    t("the folder is inside OneDrive: syncing locks venv files and 'files on demand' leaves placeholders"),
                    t("choose a folder outside OneDrive, e.g. C:\\sd\\stable-diffusion-webui"),
                )
            )
        if not long_paths_enabled and len(path) > MAX_DIR:
            found.append(
                (
                    "fail",
                    t("the path is {length} characters long: Windows cannot create a folder path over {limit} characters",
                      length=len(path), limit=MAX_DIR),
                    t("choose a short path, e.g. C:\\sd\\webui, or enable long paths (as admin: `reg add "
                      "HKLM\\SYSTEM\\CurrentControlSet\\Control\\FileSystem /v LongPathsEnabled /t REG_DWORD /d 1 /f`, then sign "
                      "in again)"),
                )
            )
        elif not long_paths_enabled and len(path) + DEEPEST_RELATIVE > MAX_PATH:
            found.append(
                (
                    "warn",
                    t("the path is {length} characters long; files deep in the venv would pass Windows' {limit}-character "
                      "limit", length=len(path), limit=MAX_PATH),
                    t("choose a path shorter than {shorter} characters, e.g. C:\\sd\\webui, or enable long paths (as admin: "
                      "`reg add HKLM\\SYSTEM\\CurrentControlSet\\Control\\FileSystem /v LongPathsEnabled /t REG_DWORD /d 1 /f`)",
                      shorter=MAX_PATH - DEEPEST_RELATIVE),
                )
            )
    return found


def assess_paths(path: str, pitfalls: list[tuple[str, str, str]], fs_type: str | None) -> tuple[str, str, str | None]:
    """(status, value, fix) of the `path` check item."""
    if not pitfalls:
        if fs_type:
            return "ok", t("{path} ({fs_type}): no pitfalls", path=path, fs_type=fs_type), None
        return "ok", t("{path} (filesystem unknown): no pitfalls", path=path), None
    status = "fail" if any(p[0] == "fail" for p in pitfalls) else "warn"
    value = f"{path}: " + "; ".join(p[1] for p in pitfalls)
    return status, value, "\n".join(p[2] for p in pitfalls)
