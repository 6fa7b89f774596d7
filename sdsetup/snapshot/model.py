"""The snapshot document (DIR/.sdsetup/snapshots/ID.json) and the pure decisions over it.

A snapshot holds what `rollback` needs to put an install back exactly: the web UI's commit, the venv's
exact package set (name, version, and the wheel in DIR/.sdsetup/wheelhouse with its sha256 when there is
one: those reinstall without the network), each extension's commit, and the sdsetup block of each launch
file."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA = 1
LAUNCH_FILES = ("webui-user.sh", "webui-user.bat", "run_comfyui.sh", "run_comfyui.bat")
# Packages the venv's own tooling needs; they are restored like any other, never removed.
TOOLING = ("pip", "setuptools", "wheel")


@dataclass(frozen=True)
class Package:
    name: str  # normalised
    version: str
    wheel: str | None = None  # file name in the wheelhouse
    sha256: str | None = None


@dataclass(frozen=True)
class Extension:
    name: str
    path: str  # relative to DIR
    commit: str
    url: str | None = None


@dataclass
class Snapshot:
    id: str
    created: str
    reason: str
    webui_commit: str
    webui_url: str
    packages: list[Package] = field(default_factory=list)
    extensions: list[Extension] = field(default_factory=list)
    launch_blocks: dict[str, str] = field(default_factory=dict)  # file name -> its sdsetup block
    schema_version: int = SCHEMA

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Snapshot":
        return cls(id=str(data["id"]), created=str(data["created"]), reason=str(data.get("reason", "")),
                   webui_commit=str(data["webui_commit"]), webui_url=str(data["webui_url"]),
                   packages=[Package(**p) for p in data.get("packages", [])],
                   extensions=[Extension(**e) for e in data.get("extensions", [])],
                   launch_blocks={str(k): str(v) for k, v in (data.get("launch_blocks") or {}).items()},
                   schema_version=int(data.get("schema_version", SCHEMA)))

    def package_set(self) -> dict[str, str]:
        return {p.name: p.version for p in self.packages}


def package_changes(current: dict[str, str], target: dict[str, str]) -> tuple[list[str], list[str]]:
    """(names to uninstall, names to install at the target's version), sorted; tooling is never removed."""
    remove = sorted(name for name, version in current.items()
                    if (name not in target and name not in TOOLING) or (name in target and target[name] != version))
    install = sorted(name for name, version in target.items() if current.get(name) != version)
    return remove, install


def wheel_name_version(file_name: str) -> tuple[str, str] | None:
    """('uipkg', '1.0') for uipkg-1.0-py3-none-any.whl (names normalised); None for other files."""
    from sdsetup.versions import project_name

    if not file_name.endswith(".whl"):
        return None
    parts = file_name[:-4].split("-")
    if len(parts) < 5:
        return None
    return project_name(parts[0]), parts[1]
