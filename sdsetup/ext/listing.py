"""Listing extensions (reads only): every folder under extensions/ (custom_nodes/ for ComfyUI) with its
commit, beside what `ext add` recorded in DIR/.sdsetup/extensions.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdsetup.ext.record import load_extensions
from sdsetup.ext.rules import folder_for


def list_extensions(root: Path, launcher: str) -> list[dict[str, Any]]:
    """Every folder under extensions/ (custom_nodes/), with its commit, and whether sdsetup added it."""
    from sdsetup.gitops import head_commit, is_dirty

    recorded = {e["name"]: e for e in load_extensions(root)}
    folder = root / folder_for(launcher)
    items = []
    names = {p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))} if folder.is_dir() else set()
    for name in sorted(names | set(recorded), key=str.lower):
        path = folder / name
        entry = recorded.get(name) or {}
        commit = head_commit(path) if path.is_dir() else None
        items.append({"name": name, "path": f"{folder_for(launcher)}/{name}", "present": path.is_dir(), "commit": commit,
                      "recorded_commit": entry.get("commit"), "url": entry.get("url"), "by_sdsetup": bool(entry),
                      "moved": bool(entry) and commit is not None and commit != entry.get("commit"),
                      "changed_files": bool(commit) and is_dirty(path)})
    return items
