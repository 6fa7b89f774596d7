"""The generated files of a bundle (pure): PEP 503 index pages and the mirror profile file."""

from __future__ import annotations

import html
import json
import posixpath
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import quote

from sdsetup.bundle.layout import PROFILE
from sdsetup.versions import project_name


@dataclass(frozen=True)
class IndexEntry:
    root: str  # "pypi/simple" or "torch/<tag>"
    project: str
    rel: str  # the file's path in the bundle
    sha256: str
    requires_python: str | None = None


def index_pages(entries: Iterable[IndexEntry]) -> dict[str, str]:
    """{relative path: HTML} for every index root: ROOT/index.html and ROOT/<project>/index.html.

    Links are relative (the bundle works under any base URL, file:// included) and carry the sha256
    pip checks; `data-requires-python` is kept where the index gave it."""
    roots: dict[str, dict[str, dict[str, IndexEntry]]] = {}
    for entry in entries:
        projects = roots.setdefault(entry.root, {})
        projects.setdefault(project_name(entry.project), {})[entry.rel] = entry
    pages: dict[str, str] = {}
    for root, projects in sorted(roots.items()):
        links = "".join(f'<a href="{html.escape(p)}/">{html.escape(p)}</a>\n' for p in sorted(projects))
        pages[f"{root}/index.html"] = _page("Simple index", links)
        for project, files in sorted(projects.items()):
            page_dir = f"{root}/{project}"
            rows = []
            for rel, entry in sorted(files.items(), key=lambda item: posixpath.basename(item[0])):
                href = quote(posixpath.relpath(rel, page_dir), safe="/")
                attrs = f' data-requires-python="{html.escape(entry.requires_python)}"' if entry.requires_python else ""
                rows.append(f'<a href="{html.escape(href)}#sha256={entry.sha256}"{attrs}>{html.escape(posixpath.basename(rel))}</a><br>\n')
            pages[f"{page_dir}/index.html"] = _page(f"Links for {project}", "".join(rows))
    return pages


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html>\n<head><meta name=\"pypi:repository-version\" content=\"1.0\">"
            f"<title>{html.escape(title)}</title></head>\n<body>\n{body}</body>\n</html>\n")


def revision_document(repo_id: str, revision: str, commit: str) -> str:
    """What the Hub API answers for /api/models/REPO/revision/REV (the fields sdsetup reads)."""
    return json.dumps({"id": repo_id, "modelId": repo_id, "revision": revision, "sha": commit}, indent=2) + "\n"


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def profile_text(base_url: str, description: str) -> str:
    """A config file selecting a profile that sends every channel to BASE, in exactly the layout of
    MirrorPlan.single_base (use it with `sdsetup install --config FILE`, or copy the table into yours)."""
    base = base_url.rstrip("/")
    return (
        "# sdsetup mirror profile for an offline bundle (written by `sdsetup bundle create`).\n"
        "# Use it with:  sdsetup install DIR --config sdsetup-mirror.toml\n"
        "# (the same as: sdsetup install DIR --mirror-url BASE). If the bundle is served from another\n"
        "# address, change the URLs below, or rebuild the file with `sdsetup bundle create OUT --base-url URL`.\n"
        f"mirror = {_toml_string(PROFILE)}\n\n"
        f"[profiles.{PROFILE}]\n"
        f"description = {_toml_string(description)}\n"
        f"pypi = [{{ name = \"bundle\", url = {_toml_string(base + '/pypi/simple/')}, files = {_toml_string(base + '/pypi/packages/')} }}]\n"
        f"torch = [{{ name = \"bundle\", url = {_toml_string(base + '/torch/{tag}/')}, layout = \"simple\" }}]\n"
        f"github = [{{ name = \"bundle\", url = {_toml_string(base + '/git/')}, style = \"host\", raw = {_toml_string(base + '/raw/')} }}]\n"
        f"huggingface = [{{ name = \"bundle\", url = {_toml_string(base + '/hf')} }}]\n"
    )
