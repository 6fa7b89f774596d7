"""A launch-time repository at its pin under repositories/, so the web UI's own git_clone finds
HEAD == pin and touches no network (facts §1.4)."""

from __future__ import annotations

from typing import Any

from sdsetup.install.failover import failover_order
from sdsetup.install.steps.base import Step
from sdsetup.redact import redact_url
from sdsetup.i18n import t


class RepoStep(Step):
    def __init__(self, repo: Any, mirrors: Any, size_bytes: int) -> None:
        self.repo = repo
        self.id = f"repo:{repo.path.rsplit('/', 1)[-1]}"
        self.title = t("{name} at {commit}", name=repo.name, commit=repo.commit[:10])
        self.urls = failover_order([mirrors.git_urls(url) for url in repo.urls])
        self.size_bytes = size_bytes

    def describe(self) -> dict[str, Any]:
        doc = {"id": self.id, "title": self.title, "name": self.repo.name, "path": self.repo.path,
               "commit": self.repo.commit, "url": self.repo.url, "urls": [redact_url(u) for u in self.urls]}
        if self.repo.replaces:
            doc["replaces"] = self.repo.replaces
        if self.repo.url_env:
            doc["env"] = {self.repo.url_env: self.repo.url, **({self.repo.commit_env: self.repo.commit} if self.repo.commit_env else {})}
        return doc

    def identity(self, ctx: Any) -> Any:
        return {"path": self.repo.path, "commit": self.repo.commit}

    def is_done(self, ctx: Any) -> bool:
        from sdsetup.gitops import head_commit

        return head_commit(ctx.path(self.repo.path), ctx.git_runner()) == self.repo.commit

    def bytes_needed(self) -> dict[str, int]:
        return {"install_dir": self.size_bytes}

    def run(self, ctx: Any) -> dict[str, Any]:
        from sdsetup.gitops import checkout_pinned

        path = ctx.path(self.repo.path)
        result = checkout_pinned(path, self.urls, self.repo.commit, runner=ctx.git_runner(), name=self.repo.name,
                                 origin=self.repo.url, log=ctx.reporter.log.info, say=ctx.reporter.detail, proxy=ctx.mirrors.proxy)
        ctx.reporter.detail(t("from {url} (shallow)", url=redact_url(result.url)) if result.shallow
                            else t("from {url}", url=redact_url(result.url)))
        return {"url": redact_url(result.url), "shallow": result.shallow}
