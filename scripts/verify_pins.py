#!/usr/bin/env python3
"""Check every pin of the install manifests against upstream, on a machine with the internet.

    python scripts/verify_pins.py                      # all built-in manifests
    python scripts/verify_pins.py --manifest a1111 --json

What is checked, and how (each row of the table is one pin):
- commit   `git ls-remote` of the repository (a `ref` that is a tag must point at the commit; a branch's
           head is shown), then `git fetch --depth=1` of the commit itself: it exists upstream.
           Archive URLs (github.com/OWNER/REPO/archive/COMMIT.zip) are checked as that commit.
- lfs      a Hub file stored in LFS: HEAD of resolve/REVISION/FILE without following the redirect; the
           `X-Linked-Etag` is the file's sha256 and `X-Linked-Size` its size. `X-Repo-Commit` must be the
           pinned revision.
- file     a small Hub file (no X-Linked-Etag): downloaded whole, sha256 and size compared.
- size     a second source of a checkpoint outside the Hub (ModelScope): its Content-Length (the sha256
           would need the whole download; the install checks it anyway).
- version  `name==version` exists on its index: PyPI's simple page, or the torch index of each tag.

Exit status: 0 when every pin checks out, 1 when any is wrong or could not be reached, 2 on bad usage.
Hosts can be pointed elsewhere (--github, --hub, --pypi, --torch): the tests run this against local
worlds that imitate each host.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdsetup.manifest import Manifest, builtin_names, load_manifest  # noqa: E402

GITHUB, HUB, PYPI, TORCH = "https://github.com/", "https://huggingface.co", "https://pypi.org/simple/", "https://download.pytorch.org/whl/"
USER_AGENT = "sdsetup-verify-pins/1"
OK, WRONG, UNREACHABLE = "ok", "WRONG", "UNREACHABLE"


@dataclass
class Row:
    manifest: str
    kind: str
    item: str
    pin: str
    status: str
    detail: str = ""


class Hosts:
    """Where each canonical host is asked (the real one unless a test points it at a local world)."""

    def __init__(self, github: str = GITHUB, hub: str = HUB, pypi: str = PYPI, torch: str = TORCH, timeout: float = 30) -> None:
        self.map = [(GITHUB, github), (HUB, hub.rstrip("/")), (PYPI, pypi), (TORCH, torch)]
        self.pypi = pypi
        self.timeout = timeout

    def url(self, canonical: str) -> str:
        for prefix, replacement in self.map:
            if canonical.startswith(prefix):
                return replacement + canonical[len(prefix):]
        return canonical


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # the Hub's LFS facts are on the redirect itself
        return None


def _open(url: str, hosts: Hosts, *, method: str = "GET", follow: bool = True):
    request = urllib.request.Request(url, method=method, headers={"User-Agent": USER_AGENT})
    opener = urllib.request.build_opener() if follow else urllib.request.build_opener(_NoRedirect)
    try:
        return opener.open(request, timeout=hosts.timeout)
    except urllib.error.HTTPError as exc:
        return exc  # a status like 302 or 404 is an answer, not a failure


def _short(value: str) -> str:
    return value[:12] if re.fullmatch(r"[0-9a-f]{40,64}", value) else value


# --- git ---------------------------------------------------------------------------------------------


def _git(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})


def check_commit(manifest: str, item: str, url: str, commit: str, ref: str | None, hosts: Hosts) -> Row:
    where = hosts.url(url)
    row = Row(manifest, "commit", item, _short(commit) + (f" ({ref})" if ref else ""), OK)
    try:
        listed = _git("ls-remote", where, timeout=hosts.timeout * 2)
    except subprocess.TimeoutExpired:
        listed = None
    if listed is None or listed.returncode != 0:
        row.status, row.detail = UNREACHABLE, f"git ls-remote {url} failed" + (f": {listed.stderr.strip().splitlines()[-1]}" if listed and listed.stderr.strip() else "")
        return row
    refs = {}
    for line in listed.stdout.splitlines():
        sha, _, name = line.partition("\t")
        refs[name] = sha
    notes = []
    if ref:
        tag = refs.get(f"refs/tags/{ref}^{{}}") or refs.get(f"refs/tags/{ref}")
        head = refs.get(f"refs/heads/{ref}")
        if tag and tag != commit:
            row.status, row.detail = WRONG, f"tag {ref} points at {tag[:12]}, not the pin"
            return row
        if tag:
            notes.append(f"tag {ref} = pin")
        elif head:
            notes.append(f"branch {ref} head {head[:12]}" + (" = pin" if head == commit else " (moved on: scripts/bump_report.py)"))
        else:
            notes.append(f"no ref {ref} upstream")
    with tempfile.TemporaryDirectory(prefix="verify-pins-") as scratch:
        _git("init", "-q", "--bare", scratch, timeout=hosts.timeout)
        try:
            fetched = _git("--git-dir", scratch, "fetch", "-q", "--depth=1", "--filter=blob:none", where, commit,
                           timeout=hosts.timeout * 10)
        except subprocess.TimeoutExpired:
            row.status, row.detail = UNREACHABLE, "git fetch of the commit timed out"
            return row
    if fetched.returncode != 0:
        row.status = WRONG
        notes.append("commit not found upstream (git fetch refused it)")
    else:
        notes.append("commit fetched")
    row.detail = "; ".join(notes)
    return row


def check_archive(manifest: str, item: str, url: str, hosts: Hosts) -> Row:
    match = re.match(r"^https://github\.com/([^/]+)/([^/]+)/archive/([0-9a-f]{40})\.(?:zip|tar\.gz)$", url)
    if not match:
        return Row(manifest, "archive", item, url, WRONG, "not a github.com/OWNER/REPO/archive/COMMIT URL: cannot be checked")
    owner, repo, commit = match.groups()
    row = check_commit(manifest, item, f"{GITHUB}{owner}/{repo}.git", commit, None, hosts)
    row.kind = "archive"
    return row


# --- Hugging Face ------------------------------------------------------------------------------------


def check_hub_file(manifest: str, item: str, url: str, sha256: str | None, size: int | None, hosts: Hosts,
                   revision: str | None = None) -> Row:
    """An LFS file by its X-Linked-Etag/X-Linked-Size; a small one by its whole bytes."""
    row = Row(manifest, "lfs", item, f"{_short(sha256 or '-')} {size if size is not None else '-'} B", OK)
    try:
        answer = _open(hosts.url(url), hosts, method="HEAD", follow=False)
    except (urllib.error.URLError, OSError) as exc:
        row.status, row.detail = UNREACHABLE, f"{url}: {exc}"
        return row
    if answer.status >= 400:
        row.status, row.detail = (WRONG if answer.status == 404 else UNREACHABLE), f"HTTP {answer.status} for {url}"
        return row
    notes = []
    repo_commit = (answer.headers.get("X-Repo-Commit") or "").strip()
    if revision and re.fullmatch(r"[0-9a-f]{40}", revision) and repo_commit and repo_commit != revision:
        row.status = WRONG
        notes.append(f"X-Repo-Commit {repo_commit[:12]} is not the pinned revision")
    linked = (answer.headers.get("X-Linked-Etag") or "").strip().strip('"').removeprefix("W/").strip('"')
    if linked:
        served_sha, served_size = linked, answer.headers.get("X-Linked-Size")
        served_size = int(served_size) if served_size and served_size.isdigit() else None
    else:
        row.kind = "file"
        try:
            body = _open(hosts.url(url), hosts).read()
        except (urllib.error.URLError, OSError) as exc:
            row.status, row.detail = UNREACHABLE, f"{url}: {exc}"
            return row
        served_sha, served_size = hashlib.sha256(body).hexdigest(), len(body)
    if sha256 and served_sha != sha256:
        row.status = WRONG
        notes.append(f"upstream sha256 {served_sha[:12]}")
    if size is not None and served_size is not None and served_size != size:
        row.status = WRONG
        notes.append(f"upstream size {served_size}")
    if not sha256:
        notes.append(f"unpinned; upstream sha256 {served_sha[:12]}, {served_size} B")
    row.detail = "; ".join(notes) or "matches"
    return row


def check_size_only(manifest: str, item: str, url: str, size: int | None, hosts: Hosts) -> Row:
    row = Row(manifest, "size", item, f"{size} B", OK)
    try:
        answer = _open(hosts.url(url), hosts, method="HEAD")
    except (urllib.error.URLError, OSError) as exc:
        row.status, row.detail = UNREACHABLE, f"{url}: {exc}"
        return row
    length = answer.headers.get("Content-Length")
    if answer.status >= 400:
        row.status, row.detail = WRONG if answer.status == 404 else UNREACHABLE, f"HTTP {answer.status} for {url}"
    elif size is not None and length and length.isdigit() and int(length) != size:
        row.status, row.detail = WRONG, f"upstream size {length}"
    else:
        row.detail = "size matches (sha256 is checked at download)" if length else "answers; no size given"
    return row


# --- package versions --------------------------------------------------------------------------------


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _versions_on_page(html: str, name: str) -> set[str]:
    found = set()
    for href in re.findall(r'href="([^"]+)"', html):
        filename = unquote(href.split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1])
        if filename.endswith(".whl"):
            parts = filename.split("-")
            dist, version = (parts[0], parts[1]) if len(parts) >= 5 else ("", "")
        else:
            stem = re.sub(r"\.(tar\.gz|zip|tar\.bz2)$", "", filename)
            dist, _, version = stem.rpartition("-")
        if _normalize(dist) == _normalize(name):
            found.add(version)
    return found


def check_version(manifest: str, item: str, requirement: str, index: str, hosts: Hosts, tag: str | None = None) -> Row | None:
    match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;,]+)\s*$", requirement)
    if not match:
        return None  # not an exact pin: nothing to prove
    name, version = match.groups()
    page_url = hosts.url(index.rstrip("/") + "/" + _normalize(name) + "/")
    row = Row(manifest, "version", item, f"{name}=={version}" + (f" [{tag}]" if tag else ""), OK)
    try:
        answer = _open(page_url, hosts)
        html = answer.read().decode("utf-8", "replace") if answer.status < 400 else ""
    except (urllib.error.URLError, OSError) as exc:
        row.status, row.detail = UNREACHABLE, f"{page_url}: {exc}"
        return row
    versions = _versions_on_page(html, name)
    wanted = {v for v in versions if v == version or v.startswith(version + "+")}
    if tag:  # a torch index lists its own builds as VERSION+TAG (some packages carry no local tag)
        wanted = {v for v in wanted if v in (version, f"{version}+{tag}")}
    if not wanted:
        row.status = WRONG
        row.detail = f"no {name} {version} on {index.rstrip('/')}/" + (f" ({len(versions)} other versions)" if versions else "")
    else:
        row.detail = "exists: " + ", ".join(sorted(wanted))
    return row


# --- one manifest ------------------------------------------------------------------------------------


def verify_manifest(manifest: Manifest, hosts: Hosts) -> list[Row]:
    name = manifest.name
    rows = [check_commit(name, "webui", manifest.webui.url, manifest.webui.commit, manifest.webui.ref, hosts)]
    for repo in manifest.repositories:
        for url in repo.urls:  # a fork named as fallback must hold the same commit
            item = f"repositories/{repo.name}" + ("" if url == repo.url else f" @ {urlsplit(url).path.strip('/')}")
            rows.append(check_commit(name, item, url, repo.commit, repo.ref, hosts))
    for step in manifest.pip:
        for url in step.archives:
            rows.append(check_archive(name, f"pip/{step.name}", url, hosts))
        for requirement in step.packages:
            rows.append(check_version(name, f"pip/{step.name}", requirement, hosts.pypi, hosts))
    for backend, spec in manifest.torch.items():
        wanted = [*spec.packages]
        if spec.index and "{tag}" in spec.index:
            for tag in spec.tags:
                for requirement in wanted:
                    rows.append(check_version(name, f"torch.{backend}", requirement, spec.index.replace("{tag}", tag), hosts, tag))
        else:
            for requirement in wanted:
                rows.append(check_version(name, f"torch.{backend}", requirement, spec.index or hosts.pypi, hosts))
        if spec.xformers:
            rows.append(check_version(name, f"torch.{backend}", spec.xformers, hosts.pypi, hosts))
    for requirement in manifest.smoke.packages:
        rows.append(check_version(name, "smoke", requirement, hosts.pypi, hosts))
    for model in manifest.models:
        for url in (*model.urls, *model.alternates):
            if url.startswith(HUB + "/"):
                rows.append(check_hub_file(name, f"model {Path(model.path).name} @ {urlsplit(url).netloc}{urlsplit(url).path.split('/resolve/')[0]}",
                                           url, model.sha256, model.size, hosts))
            else:
                rows.append(check_size_only(name, f"model {Path(model.path).name} @ {urlsplit(url).netloc}", url, model.size, hosts))
    for spec in manifest.hub:
        for filename in spec.files:
            url = f"{HUB}/{spec.repo_id}/resolve/{spec.revision}/{filename}"
            rows.append(check_hub_file(name, f"hub {spec.repo_id}/{filename}", url, spec.sha256_of(filename), spec.size_of(filename),
                                       hosts, revision=spec.revision))
    return [row for row in rows if row is not None]


def render(rows: list[Row]) -> str:
    headers = ("manifest", "kind", "item", "pin", "result", "detail")
    table = [headers] + [(r.manifest, r.kind, r.item, r.pin, r.status, r.detail) for r in rows]
    widths = [min(max(len(str(line[i])) for line in table), 60) for i in range(len(headers) - 1)]
    lines = []
    for line in table:
        cells = [str(value)[:60].ljust(widths[i]) for i, value in enumerate(line[:-1])]
        lines.append("  ".join(cells + [str(line[-1])]).rstrip())
    bad = sum(r.status != OK for r in rows)
    lines.append(f"{len(rows)} pins checked, {bad} wrong or unreachable")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", action="append", help="a built-in name or a .toml path (repeatable; default: all built-in)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--github", default=GITHUB, help="base URL standing in for https://github.com/")
    parser.add_argument("--hub", default=HUB, help="base URL standing in for https://huggingface.co")
    parser.add_argument("--pypi", default=PYPI, help="PEP 503 index standing in for https://pypi.org/simple/")
    parser.add_argument("--torch", default=TORCH, help="base URL standing in for https://download.pytorch.org/whl/")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request (git fetch gets ten times that)")
    args = parser.parse_args(argv)
    hosts = Hosts(args.github, args.hub, args.pypi, args.torch, args.timeout)
    rows: list[Row] = []
    for item in args.manifest or builtin_names():
        try:
            manifest = load_manifest(item)
        except Exception as exc:  # noqa: BLE001 - one line naming the manifest, not a traceback
            print(f"verify_pins: {item}: {getattr(exc, 'message', exc)}", file=sys.stderr)
            return 2
        rows += verify_manifest(manifest, hosts)
    print(json.dumps([asdict(r) for r in rows], indent=1) if args.json else render(rows))
    return 0 if all(r.status == OK for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
