"""The install record: what `install` put in DIR, read by `verify`, `doctor` and `bundle`.

It lives at DIR/.sdsetup/install.json (`InstallLayout.record`). Paths in it are relative to DIR. The
record is the contract between the parts: `verify` checks an install against it without knowing the
manifest format. A low module (beside sdsetup/layout.py), so readers need nothing of `install/`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.fsutil import atomic_write_json
from sdsetup.layout import RECORD_FILE, STATE_DIR, InstallLayout
from sdsetup.i18n import t

RECORD_SCHEMA = 1


@dataclass
class RepoRecord:
    name: str  # e.g. "stable-diffusion-webui", "Stable Diffusion"
    path: str  # relative to DIR ("." for the web UI itself)
    url: str  # canonical upstream URL
    commit: str  # the pinned commit HEAD must equal


@dataclass
class FileRecord:
    path: str  # relative to DIR
    sha256: str | None
    size: int | None
    url: str | None = None  # canonical source URL


@dataclass
class HubFileRecord:
    repo_id: str  # e.g. openai/clip-vit-large-patch14
    revision: str  # the commit the snapshot is stored under
    filename: str
    path: str  # relative to DIR: the file in the HF cache layout
    sha256: str | None = None
    size: int | None = None


@dataclass
class InstallRecord:
    manifest: str
    webui: RepoRecord
    python: str  # the venv interpreter, relative to DIR (venv/bin/python or venv/Scripts/python.exe)
    backend: str  # cuda | rocm | mps | cpu
    torch_tag: str | None = None  # cu121, cu128, rocm6.1, cpu, …
    repositories: list[RepoRecord] = field(default_factory=list)
    models: list[FileRecord] = field(default_factory=list)
    hub_files: list[HubFileRecord] = field(default_factory=list)
    hf_home: str | None = None  # relative to DIR
    launch_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # launch environment, credentials never included
    finished: bool = False
    # DIR's git repository before install moved it ({head, branch, origin, undo}); None when install made it
    previous_checkout: dict[str, Any] | None = None
    schema_version: int = RECORD_SCHEMA
    launcher: str = "a1111"  # sdsetup/launchers/ kind: which files hold the launch configuration
    held: list[str] = field(default_factory=list)  # the manifest's `held` packages (kept at their installed version)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if data["previous_checkout"] is None:
            del data["previous_checkout"]  # records of installs sdsetup made stay as they were
        if data["launcher"] == "a1111":
            del data["launcher"]  # A1111 records stay as they were before other UIs
        if not data["held"]:
            del data["held"]  # records of manifests without `held` stay as they were
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], origin: str = "install record") -> "InstallRecord":
        try:
            return cls(
                manifest=data["manifest"],
                webui=RepoRecord(**data["webui"]),
                python=data["python"],
                backend=data["backend"],
                torch_tag=data.get("torch_tag"),
                repositories=[RepoRecord(**r) for r in data.get("repositories", [])],
                models=[FileRecord(**m) for m in data.get("models", [])],
                hub_files=[HubFileRecord(**h) for h in data.get("hub_files", [])],
                hf_home=data.get("hf_home"),
                launch_args=list(data.get("launch_args", [])),
                env=dict(data.get("env", {})),
                finished=bool(data.get("finished", False)),
                previous_checkout=dict(data["previous_checkout"]) if data.get("previous_checkout") else None,
                schema_version=int(data.get("schema_version", RECORD_SCHEMA)),
                launcher=str(data.get("launcher") or "a1111"),
                held=[str(x) for x in data.get("held") or []],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SdsetupError(
                t("{origin} is damaged ({exc})", origin=origin, exc=exc),
                t("rerun `sdsetup install DIR`; it rewrites the record"),
                ExitCode.FAILED,
            ) from None


def record_path(install_dir: Path) -> Path:
    return InstallLayout(install_dir).record


def load_record(install_dir: Path) -> InstallRecord | None:
    path = record_path(install_dir)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise SdsetupError(t("cannot read {path}: {exc}", path=path, exc=exc), t("rerun `sdsetup install DIR`"),
                           ExitCode.FAILED) from None
    return InstallRecord.from_json(data, str(path))


def save_record(install_dir: Path, record: InstallRecord) -> Path:
    path = record_path(install_dir)
    atomic_write_json(path, record.to_json())
    return path
