"""Free disk space where an install writes: the install dir, the temp dir and pip's cache.

The budget is checked per filesystem, not per path: three paths on one disk share its free space,
and a small `/tmp` (tmpfs, or its own partition) fails a torch install even when the install disk is
empty — a trap people hit, since pip unpacks the 2.5 GB torch wheel through the temp dir.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from sdsetup.fsutil import human_bytes
from sdsetup.i18n import N_, t

GIB = 1024**3

# Estimates until the install manifest gives exact sizes (install passes its own via `required_bytes`).
# The web UI's venv: torch 2.1.2+cu121 unpacks to ~4.5 GB, xformers and requirements_versions.txt
# add ~2 GB; rounded up for pip's own overhead.
VENV_BYTES = 8 * GIB
# v1-5-pruned-emaonly.safetensors, exact (facts §2.1).
MODEL_BYTES = 4_265_146_304
# DIR/.sdsetup/wheelhouse keeps the downloaded wheels for resume and repair: the torch cu121 wheel
# alone is 2.47 GB (facts §1.3), the rest ~0.5 GB.
WHEELHOUSE_BYTES = 3 * GIB
# The web UI checkout, repositories/ and the Hugging Face CLIP files.
SOURCES_BYTES = 1 * GIB
# pip downloads and unpacks through the temp dir; the largest single item is the torch wheel.
TEMP_BYTES = 3 * GIB
# pip's cache keeps another copy of what it downloads (unless the install disables it).
PIP_CACHE_BYTES = 3 * GIB

INSTALL_DIR_BYTES = VENV_BYTES + MODEL_BYTES + WHEELHOUSE_BYTES + SOURCES_BYTES

DEFAULT_REQUIRED: dict[str, int] = {
    "install_dir": INSTALL_DIR_BYTES,
    "temp": TEMP_BYTES,
    "pip_cache": PIP_CACHE_BYTES,
}

LABELS = {"install_dir": "dir", "temp": "temp", "pip_cache": "pip"}
# Running out of space in these stops an install; a full pip cache only costs a warning from pip.
HARD = ("install_dir", "temp")


@dataclass
class DiskLocation:
    label: str  # install_dir | temp | pip_cache
    path: str
    device: int | None  # st_dev of the nearest existing folder: same device, same free space
    free_bytes: int | None
    required_bytes: int


def required_by_label(required_bytes: int | Mapping[str, int] | None) -> dict[str, int]:
    """The budget per location: the defaults, with an int replacing the install dir's need."""
    budget = dict(DEFAULT_REQUIRED)
    if isinstance(required_bytes, Mapping):
        budget.update({k: int(v) for k, v in required_bytes.items() if k in budget})
    elif required_bytes is not None:
        budget["install_dir"] = int(required_bytes)
    return budget


def pip_cache_dir(env: Mapping[str, str], system: str, home: str) -> str | None:
    """Where pip keeps its cache (pip's own defaults; a cache-dir in pip.conf is not read)."""
    if env.get("PIP_NO_CACHE_DIR", "").lower() in ("1", "true", "yes", "on"):
        return None
    if env.get("PIP_CACHE_DIR"):
        return env["PIP_CACHE_DIR"]
    if system == "Windows":
        base = env.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
        return os.path.join(base, "pip", "Cache")
    if system == "Darwin":
        return os.path.join(home, "Library", "Caches", "pip")
    return os.path.join(env.get("XDG_CACHE_HOME") or os.path.join(home, ".cache"), "pip")


def nearest_existing(path: Path) -> Path:
    probe = Path(os.path.abspath(path))
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def probe_location(label: str, path: str | os.PathLike[str], required_bytes: int) -> DiskLocation:
    existing = nearest_existing(Path(path))
    try:
        device = os.stat(existing).st_dev
        free = shutil.disk_usage(existing).free
    except OSError:
        device, free = None, None
    return DiskLocation(label, str(path), device, free, required_bytes)


def group_by_filesystem(locations: Iterable[DiskLocation]) -> list[dict[str, Any]]:
    """One budget per filesystem (st_dev), in order of first appearance; unknown devices stand alone."""
    groups: list[dict[str, Any]] = []
    by_device: dict[int, dict[str, Any]] = {}
    for location in locations:
        group = by_device.get(location.device) if location.device is not None else None
        if group is None:
            group = {"device": location.device, "labels": [], "paths": {}, "free_bytes": location.free_bytes, "required_bytes": 0}
            groups.append(group)
            if location.device is not None:
                by_device[location.device] = group
        group["labels"].append(location.label)
        group["paths"][location.label] = location.path
        group["required_bytes"] += location.required_bytes
    return groups


_FIXES = {
    "install_dir": N_("free space on that disk, or choose --dir on a disk with more free space"),
    "temp": N_("point the temp dir at a bigger disk: `export TMPDIR=/path/on/big/disk` (Windows: `set TEMP=D:\\tmp` and "
               "`set TMP=D:\\tmp`)"),
    "pip_cache": N_("set PIP_CACHE_DIR to a folder on a bigger disk, or empty the cache with `python -m pip cache purge`"),
}


def assess_filesystem(group: Mapping[str, Any]) -> tuple[str, str, str | None]:
    """(status, value, fix) for one filesystem's budget."""
    free, need = group.get("free_bytes"), int(group.get("required_bytes") or 0)
    if free is None:
        return "warn", t("free space unknown"), t("check the free space yourself: an install needs about {need}",
                                                  need=human_bytes(need))
    where = ", ".join(str(p) for p in group.get("paths", {}).values())
    value = t("{free} free, about {need} needed ({where})", free=human_bytes(free), need=human_bytes(need), where=where)
    if free >= need:
        return "ok", value, None
    status = "fail" if any(label in HARD for label in group["labels"]) else "warn"
    fix = t("{short} short; {fixes}", short=human_bytes(need - free),
            fixes=t("; or ").join(t(_FIXES[label]) for label in group["labels"] if label in _FIXES))
    return status, value, fix


def group_name(group: Mapping[str, Any]) -> str:
    return "disk (" + "+".join(LABELS.get(label, label) for label in group["labels"]) + ")"


def group_id(group: Mapping[str, Any]) -> str:
    """Stable item ids: disk_install_dir is the install dir's filesystem (whatever else shares it)."""
    return "disk_" + group["labels"][0]


def probe_disk(
    install_dir: Path,
    *,
    env: Mapping[str, str],
    system: str,
    required_bytes: int | Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    budget = required_by_label(required_bytes)
    paths = [("install_dir", str(install_dir)), ("temp", tempfile.gettempdir())]
    cache = pip_cache_dir(env, system, os.path.expanduser("~"))
    if cache:
        paths.append(("pip_cache", cache))
    return group_by_filesystem(probe_location(label, path, budget[label]) for label, path in paths)
