"""What `ext add` installed, per install: DIR/.sdsetup/extensions.json
({"extensions": [{name, path, url, commit, requirements, skipped_requirements, added}]})."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sdsetup.layout import InstallLayout

EXT_FILE = "extensions.json"


def ext_path(root: Path) -> Path:
    return InstallLayout(root).state_dir / EXT_FILE


def load_extensions(root: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(ext_path(root).read_text("utf-8"))
    except (OSError, ValueError):
        return []
    items = data.get("extensions") if isinstance(data, dict) else None
    return [e for e in items if isinstance(e, dict) and e.get("name")] if isinstance(items, list) else []


def save_extensions(root: Path, entries: list[dict[str, Any]]) -> None:
    from sdsetup.fsutil import atomic_write_json

    atomic_write_json(ext_path(root), {"extensions": sorted(entries, key=lambda e: str(e["name"]).lower())})


def upsert(root: Path, entry: dict[str, Any]) -> None:
    save_extensions(root, [e for e in load_extensions(root) if e.get("name") != entry["name"]] + [entry])


def drop(root: Path, name: str) -> None:
    save_extensions(root, [e for e in load_extensions(root) if e.get("name") != name])
