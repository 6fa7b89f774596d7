"""URL rewriting (pure string work; every function here is table-tested): a canonical URL (github.com,
pypi.org and its files host, download.pytorch.org, huggingface.co) as a mirror serves it, and back."""

from __future__ import annotations

import re
from typing import Iterable
from urllib.parse import urlsplit

from sdsetup.errors import usage_error
from sdsetup.i18n import t
from sdsetup.net.mirror_profiles import GITHUB, GITHUB_KINDS, HF_ENDPOINT, PYPI_FILES, PYPI_SIMPLE, RAW_GITHUB, TORCH_BASE, Mirror

_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")




def _split_github(url: str) -> tuple[str, str] | None:
    """(kind, canonical URL) for a GitHub URL, or None. Kinds: git, archive, release, raw, page.

    codeload.github.com archive URLs become their github.com/…/archive/… form, which every proxy style
    understands (prefix proxies reject codeload)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or parts.username or parts.port:
        return None
    host = (parts.hostname or "").lower()
    path = parts.path
    query = f"?{parts.query}" if parts.query else ""
    if host == "raw.githubusercontent.com":
        return ("raw", RAW_GITHUB + path.lstrip("/") + query) if path.count("/") >= 4 else None
    if host == "codeload.github.com":
        match = re.match(r"^/([^/]+)/([^/]+)/(zip|tar\.gz)/(.+)$", path)
        if not match:
            return None
        owner, repo, kind, ref = match.groups()
        return "archive", f"{GITHUB}{owner}/{repo}/archive/{ref}.{'zip' if kind == 'zip' else 'tar.gz'}"
    if host not in ("github.com", "www.github.com"):
        return None
    segments = path.strip("/").split("/")
    if len(segments) < 2 or not all(segments[:2]):
        return None
    canonical = GITHUB + path.lstrip("/") + query
    rest = segments[2:]
    if not rest or rest[0] in ("info", "git-upload-pack", "git-receive-pack", "HEAD", "objects"):
        return "git", canonical
    if rest[0] == "archive":
        return "archive", canonical
    if rest[:2] == ["releases", "download"]:
        return "release", canonical
    if rest[0] == "raw":
        return "raw", canonical
    return "page", canonical


def rewrite_github(url: str, mirror: Mirror) -> str | None:
    """The URL as `mirror` serves it, or None when the mirror cannot serve it."""
    split = _split_github(url)
    if split is None:
        return None
    kind, canonical = split
    if kind == "page":
        if mirror.style != "host" or mirror.serves != GITHUB_KINDS:
            return None  # prefix proxies only pass git, archive, release and raw paths
    elif kind not in mirror.serves:
        return None
    if mirror.style == "prefix":
        return mirror.url + canonical
    if canonical.startswith(RAW_GITHUB):
        tail = canonical[len(RAW_GITHUB):]
        if mirror.raw:
            return mirror.raw + tail
        owner, repo, ref_path = tail.split("/", 2)  # github.com serves the same file at /OWNER/REPO/raw/REF/PATH
        return f"{mirror.url}{owner}/{repo}/raw/{ref_path}"
    return mirror.url + canonical[len(GITHUB):]


def _split_torch(url: str) -> tuple[str, str] | None:
    """(tag, rest) for https://download.pytorch.org/whl/TAG/REST (REST: '' or a wheel file name)."""
    if not url.startswith(TORCH_BASE):
        return None
    tail = url[len(TORCH_BASE):]
    tag, sep, rest = tail.partition("/")
    if not sep or not _TAG.match(tag) or "/" in rest.rstrip("/"):
        return None
    return tag, rest


def torch_index_url(mirror: Mirror, tag: str) -> str:
    if not _TAG.match(tag or ""):
        raise usage_error(t("'{tag}' is not a torch wheel tag", tag=tag), t("tags look like cu121, cu128, cpu or rocm6.1"))
    return mirror.url.replace("{tag}", tag)


def rewrite_for(mirror: Mirror, url: str) -> str | None:
    """`url` (on a canonical host of mirror.channel) as served by `mirror`; None when not applicable."""
    if mirror.channel == "github":
        return rewrite_github(url, mirror)
    if mirror.channel == "huggingface":
        for host in (HF_ENDPOINT, "https://hf.co"):
            if url == host or url.startswith(host + "/"):
                return mirror.url + url[len(host):]
        return None
    if mirror.channel == "torch":
        split = _split_torch(url)
        return torch_index_url(mirror, split[0]) + split[1] if split else None
    if url.startswith(PYPI_SIMPLE):
        return mirror.url + url[len(PYPI_SIMPLE):]
    if url.startswith(PYPI_FILES) and mirror.files:
        return mirror.files + url[len(PYPI_FILES):]
    return None


def channel_of(url: str) -> str | None:
    """Which channel's mirrors can serve `url` (None: only user rewrite rules apply)."""
    if _split_github(url):
        return "github"
    if url.startswith((HF_ENDPOINT + "/", "https://hf.co/")):
        return "huggingface"
    if _split_torch(url):
        return "torch"
    if url.startswith((PYPI_SIMPLE, PYPI_FILES)):
        return "pypi"
    return None


def _ordered_unique(urls: Iterable[str | None], last: str) -> tuple[str, ...]:
    seen = {last}
    out = []
    for url in urls:
        if url and url not in seen:
            seen.add(url)
            out.append(url)
    return (*out, last)


def canonical_of(mirror: Mirror, url: str) -> str | None:
    """The canonical URL of a file `mirror` serves at `url` (the reverse of rewrite_for, for files: a
    wheel on a PyPI mirror's files host or a torch mirror's tag folder); None when it is not one."""
    if mirror.channel == "pypi":
        for base in (mirror.files, PYPI_FILES if mirror.url == PYPI_SIMPLE else None):
            if base and url.startswith(base) and len(url) > len(base):
                return PYPI_FILES + url[len(base):]
        return None
    if mirror.channel == "torch":
        head, _, tail = mirror.url.partition("{tag}")
        if not url.startswith(head):
            return None
        rest = url[len(head):]
        tag, sep, name = rest.partition(tail or "/")
        if sep and _TAG.match(tag) and name and "/" not in name:
            return f"{TORCH_BASE}{tag}/{name}"
    return None
