"""Resume state across runs: a small JSON file next to `DEST.part` (`DEST.part.json`).

    {"format": "sdsetup-part", "version": 1, "size": 1234, "sha256": "…" | null,
     "urls": ["https://…"], "validators": {"https://…": {"etag": "\"abc\"", "last_modified": "…"}},
     "done": [[0, 1048576], [4194304, 5242880]], "updated": 1700000000.0}

`done` lists the byte ranges already written to the .part file. It is saved (write to a temp
file, then `os.replace`) at least every MiB per connection, so a killed process loses at most that.
It is not fsync'ed: a killed process loses nothing the kernel already has; after a power cut the
sha256 check catches torn data. URLs are stored redacted (no passwords).

`resume_from(...)` is the pure decision whether those ranges may be kept.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from sdsetup.net.probe import Validator, same_version
from sdsetup.net.segments import RangeSet

FORMAT = "sdsetup-part"
VERSION = 1


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def state_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part.json")


@dataclass
class ResumeState:
    size: int | None
    sha256: str | None
    urls: list[str]
    validators: dict[str, Validator]
    done: RangeSet = field(default_factory=RangeSet)
    updated: float = 0.0

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "size": self.size,
            "sha256": self.sha256,
            "urls": list(self.urls),
            "validators": {url: v.to_json() for url, v in self.validators.items()},
            "done": self.done.to_json(),
            "updated": self.updated,
        }

    @classmethod
    def from_json(cls, data: Mapping) -> "ResumeState | None":
        if not isinstance(data, Mapping) or data.get("format") != FORMAT or data.get("version") != VERSION:
            return None
        try:
            size = data.get("size")
            done = RangeSet((int(s), int(e)) for s, e in data.get("done") or [])
            return cls(
                size=int(size) if size is not None else None,
                sha256=(str(data["sha256"]).lower() if data.get("sha256") else None),
                urls=[str(u) for u in data.get("urls") or []],
                validators={str(u): Validator.from_json(v) for u, v in (data.get("validators") or {}).items()},
                done=done,
                updated=float(data.get("updated") or 0.0),
            )
        except (TypeError, ValueError, AttributeError):
            return None


def load_state(path: Path) -> ResumeState | None:
    """The saved state, or None when missing or unreadable (a damaged sidecar only costs a restart)."""
    try:
        return ResumeState.from_json(json.loads(path.read_text("utf-8")))
    except (OSError, ValueError):
        return None


def save_state(path: Path, state: ResumeState) -> None:
    """Atomic replace without fsync (see the module docstring); the caller serialises saves."""
    state.updated = time.time()
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(state.to_json(), handle, separators=(",", ":"))
    os.replace(tmp, path)


def remove_state(dest: Path) -> None:
    for path in (state_path(dest), state_path(dest).with_name(state_path(dest).name + ".tmp")):
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def resume_from(
    state: ResumeState | None,
    *,
    size: int | None,
    sha256: str | None,
    part_size: int | None,
    validators_now: Mapping[str, Validator],
) -> tuple[RangeSet, str]:
    """The ranges of an earlier run that may be kept, and why (or why not).

    Kept only when the .part file is there at full size, size and sha256 agree, and no source that
    was used before now shows another validator. Without a sha256, at least one source must be the
    same URL as before, so the earlier bytes are known to be the same version.
    """
    if state is None:
        return RangeSet(), "no earlier partial download"
    if size is None or state.size != size:
        return RangeSet(), f"size changed ({state.size} -> {size})"
    if part_size != size:
        return RangeSet(), "the .part file is missing or has the wrong size"
    if sha256 and state.sha256 and sha256.lower() != state.sha256.lower():
        return RangeSet(), "the expected sha256 changed"
    common = [url for url in validators_now if url in state.validators]
    for url in common:
        if same_version(state.validators[url], validators_now[url]) is False:
            return RangeSet(), f"the file changed on {url} since the last run (new validator)"
    if not common and not (sha256 or state.sha256):
        return RangeSet(), "no source in common with the last run and no sha256 to check a mix"
    done = state.done.clipped(size)
    if done.total() == 0:
        return done, "nothing done yet"
    return done, "resumed"
