"""Preflight: this machine's readiness (sdsetup.detect.readiness, what `sdsetup check` shows) for this
install; hard failures stop it with their fixes, and so does an interpreter path that webui-user.bat
could not hold in this machine's code page (before anything is downloaded).

It runs only when some other step is pending (a finished install reruns without probing anything),
and the disk budget covers only what the pending steps still need, per filesystem (check groups the
install dir, the temp dir and pip's cache by the filesystem they live on).
"""

from __future__ import annotations

from typing import Any

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.fsutil import human_bytes
from sdsetup.install.steps.base import Step
from sdsetup.i18n import t

PIP_CACHE_BYTES = 200 * 1024 * 1024  # sdsetup downloads the big files itself; pip caches little


class PreflightStep(Step):
    id = "preflight"
    journaled = False

    @property
    def title(self) -> str:  # type: ignore[override]  # in the language of this run, not of the import
        return t("check this machine")

    def __init__(self, manifest: Any, decisions: Any, options: Any) -> None:
        self.manifest = manifest
        self.decisions = decisions
        self.options = options

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "backend": self.decisions.backend,
                "python": self.options.python or "(chosen by check)"}

    def is_done(self, ctx: Any) -> bool:
        return False

    def run(self, ctx: Any) -> dict[str, Any]:
        from sdsetup.detect.readiness import assess

        pending = ctx.results.get("pending_ids")
        needs = ctx.plan.disk_needs(set(pending) if pending is not None else None)
        required = {"install_dir": needs["install_dir"], "temp": needs["temp"], "pip_cache": PIP_CACHE_BYTES}
        readiness = assess(ctx.settings, ctx.install_dir, self.options.python, required, backend=self.decisions.backend)
        ctx.preflight = readiness.data  # the venv step reads the chosen interpreter from it
        failures = readiness.failures
        for item in readiness.warnings:
            if item.get("fix"):
                ctx.reporter.detail(t("warning: {name}: {value} -> {fix}", name=item.get("name"), value=item.get("value"), fix=item["fix"]))
            else:
                ctx.reporter.detail(t("warning: {name}: {value}", name=item.get("name"), value=item.get("value")))
        if failures:
            only_disk = all(str(item.get("id", "")).startswith("disk") for item in failures)
            names = "; ".join(f"{item.get('name')}: {item.get('value')}" for item in failures)
            fixes = "; ".join(str(item.get("fix")) for item in failures if item.get("fix"))
            raise SdsetupError(
                t("this machine is not ready: {names}", names=names),
                fixes or t("run `sdsetup check` for details"),
                ExitCode.DISK if only_disk else ExitCode.FAILED,
                details={"failures": failures},
            )
        chosen = readiness.python
        if chosen:
            check_bat_python(chosen.path, str(ctx.install_dir))
        return {"python": chosen.path if chosen else None, "disk_needed": {k: human_bytes(v) for k, v in required.items()}}


def check_bat_python(python: str, install_dir: str, code_page: int | None = None) -> None:
    """Refuse now an interpreter path that webui-user.bat (written at the end) could not hold."""
    from sdsetup.install.webui_config import bat_can_run, encoding_refusal
    from sdsetup.webui_user_file import bat_python_line, first_unencodable, machine_oem_code_page

    if not bat_can_run(python, install_dir):
        return
    code_page = code_page or machine_oem_code_page()
    problem = first_unencodable(bat_python_line(python, install_dir), code_page)
    if problem:
        raise encoding_refusal(*problem, code_page)
