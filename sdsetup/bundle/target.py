"""The machines a bundle is for: platform tags and Python version, as pip arguments (pure).

Where the target is this machine's platform and the Python that resolves, pip resolves exactly as the
install will (sdists built where needed). Otherwise pip is asked `pip download`-style
(`--only-binary=:all: --platform … --python-version …`), and the few packages that only exist as
source (jsonmerge in A1111's requirements) are taken as sdists one by one (see resolve.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from sdsetup.errors import usage_error
from sdsetup.i18n import t


def _manylinux(arch: str) -> tuple[str, ...]:
    # pip expands legacy manylinux2014 tags to older ones, not manylinux_2_N ones: name them all.
    # glibc 2.28 (Debian 10, RHEL 8, Ubuntu 18.10) and newer run every one of these.
    return (*(f"manylinux_2_{minor}_{arch}" for minor in range(28, 16, -1)), f"manylinux2014_{arch}", f"linux_{arch}")


PLATFORM_ALIASES: dict[str, tuple[str, ...]] = {
    "linux": _manylinux("x86_64"),
    "linux-aarch64": _manylinux("aarch64"),
    "windows": ("win_amd64",),
    # pip expands a macOS tag to every older macOS version itself.
    "macos": ("macosx_14_0_arm64",),
    "macos-x86_64": ("macosx_14_0_x86_64",),
}
_TAG = re.compile(r"^(win32|win_amd64|win_arm64|linux_[a-z0-9_]+|(many|musl)linux[0-9_]*_[a-z0-9_]+|macosx_\d+_\d+_[a-z0-9_]+)$")
_PY = re.compile(r"^3\.\d{1,2}$")


@dataclass(frozen=True)
class Target:
    platforms: tuple[str, ...]  # pip platform tags; () = this machine's
    python_version: str  # "3.10"
    native: bool  # resolve like the install itself (this machine, the resolving Python)
    label: str  # what people see: "linux", "windows", "this machine", or the tags

    def pip_args(self) -> list[str]:
        if self.native:
            return []
        args = ["--only-binary=:all:", "--python-version", self.python_version, "--implementation", "cp"]
        for tag in self.platforms:
            args += ["--platform", tag]
        return args

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "platforms": list(self.platforms), "python_version": self.python_version,
                "native": self.native}


def choose_target(platforms: Sequence[str] | None, python_version: str | None, *, supported: Sequence[str],
                  recommended: str, running: str) -> Target:
    """From --platform (aliases or pip tags, repeatable) and --python-version (default: the manifest's
    recommended Python). `running` is the resolving interpreter's "3.X"."""
    version = (python_version or recommended).strip()
    if not _PY.match(version):
        raise usage_error(t("--python-version {version}: not a Python version like 3.10",
                            version=version), t("give MAJOR.MINOR, e.g. 3.10"))
    if version not in supported:
        raise usage_error(
            t("--python-version {version}: the manifest supports Python {supported}",
              version=version, supported=', '.join(supported)),
            t("build the bundle for the Python the machines will use ({supported})", supported=', '.join(supported)),
        )
    tags: list[str] = []
    labels: list[str] = []
    for raw in platforms or ():
        for value in str(raw).split(","):
            value = value.strip().lower()
            if not value:
                continue
            if value in PLATFORM_ALIASES:
                tags.extend(PLATFORM_ALIASES[value])
                labels.append(value)
            elif _TAG.match(value):
                tags.append(value)
                labels.append(value)
            else:
                raise usage_error(
                    t("--platform {value}: not a platform", value=value),
                    t("use {platform_aliases} or a pip platform tag such as win_amd64 or manylinux_2_28_x86_64",
                      platform_aliases=', '.join(PLATFORM_ALIASES)),
                )
    tags = list(dict.fromkeys(tags))
    native = not tags and version == running
    label = ", ".join(dict.fromkeys(labels)) if labels else "this machine's platform"
    return Target(tuple(tags), version, native, label)
