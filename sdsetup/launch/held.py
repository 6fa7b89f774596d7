"""The launch environment holds what the install holds: extensions' own `install.py` (A1111 and Forge
run them at launch) and ComfyUI-Manager call pip themselves, with no constraints of sdsetup's. The launch
files' sdsetup block sets PIP_CONSTRAINT (pip) and UV_CONSTRAINT (uv, which ignores PIP_CONSTRAINT) to
DIR/.sdsetup/held-constraints.txt, which lists every held package at the version the venv has; pip then
refuses `pip install torch==OTHER` ("The user requested (constraint) torch==…", ResolutionImpossible).

pip and uv both split these variables on whitespace (a list of files): a path with a space becomes a
file:// URL, which both read (checked with pip 23.2 and 25.x, uv 0.13)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

HELD_FILE = "held-constraints.txt"
VARIABLES = ("PIP_CONSTRAINT", "UV_CONSTRAINT")
_HEADER = ("# written by sdsetup (launch files: PIP_CONSTRAINT, UV_CONSTRAINT): the packages this install holds,\n"
           "# at the versions its venv has; rewritten by install, ext add, update, rollback and launch\n")


def held_file(root: Path) -> Path:
    from sdsetup.layout import InstallLayout

    return InstallLayout(root).state_dir / HELD_FILE


def constraint_value(path: str) -> str:
    """What PIP_CONSTRAINT/UV_CONSTRAINT hold for `path` (pure): the path, or its file:// URL when it has
    whitespace (both tools would split it into several files there)."""
    if not re.search(r"\s", path):
        return path
    from pathlib import PurePosixPath, PureWindowsPath

    pure = PureWindowsPath(path) if re.match(r"^(?:[A-Za-z]:[\\/]|\\\\)", path) else PurePosixPath(path)
    return pure.as_uri()


def held_env(root: Path) -> tuple[tuple[str, str], ...]:
    value = constraint_value(str(held_file(Path(root).absolute())))
    return tuple((name, value) for name in VARIABLES)


def render(held: dict[str, str]) -> str:
    return _HEADER + "".join(f"{name}=={version}\n" for name, version in sorted(held.items()))


def write_held(root: Path, python: Path, extra: Any = ()) -> dict[str, str]:
    """Write the held file from the venv as it is now; {name: version}."""
    from sdsetup.ext.held import held_versions
    from sdsetup.fsutil import atomic_write_text
    from sdsetup.layout import InstallLayout

    held = held_versions(InstallLayout(root).constraints, python, tuple(extra or ()))
    atomic_write_text(held_file(root), render(held))
    return held
