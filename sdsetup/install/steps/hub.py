"""Hugging Face Hub files pre-seeded in the cache layout transformers reads:

    HF_HOME/hub/models--ORG--NAME/refs/main           -> COMMIT
    HF_HOME/hub/models--ORG--NAME/snapshots/COMMIT/FILE

Plain files in snapshots/ (no blobs/ symlinks) load fine with HF_HUB_OFFLINE=1. A branch revision is
resolved once, at install time, from the X-Repo-Commit header of the resolve URL (mirrors pass it on)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.layout import HF_HOME_REL
from sdsetup.install.steps.base import Step
from sdsetup.redact import redact_url
from sdsetup.i18n import t

HF = "https://huggingface.co"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def repo_folder(repo_id: str) -> str:
    return "models--" + repo_id.replace("/", "--")


def resolve_url(repo_id: str, revision: str, filename: str) -> str:
    return f"{HF}/{repo_id}/resolve/{revision}/{filename}"


def hub_rel(repo_id: str, *parts: str) -> str:
    return "/".join([HF_HOME_REL, "hub", repo_folder(repo_id), *parts])


def ref_name(spec: Any) -> str:
    """The ref the web UI asks for: transformers loads revision 'main' unless told otherwise."""
    return "main" if spec.pinned else spec.revision


def seeded_commit(install_dir: Path, spec: Any) -> str | None:
    """The commit the cache holds for this repo when every file is there, else None (no network)."""
    ref = install_dir / hub_rel(spec.repo_id, "refs", ref_name(spec))
    try:
        commit = ref.read_text("utf-8").strip()
    except OSError:
        return None
    if not _COMMIT.match(commit) or (spec.pinned and commit != spec.revision):
        return None
    snapshot = install_dir / hub_rel(spec.repo_id, "snapshots", commit)
    if all((snapshot / name).is_file() for name in spec.files):
        return commit
    return None


def api_revision(session: Any, settings: Any, url: str) -> tuple[str | None, str]:
    """(commit, "") from a Hub API revision document ({"sha": …}) over http(s) or file://, else (None, why)."""
    import json

    from sdsetup.net.localcopy import file_url_path, is_file_url
    from sdsetup.net.session import timeouts

    try:
        if is_file_url(url):
            text = file_url_path(url).read_text("utf-8")
        else:
            response = session.get(url, timeout=timeouts(settings))
            if response.status_code >= 400:
                return None, f"{redact_url(url)}: HTTP {response.status_code}"
            text = response.text
        commit = str(json.loads(text).get("sha") or "").strip().lower()
    except Exception as exc:  # unreachable, unreadable or not JSON: try the next source
        return None, f"{redact_url(url)}: {type(exc).__name__}"
    return (commit, "") if _COMMIT.match(commit) else (None, f"{redact_url(url)}: no commit in the answer")


def resolve_commit(session: Any, settings: Any, mirrors: Any, spec: Any) -> str:
    """The commit behind a branch revision, from the first source that names it."""
    from sdsetup.net.session import timeouts

    if spec.pinned:
        return spec.revision
    problems = []
    for url in mirrors.file_urls(resolve_url(spec.repo_id, spec.revision, spec.files[0])):
        try:
            response = session.head(url, allow_redirects=False, timeout=timeouts(settings))
        except Exception as exc:  # requests' errors: try the next source
            problems.append(f"{redact_url(url)}: {type(exc).__name__}")
            continue
        commit = (response.headers.get("X-Repo-Commit") or "").strip().lower()
        if response.status_code < 400 and _COMMIT.match(commit):
            return commit
        problems.append(f"{redact_url(url)}: HTTP {response.status_code}" + ("" if commit else ", no X-Repo-Commit header"))
    # A static mirror (an offline bundle, docs/bundle.md) sends no header: it serves the Hub API's answer.
    for url in mirrors.file_urls(f"{HF}/api/models/{spec.repo_id}/revision/{spec.revision}"):
        commit, problem = api_revision(session, settings, url)
        if commit:
            return commit
        problems.append(problem)
    raise SdsetupError(
        t("could not find which commit '{revision}' of {repo_id} is ({problems})", revision=spec.revision, repo_id=spec.repo_id,
          problems="; ".join(problems)),
        t("check the network or pick another Hugging Face mirror (--mirror huggingface=URL); "
          "a manifest can also pin the revision to a commit id"),
        ExitCode.NETWORK,
    )


class HubStep(Step):
    id = "hub"

    def __init__(self, hub: Any, mirrors: Any) -> None:
        self.hub = tuple(hub)
        self.mirrors = mirrors
        files = sum(len(spec.files) for spec in self.hub)
        self.title = t("{files} Hugging Face file(s) for {repos} into {hf_home}", files=files,
                       repos=", ".join(spec.repo_id for spec in self.hub), hf_home=HF_HOME_REL)

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "hf_home": HF_HOME_REL, "endpoint": self.mirrors.hf_endpoint, "repos": [
            {"repo_id": spec.repo_id, "revision": spec.revision, "pinned": spec.pinned, "path": hub_rel(spec.repo_id),
             "files": [{"filename": name, "url": resolve_url(spec.repo_id, spec.revision, name),
                        "urls": [redact_url(u) for u in self.mirrors.file_urls(resolve_url(spec.repo_id, spec.revision, name))]}
                       for name in spec.files]}
            for spec in self.hub]}

    def identity(self, ctx: Any) -> Any:
        return [{"repo_id": s.repo_id, "revision": s.revision, "files": list(s.files)} for s in self.hub]

    def is_done(self, ctx: Any) -> bool:
        return all(seeded_commit(ctx.install_dir, spec) for spec in self.hub)

    def bytes_needed(self) -> dict[str, int]:
        return {"install_dir": 10 * 1024 * 1024}

    def resolve_commit(self, ctx: Any, spec: Any) -> str:
        return resolve_commit(ctx.session, ctx.settings, self.mirrors, spec)

    def run(self, ctx: Any) -> dict[str, Any]:
        from sdsetup.fsutil import atomic_write_text
        from sdsetup.install.wheelhouse import download_specs
        from sdsetup.net.filespec import FileSpec

        commits = {}
        for spec in self.hub:
            commit = seeded_commit(ctx.install_dir, spec) or self.resolve_commit(ctx, spec)
            commits[spec.repo_id] = commit
            specs = []
            for name in spec.files:
                dest = ctx.path(hub_rel(spec.repo_id, "snapshots", commit, name))
                if dest.is_file():
                    continue
                # A pinned file is checked against its sha256 at every source (a mirror's other bytes
                # fail that source and the next is tried); the others are taken as served.
                specs.append(FileSpec(urls=self.mirrors.file_urls(resolve_url(spec.repo_id, commit, name)), dest=dest,
                                      sha256=spec.sha256_of(name), size=spec.size_of(name), label=f"{spec.repo_id}/{name}"))
            if specs:
                download_specs(ctx, specs)
            # The ref last: a cache with refs/main but missing files would make offline loads fail.
            atomic_write_text(ctx.path(hub_rel(spec.repo_id, "refs", ref_name(spec))), commit)
            ctx.reporter.detail(t("{repo_id} @ {commit}: {files} file(s)", repo_id=spec.repo_id, commit=commit[:10],
                                  files=len(spec.files)))
        return {"commits": commits}
