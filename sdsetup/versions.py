"""Version numbers and project names, the way pip reads them (`packaging`), in one place.

`version_tuple("25.1rc1") == (25, 1)`, `version_tuple("2.39.5.windows.1") == (2, 39, 5)`, `()` when there is
no number; `project_name("Open_Clip.Torch") == "open-clip-torch"` (PEP 503); `requirement_name("torch==2.1.2")
== "torch"`. Pure; imports nothing of sdsetup.
"""

from __future__ import annotations

import re

# packaging is imported inside each function: packaging.utils pulls in packaging.tags (sysconfig, ~50 ms)
# and `check` reads versions at start-up.

_LEADING_NUMBERS = re.compile(r"\d+(?:\.\d+)*")
_LEADING_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def version_tuple(text: object) -> tuple[int, ...]:
    """The release numbers of a version (pre/post/local parts dropped); tools' own version strings
    (git's "2.39.5.windows.1") by their leading numbers."""
    from packaging.version import InvalidVersion, Version

    text = str(text or "").strip()
    try:
        return Version(text).release
    except InvalidVersion:
        match = _LEADING_NUMBERS.match(text)
        return tuple(int(part) for part in match.group(0).split(".")) if match else ()


def project_name(name: str) -> str:
    """The PEP 503 normalised name: what an index page is named after and what two spellings share."""
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def requirement_name(requirement: str) -> str:
    """The normalised project a requirement string names ("Pillow>=9; python_version<'4'" -> "pillow");
    a string pip would not parse keeps its leading name."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        return canonicalize_name(Requirement(requirement).name)
    except InvalidRequirement:
        match = _LEADING_NAME.match(requirement)
        return canonicalize_name(match.group(1)) if match else requirement
