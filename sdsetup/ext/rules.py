"""Pure decisions for extensions: the name and folder of one, which packages the install holds, and which
of an extension's requirements would move a held package (the conflict reported before anything changes).

Held: whatever DIR/.sdsetup/constraints.txt pins (install writes torch, torchvision and xformers there
as installed, local tag included), and torch, torchvision and xformers themselves whenever the venv
has them. An extension's requirements file asking for another torch is the most common way a working
install breaks (issue 24): here it is refused, and the user chooses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from sdsetup.errors import usage_error
from sdsetup.i18n import t

ALWAYS_HELD = ("torch", "torchvision", "xformers")
FOLDERS = {"a1111": "extensions", "forge": "extensions", "comfyui": "custom_nodes"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
REQUIREMENT_FILES = ("requirements.txt",)


def folder_for(launcher: str | None) -> str:
    return FOLDERS.get(launcher or "a1111", "extensions")


def check_repo_url(url: str) -> str:
    text = (url or "").strip()
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname or len(parts.path.strip("/").split("/")) < 2:
        raise usage_error(t("'{url}' is not a git repository URL", url=url),
                          t("give the extension's https:// URL, e.g. https://github.com/OWNER/REPO"))
    return text


def canonical_git_url(url: str) -> str:
    """https://github.com/OWNER/REPO(.git)(/) → https://github.com/OWNER/REPO.git (what the mirror layer rewrites)."""
    text = url.strip().rstrip("/")
    parts = urlsplit(text)
    if (parts.hostname or "").lower() in ("github.com", "www.github.com"):
        owner, repo = parts.path.strip("/").split("/")[:2]
        return f"https://github.com/{owner}/{repo.removesuffix('.git')}.git"
    return text


def name_from_url(url: str) -> str:
    name = urlsplit(url.strip().rstrip("/")).path.rsplit("/", 1)[-1].removesuffix(".git")
    if not _NAME.match(name or ""):
        raise usage_error(t("cannot tell the extension's name from {url}", url=url), t("give a URL ending in /OWNER/REPO"))
    return name


def check_name(name: str) -> str:
    if not _NAME.match(name or "") or name in (".", ".."):
        raise usage_error(t("'{name}' is not an extension name", name=name), t("see `sdsetup ext list` for the names"))
    return name


def held_packages(constraints_text: str, installed: dict[str, str], extra: tuple[str, ...] | list[str] = ()) -> dict[str, str]:
    """{normalised name: version} the install holds: the constraints file's pins, and torch,
    torchvision, xformers and the manifest's `held` packages (`extra`) as installed."""
    from sdsetup.versions import project_name

    held: dict[str, str] = {}
    for line in constraints_text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            held[project_name(name.strip())] = version.strip()
    for name in (*ALWAYS_HELD, *extra):
        version = installed.get(project_name(name)) or installed.get(name)
        if version:
            held.setdefault(project_name(name), version)
    return held


@dataclass(frozen=True)
class Conflict:
    package: str  # normalised name
    held: str  # the version the install holds
    wanted: str  # the requirement line as the extension wrote it

    def to_json(self) -> dict[str, str]:
        return {"package": self.package, "held": self.held, "wanted": self.wanted}


def requirement_lines(text: str) -> list[str]:
    """The requirement lines of a requirements file (comments, blank lines and pip options dropped)."""
    out = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        out.append(line)
    return out


def conflicts(lines: list[str], held: dict[str, str]) -> list[Conflict]:
    """Each requirement that names a held package with a version the install does not have (or a direct
    URL for it). Markers that do not apply to this Python are ignored, like pip does."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    found = []
    for line in lines:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue  # pip will say what is wrong with it, in the resolve that follows
        name = canonicalize_name(requirement.name)
        if name not in held:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        if requirement.url or (requirement.specifier and not requirement.specifier.contains(held[name], prereleases=True)):
            found.append(Conflict(name, held[name], line))
    return found
