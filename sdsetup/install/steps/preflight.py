"""Preflight: `sdsetup check` for this install; hard failures stop it with their fixes.

It runs only when some other step is pending (a finished install reruns without probing anything),
and the disk budget covers only what the pending steps still need, per filesystem (check groups the
install dir, the temp dir and pip's cache by the filesystem they live on).
"""

from __future__ import annotations

from typing import Any

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.fsutil import human_bytes
from sdsetup.install.steps.base import Step

PIP_CACHE_BYTES = 200 * 1024 * 1024  # sdsetup downloads the big files itself; pip caches little


class PreflightStep(Step):
    id = "preflight"
    title = "check this machine"
    journaled = False

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
        from sdsetup.commands import check

        pending = ctx.results.get("pending_ids")
        needs = ctx.plan.disk_needs(set(pending) if pending is not None else None)
        required = {"install_dir": needs["install_dir"], "temp": needs["temp"], "pip_cache": PIP_CACHE_BYTES}
        data = check.collect(ctx.settings, ctx.install_dir, self.options.python, required, backend=self.decisions.backend)
        ctx.preflight = data
        failures = check.hard_failures(data)
        for item in data.get("items", []):
            if item.get("status") == "warn":
                ctx.reporter.detail(f"warning: {item.get('name')}: {item.get('value')}" + (f" -> {item['fix']}" if item.get("fix") else ""))
        if failures:
            only_disk = all(str(item.get("id", "")).startswith("disk") for item in failures)
            names = "; ".join(f"{item.get('name')}: {item.get('value')}" for item in failures)
            fixes = "; ".join(str(item.get("fix")) for item in failures if item.get("fix"))
            raise SdsetupError(
                f"this machine is not ready: {names}",
                fixes or "run `sdsetup check` for details",
                ExitCode.DISK if only_disk else ExitCode.FAILED,
                details={"failures": failures},
            )
        chosen = (data.get("python") or {}).get("chosen") or {}
        return {"python": chosen.get("path"), "disk_needed": {k: human_bytes(v) for k, v in required.items()}}
