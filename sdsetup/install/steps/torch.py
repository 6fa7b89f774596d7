"""torch for the chosen backend, first (the web UI's TORCH_COMMAND), and a constraint file that keeps
every later step from swapping it for another build."""

from __future__ import annotations

from typing import Any

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.install.steps.base import Step
from sdsetup.versions import requirement_name  # noqa: F401 (smoke imports it from here)
from sdsetup.i18n import t


class _TorchLogin:
    """The plan's mirrors, with pip_env() carrying the torch mirror's login for this tag (pip reads it from
    the environment: argv is readable by every local user)."""

    def __init__(self, mirrors: Any, tag: str) -> None:
        self._mirrors, self._tag = mirrors, tag

    def __getattr__(self, name: str) -> Any:
        return getattr(self._mirrors, name)

    def pip_env(self, torch_tag: str | None = None) -> dict[str, str]:
        return self._mirrors.pip_env(torch_tag=torch_tag or self._tag)


def with_torch_login(ctx: Any, tag: str | None) -> Any:
    """`ctx` whose pip runs reach a torch mirror that needs a login (same journal, reporter, session)."""
    from dataclasses import replace

    if not tag:
        return ctx
    return replace(ctx, plan=replace(ctx.plan, mirrors=_TorchLogin(ctx.plan.mirrors, tag)))



def constraint_lines(installed: dict[str, str | None]) -> str:
    """`name==version` for each installed package (pure); the local tag (+cu121) is kept, so a later
    resolve can only keep this exact build."""
    missing = [name for name, version in installed.items() if not version]
    if missing:
        raise SdsetupError(t("after installing torch, {missing} is not in the venv", missing=', '.join(missing)),
                           t("run again; if it persists, the index served another package under that name"), ExitCode.STEP)
    return "".join(f"{name}=={version}\n" for name, version in sorted(installed.items()))


class TorchStep(Step):
    id = "torch"

    def __init__(self, decisions: Any, mirrors: Any, tmp_bytes: int) -> None:
        self.decisions = decisions
        self.spec = decisions.torch
        self.requirements = tuple(self.spec.packages) + ((decisions.xformers,) if decisions.xformers else ())
        tag = decisions.torch_tag
        self.index_args = list(mirrors.pip_index_args()) + (list(mirrors.torch_index_args(tag)) if tag and self.spec.index else [])
        self.tmp_bytes = tmp_bytes
        self.title = f"{' '.join(self.requirements)} ({decisions.backend}{', ' + tag if tag else ''})"

    def describe(self) -> dict[str, Any]:
        from sdsetup.fsutil import human_bytes
        from sdsetup.redact import redact_url

        return {"id": self.id, "title": self.title, "backend": self.decisions.backend, "tag": self.decisions.torch_tag,
                "packages": list(self.requirements), "index_args": [redact_url(a) for a in self.index_args],
                "canonical_index": self.spec.index.replace("{tag}", self.decisions.torch_tag) if self.spec.index and self.decisions.torch_tag else None,
                "download_bytes": self.spec.download_bytes, "download": human_bytes(self.spec.download_bytes)}

    def identity(self, ctx: Any) -> Any:
        return {"requirements": list(self.requirements), "tag": self.decisions.torch_tag}

    def names(self) -> list[str]:
        return [requirement_name(r) for r in self.requirements]

    def is_done(self, ctx: Any) -> bool:
        from sdsetup.install.pip_run import probe_venv

        if not super().is_done(ctx) or not ctx.constraints_file.is_file():
            return False
        probe = probe_venv(ctx.python, self.names())
        if not probe:
            return False
        try:
            return ctx.constraints_file.read_text("utf-8") == constraint_lines(probe.get("packages") or {})
        except SdsetupError:
            return False

    def bytes_needed(self) -> dict[str, int]:
        # The wheel stays in the wheelhouse (resume, repair) and is unpacked into the venv.
        return {"install_dir": self.spec.download_bytes + self.spec.installed_bytes, "temp": self.tmp_bytes}

    def run(self, ctx: Any) -> dict[str, Any]:
        from sdsetup.fsutil import atomic_write_text
        from sdsetup.install import wheelhouse
        from sdsetup.install.pip_run import probe_venv

        picks = wheelhouse.resolve_fetch_install(with_torch_login(ctx, self.decisions.torch_tag), self.requirements,
                                                 index_args=self.index_args, label="torch")
        probe = probe_venv(ctx.python, self.names()) or {}
        installed = probe.get("packages") or {}
        atomic_write_text(ctx.constraints_file, constraint_lines(installed))
        ctx.reporter.detail(t("pinned for later steps: {packages}",
                              packages=", ".join(f"{k}=={v}" for k, v in sorted(installed.items()))))
        return {"installed": installed, "downloaded": [p.filename for p in picks]}
