"""Models through the download engine: mirrors first, verified by sha256 and size, written to a
partial file and moved into place only when verified (a corrupt download never sits at the final path)."""

from __future__ import annotations

from typing import Any

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.i18n import t
from sdsetup.install.failover import model_sources
from sdsetup.install.steps.base import Step
from sdsetup.redact import redact_url


def file_matches(ctx: Any, path, sha256: str | None, size: int | None) -> bool:
    """The file is there with the expected size and hash (the hash cache makes a rerun instant)."""
    try:
        stat = path.stat()
    except OSError:
        return False
    if size is not None and stat.st_size != size:
        return False
    if sha256 is None:
        return True
    digest, _cached = ctx.hash_cache.sha256(path)
    return digest == sha256


class ModelsStep(Step):
    id = "models"

    def __init__(self, models: Any, mirrors: Any) -> None:
        self.models = tuple(models)
        self.urls = {m.path: model_sources([mirrors.file_urls(url) for url in m.urls], m.alternates) for m in self.models}
        total = sum(m.size or 0 for m in self.models)
        from sdsetup.fsutil import human_bytes

        self.title = t("{count} model file(s), {size}", count=len(self.models), size=human_bytes(total))

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "files": [
            {"name": m.name, "path": m.path, "sha256": m.sha256, "size": m.size, "url": m.url,
             "urls": [redact_url(u) for u in self.urls[m.path]]} for m in self.models]}

    def identity(self, ctx: Any) -> Any:
        return [{"path": m.path, "sha256": m.sha256, "size": m.size} for m in self.models]

    def is_done(self, ctx: Any) -> bool:
        from pathlib import Path

        from sdsetup.model_store import load_shared

        shared = load_shared(ctx.install_dir)
        return all(file_matches(ctx, ctx.path(m.path), m.sha256, m.size)
                   or (m.path in shared and file_matches(ctx, Path(shared[m.path]), m.sha256, m.size)) for m in self.models)

    def bytes_needed(self) -> dict[str, int]:
        return {"install_dir": sum(m.size or 0 for m in self.models)}

    def run(self, ctx: Any) -> dict[str, Any]:
        from sdsetup.install.wheelhouse import download_specs
        from sdsetup.net.filespec import FileSpec

        from sdsetup.model_store import load_shared, save_shared, sibling_copy, take_from_sibling

        shared = load_shared(ctx.install_dir)
        specs = []
        for model in self.models:
            dest = ctx.path(model.path)
            if file_matches(ctx, dest, model.sha256, model.size):
                shared.pop(model.path, None)
                continue
            if dest.exists():
                # Never replace what the user put there: a different file under this name is theirs.
                raise SdsetupError(
                    t("{path} exists but is not the manifest's file (size or sha256 differ)", path=model.path),
                    t("move it away or rename it (sdsetup does not overwrite it), then run again"),
                    ExitCode.INTEGRITY,
                )
            # Another install beside this one has the same file: no second download.
            source = sibling_copy(ctx.install_dir, model.sha256, lambda p, m=model: file_matches(ctx, p, m.sha256, m.size))
            how = take_from_sibling(source, dest, model.sha256) if source is not None else None
            if how in ("linked", "copied"):
                shared.pop(model.path, None)
                ctx.hash_cache.remember(dest, model.sha256)
                ctx.reporter.detail(t("{name}: hard link to {source} (no download)", name=dest.name, source=source) if how == "linked"
                                    else t("{name}: copied from {source} (another user's file; no download)", name=dest.name, source=source))
                continue
            if how == "shared":  # the UI's own model-path setting points at it (the launch step writes it)
                shared[model.path] = str(source)
                ctx.reporter.detail(t("{name}: used where it is, {source} (another file system; no download)",
                                      name=dest.name, source=source))
                continue
            specs.append(FileSpec(urls=self.urls[model.path], dest=dest, sha256=model.sha256, size=model.size, label=model.name))
        for spec in specs:
            shared.pop(next(m.path for m in self.models if ctx.path(m.path) == spec.dest), None)
        save_shared(ctx.install_dir, shared)
        results = download_specs(ctx, specs) if specs else []
        for spec, result in zip(specs, results):
            ctx.hash_cache.remember(spec.dest, spec.sha256)
            ctx.reporter.detail(t("{name}: {size} bytes from {url}", name=spec.dest.name, size=getattr(result, "size", "?"),
                                  url=redact_url((getattr(result, "urls_used", None) or [spec.urls[0]])[-1])))
        return {"files": [m.path for m in self.models]}
