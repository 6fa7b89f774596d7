"""Launch changes `sdsetup doctor --fix` made, kept so the next `sdsetup install` keeps them too.

The install owns its block in webui-user (and run_comfyui.*) and rewrites it on every run; without a
record, a flag the doctor removed (--xformers after a crash, --medvram stepped down to --lowvram) would
come back on the next install (issue 23 item 17). The doctor writes DIR/.sdsetup/launch-overrides.json;
`build_plan` applies it to the machine's decisions. Pure apart from `load`/`record`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from sdsetup.layout import InstallLayout

FILE = "launch-overrides.json"


def path_of(install_dir: Path) -> Path:
    return InstallLayout(install_dir).state_dir / FILE


def load(install_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads(path_of(install_dir).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {"remove_args": [a for a in data.get("remove_args", []) if isinstance(a, str)],
            "add_args": [a for a in data.get("add_args", []) if isinstance(a, str)],
            "env": {k: v for k, v in (data.get("env") or {}).items() if isinstance(k, str) and isinstance(v, str)}}


def merged(old: Mapping[str, Any], *, add_args: Iterable[str] = (), remove_args: Iterable[str] = (),
           set_env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The overrides after one more change (pure): a flag added cancels its earlier removal and back."""
    add, remove = list(old.get("add_args", [])), list(old.get("remove_args", []))
    for flag in remove_args:
        add = [a for a in add if a != flag]
        if flag not in remove:
            remove.append(flag)
    for flag in add_args:
        remove = [r for r in remove if r != flag]
        if flag not in add:
            add.append(flag)
    return {"remove_args": remove, "add_args": add, "env": {**dict(old.get("env", {})), **dict(set_env or {})}}


def record(install_dir: Path, **change: Any) -> None:
    from sdsetup.fsutil import atomic_write_json

    path = path_of(install_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, merged(load(install_dir), **change))


def apply(decisions: Any, overrides: Mapping[str, Any]) -> Any:
    """The decisions with the doctor's launch changes on top (pure)."""
    if not overrides:
        return decisions
    removed = set(overrides.get("remove_args", []))
    args = [a for a in decisions.launch_args if a not in removed]
    args += [a for a in overrides.get("add_args", []) if a not in args]
    env = dict(decisions.launch_env)
    env.update(overrides.get("env", {}))
    return replace(decisions, launch_args=tuple(args), launch_env=tuple(sorted(env.items())))
