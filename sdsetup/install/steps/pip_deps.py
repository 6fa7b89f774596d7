"""One pip step after torch, in the web UI's order (build tools, CLIP, open_clip, the requirements
file): resolved by pip, downloaded by sdsetup's engine, installed from the wheelhouse, with torch held
by the constraint file. Source archives (GitHub zips) are fetched through the mirror layer first."""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import urlsplit

from sdsetup.install.steps.base import Step
from sdsetup.redact import redact_url
from sdsetup.i18n import t


def archive_filename(url: str) -> str:
    """github.com/OWNER/REPO/archive/REF.zip -> REPO-REF.zip (two archives never share a name)."""
    path = urlsplit(url).path.strip("/")
    parts = path.split("/")
    name = parts[-1] or "archive"
    if len(parts) >= 4 and parts[2] == "archive":
        name = f"{parts[1]}-{name}"
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name)


class PipStep(Step):
    def __init__(self, step: Any, mirrors: Any, size_bytes: int) -> None:
        self.step = step
        self.id = f"pip:{step.name}"
        self.mirrors = mirrors
        self.index_args = list(mirrors.pip_index_args())
        self.archive_urls = {url: mirrors.file_urls(url) for url in step.archives}
        what = [*step.packages, *(archive_filename(u) for u in step.archives)]
        if step.requirements_file:
            what.append(f"-r {step.requirements_file}")
        self.title = f"{step.name}: {' '.join(what)}" + (" (--no-build-isolation)" if step.no_build_isolation else "")
        self.size_bytes = size_bytes

    def describe(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": self.id, "title": self.title, "packages": list(self.step.packages),
                               "no_build_isolation": self.step.no_build_isolation,
                               "index_args": [redact_url(a) for a in self.index_args]}
        if self.step.archives:
            doc["archives"] = [{"url": url, "urls": [redact_url(u) for u in urls]} for url, urls in self.archive_urls.items()]
        if self.step.requirements_file:
            doc["requirements_file"] = self.step.requirements_file
        return doc

    def identity(self, ctx: Any) -> Any:
        requirements_sha = None
        if self.step.requirements_file:
            try:
                requirements_sha = hashlib.sha256(ctx.path(self.step.requirements_file).read_bytes()).hexdigest()
            except OSError:
                requirements_sha = "missing"
        try:
            constraints = ctx.constraints_file.read_text("utf-8")
        except OSError:
            constraints = None
        return {"packages": list(self.step.packages), "archives": list(self.step.archives),
                "requirements_sha256": requirements_sha, "no_build_isolation": self.step.no_build_isolation,
                "constraints": constraints}

    def is_done(self, ctx: Any) -> bool:
        return ctx.python.exists() and super().is_done(ctx)

    def bytes_needed(self) -> dict[str, int]:
        return {"install_dir": self.size_bytes}

    def run(self, ctx: Any) -> dict[str, Any]:
        from sdsetup.errors import ExitCode, SdsetupError
        from sdsetup.install import wheelhouse
        from sdsetup.net.filespec import FileSpec

        requirements = list(self.step.packages)
        if self.archive_urls:
            ctx.wheelhouse.mkdir(parents=True, exist_ok=True)
            specs = [FileSpec(urls=urls, dest=ctx.wheelhouse / archive_filename(url), label=archive_filename(url))
                     for url, urls in self.archive_urls.items()]
            wheelhouse.download_specs(ctx, specs)
            requirements += [str(spec.dest) for spec in specs]
        if self.step.requirements_file:
            path = ctx.path(self.step.requirements_file)
            if not path.is_file():
                raise SdsetupError(t("{requirements_file} is not in the web UI checkout",
                                     requirements_file=self.step.requirements_file),
                                   t("the manifest names a requirements file the pinned commit does not have"), ExitCode.USAGE)
            requirements += ["-r", str(path)]
        picks = wheelhouse.resolve_fetch_install(
            ctx, requirements, index_args=self.index_args, label=self.step.name,
            no_build_isolation=self.step.no_build_isolation, constraints=ctx.constraints_file,
        )
        return {"installed": [f"{p.name}=={p.version}" for p in picks]}
