"""bundle.lock.json: what a bundle holds - every file's relative path, sha256 and size, every
repository's pin, the Hub revisions resolved - and the comparison `bundle verify` reports (pure)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from sdsetup.bundle.layout import LOCK_NAME, is_safe_rel
from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.i18n import t

LOCK_SCHEMA = 1


@dataclass(frozen=True)
class LockedFile:
    path: str  # relative to the bundle root, POSIX
    sha256: str
    size: int
    kind: str


@dataclass(frozen=True)
class LockedRepo:
    name: str
    path: str  # the bare repository, relative to the bundle root
    url: str  # canonical clone URL
    commit: str


@dataclass(frozen=True)
class BundleLock:
    manifest: Mapping[str, Any]  # name, title, webui commit
    target: Mapping[str, Any]  # Target.to_json()
    backend: str
    torch_tag: str | None
    files: tuple[LockedFile, ...]
    repos: tuple[LockedRepo, ...]
    hub: tuple[Mapping[str, str], ...] = ()  # repo_id, revision, commit
    created_by: str = ""
    schema: int = LOCK_SCHEMA
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "created_by": self.created_by,
            "manifest": dict(self.manifest),
            "target": dict(self.target),
            "backend": self.backend,
            "torch_tag": self.torch_tag,
            "files": [asdict(f) for f in self.files],
            "repos": [asdict(r) for r in self.repos],
            "hub": [dict(h) for h in self.hub],
            **({"extra": dict(self.extra)} if self.extra else {}),
        }

    @classmethod
    def from_json(cls, data: Any, origin: str) -> "BundleLock":
        def bad(problem: str) -> SdsetupError:
            return SdsetupError(f"{origin}: {problem}",
                                t("the lock file is damaged: rebuild it with `sdsetup bundle create` (it resumes; only what "
                                  "is missing is fetched)"), ExitCode.INTEGRITY)

        if not isinstance(data, dict):
            raise bad("not a JSON object")
        if data.get("schema") != LOCK_SCHEMA:
            raise bad(f"schema {data.get('schema')!r} is not {LOCK_SCHEMA}")
        try:
            files = tuple(LockedFile(str(f["path"]), str(f["sha256"]), int(f["size"]), str(f.get("kind", "other")))
                          for f in data["files"])
            repos = tuple(LockedRepo(str(r["name"]), str(r["path"]), str(r["url"]), str(r["commit"])) for r in data["repos"])
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(f"an entry lacks a field or has a bad value ({exc})") from None
        for item in (*files, *repos):
            if not is_safe_rel(item.path):
                raise bad(f"path '{item.path}' is not a plain relative path")
        sections = {}
        for key in ("manifest", "target", "extra"):
            if not isinstance(data.get(key) or {}, dict):
                raise bad(f"'{key}' is not a JSON object")
            sections[key] = dict(data.get(key) or {})
        hub = data.get("hub") or []
        if not isinstance(hub, list) or not all(isinstance(h, dict) for h in hub):
            raise bad("'hub' is not a list of JSON objects")
        return cls(
            manifest=sections["manifest"],
            target=sections["target"],
            backend=str(data.get("backend", "")),
            torch_tag=data.get("torch_tag"),
            files=files,
            repos=repos,
            hub=tuple(dict(h) for h in hub),
            created_by=str(data.get("created_by", "")),
            extra=sections["extra"],
        )


def load_lock(out: Path) -> BundleLock | None:
    """The lock of the bundle at OUT, None when there is none."""
    from sdsetup.tomlcompat import not_text

    path = Path(out) / LOCK_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SdsetupError(t("cannot read {path}: {strerror}",
                             path=path, strerror=exc.strerror or exc), t("check the path and its permissions"),
                             ExitCode.FAILED) from None
    # Bytes that are no JSON text at all are not a lock (exit 2, like a folder without one); a JSON lock
    # with wrong entries is a damaged one (exit 4, from_json).
    rebuild = "give the folder `sdsetup bundle create` wrote, or run bundle create again to rewrite its lock"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SdsetupError(t("{path} {raw}, so it is not a bundle lock",
                             path=path, raw=not_text(raw)), rebuild, ExitCode.USAGE) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SdsetupError(t("{path}: not valid JSON ({exc})", path=path, exc=exc), rebuild, ExitCode.USAGE) from None
    except RecursionError:
        raise SdsetupError(t("{path} nests too deeply to read, so it is not a bundle lock",
                             path=path), rebuild, ExitCode.USAGE) from None
    return BundleLock.from_json(data, str(path))


def compare(files: Sequence[LockedFile], observed: Mapping[str, tuple[int, str] | None]) -> list[dict[str, Any]]:
    """One finding per locked file that is missing or differs: what was expected and what is there.

    `observed`: path -> (size, sha256) of the file found, or None when it is not there."""
    findings = []
    for locked in files:
        seen = observed.get(locked.path)
        base = {"path": locked.path, "kind": locked.kind, "expected_size": locked.size, "expected_sha256": locked.sha256}
        if seen is None:
            findings.append({**base, "problem": "missing", "actual_size": None, "actual_sha256": None})
            continue
        size, digest = seen
        if size != locked.size:
            findings.append({**base, "problem": "size", "actual_size": size, "actual_sha256": digest})
        elif digest != locked.sha256:
            findings.append({**base, "problem": "sha256", "actual_size": size, "actual_sha256": digest})
    return findings


def extra_files(files: Sequence[LockedFile], present: Sequence[str]) -> list[str]:
    """Files in the tree the lock does not name (not an error: a static server just serves them)."""
    locked = {f.path for f in files}
    return sorted(p for p in present if p not in locked)
