"""Where each thing lives in a bundle (pure).

The layout is not defined here: it is `MirrorPlan.single_base`'s (docs/mirrors.md, "One base URL for
every channel"). A canonical URL's place in the bundle is the path the single-base plan rewrites it to,
so `bundle create` writes exactly where `sdsetup install --mirror-url BASE` will look:

    pypi/simple/<project>/index.html        PEP 503 pages (links carry #sha256=)
    pypi/packages/…                         the files they link to
    torch/<tag>/<project>/index.html        PEP 503 pages of the torch channel, files in torch/<tag>/
    git/<owner>/<repo>.git                  bare repositories (dumb HTTP: info/refs, objects/info/packs)
    git/<owner>/<repo>/archive/<ref>.zip    source archives pip builds (CLIP, open_clip)
    hf/<repo>/resolve/<rev>/<file>          models and Hugging Face files
    hf/api/models/<repo>/revision/<rev>     {"sha": COMMIT}: the commit a branch revision names
    bundle.lock.json, sdsetup-mirror.toml   the lock and a mirror profile pointing at the bundle
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import unquote, urlsplit

LOCK_NAME = "bundle.lock.json"
PROFILE_NAME = "sdsetup-mirror.toml"
STATE_DIR = ".sdsetup-bundle"  # resume state and the scratch venv; not part of what is served
PROFILE = "bundle"  # the profile name inside sdsetup-mirror.toml
HF = "https://huggingface.co"

# A placeholder base: only the paths below it matter.
_BASE = "http://bundle.invalid"
# Leftovers of an interrupted download next to its destination: never part of a bundle.
TRANSIENT_SUFFIXES = (".part", ".part.json", ".lock", ".lock.owner")
_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9._+@=~,-][A-Za-z0-9._+@=~,%-]*$")


@lru_cache(maxsize=1)
def _plan():
    from sdsetup.net.mirrors import MirrorPlan

    return MirrorPlan.single_base(_BASE)


def _rel_of(url: str) -> str | None:
    if not url.startswith(_BASE + "/"):
        return None
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        return None
    rel = unquote(parts.path).lstrip("/")
    return rel if is_safe_rel(rel) else None


def is_safe_rel(rel: str) -> bool:
    """A relative POSIX path with plain segments: no '..', no absolute path, no odd characters."""
    segments = rel.split("/")
    return bool(rel) and all(seg not in ("", ".", "..") and _SAFE_SEGMENT.match(seg) for seg in segments)


def file_rel(canonical_url: str) -> str | None:
    """Where a file behind a canonical URL (GitHub archive/release/raw, Hugging Face, PyPI files, torch
    index files) sits in a bundle; None when no channel covers the URL (another host)."""
    return _rel_of(_plan().file_urls(canonical_url)[0])


def repo_rel(clone_url: str) -> str | None:
    """Where the bare repository for a GitHub clone URL sits (git/<owner>/<repo>.git)."""
    return _rel_of(_plan().git_urls(clone_url)[0])


def hf_resolve_url(repo_id: str, revision: str, filename: str) -> str:
    return f"{HF}/{repo_id}/resolve/{revision}/{filename}"


def hf_revision_url(repo_id: str, revision: str) -> str:
    """The Hub API answer for a revision ({"sha": …}); the install reads it when no X-Repo-Commit
    header comes back (a static server sends none)."""
    return f"{HF}/api/models/{repo_id}/revision/{revision}"


def wheel_rel(url: str, filename: str, *, channel: str, tag: str | None) -> str:
    """Where a file pip picked is stored: torch channel files in torch/<tag>/, others under
    pypi/packages/ keeping the `files.pythonhosted.org/packages/…` sub-path when the URL has one."""
    if channel == "torch":
        return f"torch/{tag}/{filename}"
    path = unquote(urlsplit(url).path)
    marker = "/packages/"
    if marker in path:
        rest = path.rsplit(marker, 1)[1]
        if rest.endswith("/" + filename) or rest == filename:
            rel = f"pypi/packages/{rest}"
            if is_safe_rel(rel):
                return rel
    return f"pypi/packages/{filename}"


def index_root(channel: str, tag: str | None) -> str:
    return "pypi/simple" if channel == "pypi" else f"torch/{tag}"


def torch_prefixes(mirror_plan) -> tuple[str, ...]:
    """URL prefixes of the torch channel's candidates (everything before {tag}) and of the upstream
    index: a file pip picked from under one of them belongs to the bundle's torch channel."""
    from sdsetup.net.mirror_profiles import TORCH_BASE

    prefixes = [m.url.split("{tag}", 1)[0] for m in mirror_plan.channels["torch"]]
    prefixes.append(TORCH_BASE)
    return tuple(dict.fromkeys(p for p in prefixes if p))


def channel_of_pick(url: str, prefixes: tuple[str, ...]) -> str:
    return "torch" if any(url.startswith(p) for p in prefixes) else "pypi"


def kind_of(rel: str) -> str:
    """What a file in a bundle is, for people reading `bundle verify`."""
    if rel in (LOCK_NAME, PROFILE_NAME):
        return "meta"
    if rel.startswith(("pypi/simple/", "torch/")) and rel.endswith("index.html"):
        return "index"
    if rel.startswith(("pypi/packages/", "torch/")):
        return "package"
    if rel.startswith("git/"):
        return "archive" if "/archive/" in rel and ".git/" not in rel else "repository"
    if rel.startswith("hf/api/"):
        return "hub-revision"
    if rel.startswith("hf/"):
        return "hub-file"
    return "other"


def is_transient(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return name.endswith(TRANSIENT_SUFFIXES)
