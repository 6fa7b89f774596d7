"""What the resolver picked: the record the wheelhouse (pip) and uv both produce, in a module of its own
so neither imports the other for it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pick:
    """One distribution the resolver picked."""

    name: str
    version: str
    url: str
    sha256: str | None
    filename: str
    local_path: str | None  # set for file:// URLs (an archive already on disk)
    is_wheel: bool
    requested: bool
