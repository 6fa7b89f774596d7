"""Reading an install into a Snapshot (effects: git, the venv, the wheelhouse), and the snapshot store."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.i18n import t
from sdsetup.layout import InstallLayout
from sdsetup.snapshot.model import LAUNCH_FILES, Extension, Package, Snapshot, wheel_name_version

SNAPSHOTS = "snapshots"


def snapshots_dir(root: Path) -> Path:
    return InstallLayout(root).state_dir / SNAPSHOTS


def venv_packages(python: Path) -> dict[str, str]:
    """{normalised name: version} of every distribution in the venv (pip's own listing)."""
    import os

    from sdsetup import children
    from sdsetup.versions import project_name

    result = children.run([str(python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"], timeout=120,
                          env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONUTF8": "1"})
    if result.returncode != 0:
        raise SdsetupError(t("cannot list the packages of {python}", python=python),
                           t("the venv may be broken; `sdsetup verify` says more"), ExitCode.STEP)
    try:
        return {project_name(p["name"]): str(p["version"]) for p in json.loads(result.stdout)}
    except (ValueError, KeyError, TypeError):
        raise SdsetupError(t("pip gave an unreadable package list for {python}", python=python), None, ExitCode.STEP) from None


def wheel_index(wheelhouse: Path) -> dict[tuple[str, str], Path]:
    out: dict[tuple[str, str], Path] = {}
    if wheelhouse.is_dir():
        for wheel in sorted(wheelhouse.glob("*.whl")):
            key = wheel_name_version(wheel.name)
            if key:
                out.setdefault(key, wheel)
    return out


def take(ctx: Any, record: Any, reason: str) -> Snapshot:
    from sdsetup.ext.listing import list_extensions
    from sdsetup.ext.record import load_extensions
    from sdsetup.fsutil import atomic_write_json
    from sdsetup.gitops import head_commit
    from sdsetup.install.webui_config import extract_block
    from sdsetup.webui_user_file import flavour_of

    root = ctx.install_dir
    commit = head_commit(root)
    if commit is None:
        raise SdsetupError(t("{dir} is not a git checkout of the web UI", dir=root), t("rerun `sdsetup install DIR`"), ExitCode.FAILED)
    wheels = wheel_index(ctx.wheelhouse)
    packages = []
    for name, version in sorted(venv_packages(ctx.python).items()):
        wheel = wheels.get((name, version))
        digest = ctx.hash_cache.sha256(wheel)[0] if wheel else None
        packages.append(Package(name, version, wheel.name if wheel else None, digest))
    urls = {e["name"]: e.get("url") for e in load_extensions(root)}
    extensions = [Extension(e["name"], e["path"], e["commit"], urls.get(e["name"]))
                  for e in list_extensions(root, record.launcher) if e["present"] and e["commit"]]
    blocks = {}
    for name in LAUNCH_FILES:
        path = root / name
        if path.is_file():
            block = extract_block(path.read_text("utf-8", "replace"), flavour_of(name))
            if block:
                blocks[name] = block
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    existing = {p.stem for p in snapshots_dir(root).glob("*.json")}
    snap_id, n = stamp, 1
    while snap_id in existing:
        n += 1
        snap_id = f"{stamp}-{n}"
    snap = Snapshot(snap_id, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), reason, commit, record.webui.url, packages, extensions, blocks)
    atomic_write_json(snapshots_dir(root) / f"{snap_id}.json", snap.to_json())
    return snap


def list_snapshots(root: Path) -> list[Snapshot]:
    out = []
    for path in sorted(snapshots_dir(root).glob("*.json")):
        try:
            out.append(Snapshot.from_json(json.loads(path.read_text("utf-8"))))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


def load_snapshot(root: Path, snap_id: str | None) -> Snapshot:
    snaps = list_snapshots(root)
    if not snaps:
        raise SdsetupError(t("{dir} has no snapshot to roll back to", dir=root),
                           t("snapshots are taken by `sdsetup update`; `sdsetup rollback --list` shows them"), ExitCode.USAGE)
    if snap_id is None:
        return snaps[-1]
    for snap in snaps:
        if snap.id == snap_id:
            return snap
    raise SdsetupError(t("no snapshot {id} in {dir}", id=snap_id, dir=root), t("`sdsetup rollback --list` shows them"), ExitCode.USAGE)
