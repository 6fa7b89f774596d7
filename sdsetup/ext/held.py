"""Which packages an existing install holds, at which versions (a probe of its venv): the pins of
DIR/.sdsetup/constraints.txt, torch, torchvision and xformers, and what its manifest marked as held
(`held = [...]`, kept in the install record). `ext add`, `update` and the launch environment hold these."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def installed_versions(python: Path, names: tuple[str, ...]) -> dict[str, str]:
    from sdsetup.install.pip_run import probe_venv
    from sdsetup.versions import project_name

    probe = probe_venv(python, names) or {}
    return {project_name(k): v for k, v in (probe.get("packages") or {}).items() if v}


def held_versions(constraints_file: Path, python: Path, extra: tuple[str, ...] | list[str] = ()) -> dict[str, str]:
    from sdsetup.ext.rules import ALWAYS_HELD, held_packages

    text = constraints_file.read_text("utf-8") if constraints_file.is_file() else ""
    extra = tuple(extra)
    return held_packages(text, installed_versions(python, (*ALWAYS_HELD, *extra)), extra)


def held_for(ctx: Any, record: Any) -> dict[str, str]:
    """The held set of the install `ctx` opens (`record`: its install record)."""
    return held_versions(ctx.constraints_file, ctx.python, getattr(record, "held", None) or ())
