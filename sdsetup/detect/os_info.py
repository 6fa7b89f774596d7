"""Operating system, release, architecture and bitness; WSL recognised.

The bitness that matters is the OS's, not this Python's: a 32-bit Python on 64-bit Windows is a
Python problem (detect/python.py), a 32-bit OS has no torch at all.
"""

from __future__ import annotations

import os
import platform
import struct
from typing import Any, Mapping

from sdsetup.detect._probe import read_text

_64BIT_MACHINES = {
    "x86_64", "amd64", "x64", "aarch64", "arm64", "aarch64_be", "ppc64", "ppc64le", "s390x", "riscv64",
    "loongarch64", "mips64", "sparc64",
}
_32BIT_MACHINES = {"i386", "i486", "i586", "i686", "x86", "armv6l", "armv7l", "armv7", "arm", "armhf", "mips", "ppc"}


def os_bits(machine: str, env: Mapping[str, str], pointer_bits: int) -> int:
    """64 or 32 for the OS; `pointer_bits` (this Python's) only when the machine name says nothing."""
    # A 32-bit process on 64-bit Windows sees PROCESSOR_ARCHITECTURE=x86 but this one set.
    if env.get("PROCESSOR_ARCHITEW6432", "").lower() in ("amd64", "arm64"):
        return 64
    name = (machine or "").lower()
    if name in _64BIT_MACHINES:
        return 64
    if name in _32BIT_MACHINES:
        return 32
    return pointer_bits


def is_wsl(proc_version: str | None, env: Mapping[str, str]) -> bool:
    """Windows Subsystem for Linux: the kernel says 'microsoft', or WSL set its variables."""
    if env.get("WSL_DISTRO_NAME") or env.get("WSL_INTEROP"):
        return True
    return bool(proc_version) and "microsoft" in proc_version.lower()


def os_facts(
    system: str,
    release: str,
    version: str,
    machine: str,
    *,
    env: Mapping[str, str],
    pointer_bits: int,
    proc_version: str | None,
) -> dict[str, Any]:
    """The `os` object of MachineFacts, from raw values (pure)."""
    return {
        "system": system or None,
        "release": release or None,
        "version": version or None,
        "machine": machine or None,
        "bits": os_bits(machine, env, pointer_bits),
        "wsl": system == "Linux" and is_wsl(proc_version, env),
    }


def probe_os() -> dict[str, Any]:
    uname = platform.uname()
    system = uname.system
    version = uname.version
    if system == "Darwin":
        # uname's version is the kernel build string; people know their macOS version.
        version = platform.mac_ver()[0] or version
    proc_version = read_text("/proc/version") if system == "Linux" else None
    return os_facts(
        system,
        uname.release,
        version,
        uname.machine,
        env=os.environ,
        pointer_bits=struct.calcsize("P") * 8,
        proc_version=proc_version,
    )
