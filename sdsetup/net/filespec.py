"""What the download engine is asked for: one file, several sources."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FileSpec:
    """One file = an ordered list of mirror URLs (first preferred, canonical URL last), optional
    sha256 and size, and where it must end up. The engine knows nothing about manifests."""

    urls: tuple[str, ...]
    dest: Path
    sha256: str | None = None
    size: int | None = None
    label: str | None = None  # shown in progress bars; defaults to the file name
    # the most connections for this file (MirrorPlan.connection_cap_for: university mirrors block bulk
    # downloads); None: settings.connections
    max_connections: int | None = None
    # per source URL, the most requests open at once there (MirrorPlan.connection_cap): the file still
    # gets its connections, spread over the sources that allow them
    source_caps: tuple[tuple[str, int], ...] = ()

    @property
    def name(self) -> str:
        return self.label or self.dest.name
