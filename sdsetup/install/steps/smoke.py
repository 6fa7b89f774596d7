"""The proof: a txt2img in the web UI's venv (sdsetup.verify.run_smoke, the tiny model), unless
--skip-smoke. What the test needs beyond the web UI's packages (diffusers) comes from the manifest's
[smoke] table, installed through the wheelhouse with torch held. A passed smoke test is journaled
against the install record, so a rerun of a finished install does not repeat it."""

from __future__ import annotations

import hashlib
from typing import Any

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.install.steps.base import Step
from sdsetup.i18n import t


class SmokeStep(Step):
    id = "smoke"

    @property
    def title(self) -> str:  # type: ignore[override]  # in the language of this run, not of the import
        return t("smoke test: one txt2img in the web UI's venv")

    def __init__(self, manifest: Any, options: Any, mirrors: Any = None, launch_args: tuple[str, ...] = ()) -> None:
        self.manifest = manifest
        self.options = options
        self.mirrors = mirrors
        self.launch_args = tuple(launch_args)

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "packages": list(self.manifest.smoke.packages)}

    def identity(self, ctx: Any) -> Any:
        from sdsetup.install_record import record_path

        try:
            record = hashlib.sha256(record_path(ctx.install_dir).read_bytes()).hexdigest()
        except OSError:
            record = None
        return {"record": record, "packages": list(self.manifest.smoke.packages)}

    def _ensure_packages(self, ctx: Any) -> None:
        from sdsetup.install import wheelhouse
        from sdsetup.install.pip_run import probe_venv
        from sdsetup.install.steps.torch import requirement_name

        packages = list(self.manifest.smoke.packages)
        if not packages:
            return
        installed = (probe_venv(ctx.python, [requirement_name(p) for p in packages]) or {}).get("packages") or {}
        if all(installed.get(requirement_name(p)) for p in packages):
            return
        ctx.reporter.detail(t("for the test: {packages}", packages=' '.join(packages)))
        wheelhouse.resolve_fetch_install(ctx, packages, index_args=list(ctx.mirrors.pip_index_args()), label="smoke",
                                         constraints=ctx.constraints_file)

    def run(self, ctx: Any) -> dict[str, Any]:
        from sdsetup.launchers import for_manifest
        from sdsetup.verify import run_smoke

        self._ensure_packages(ctx)
        import time

        from sdsetup.install import bytecode

        started = time.monotonic()
        bytecode.wait(ctx.python, timeout=60)  # compiled in the background since torch went in (install/bytecode.py)
        ctx.reporter.log.info("smoke: waited %.1f s for the venv's bytecode", time.monotonic() - started)
        # The same reading of the launch flags as `sdsetup verify`: precision flags, and the CPU when told.
        result = run_smoke(ctx.python, hf_home=ctx.hf_home, cache_dir=ctx.layout.smoke_cache,
                           progress=ctx.progress, **for_manifest(self.manifest).smoke_options(list(self.launch_args)))
        if not result.get("ok"):
            error = result.get("error") or {}
            message = error.get("message") if isinstance(error, dict) else str(error)
            fix = error.get("fix") if isinstance(error, dict) else None
            raise SdsetupError(
                t("the smoke test did not produce an image: {message}", message=message or t("no details")),
                t("{fix}; the install itself is complete: `sdsetup verify` repeats the test, `sdsetup doctor` names likely causes",
                  fix=fix) if fix else
                t("the install itself is complete: `sdsetup verify` repeats the test, `sdsetup doctor` names likely causes"),
                ExitCode.FAILED,
                details={"smoke": {k: result.get(k) for k in ("error", "exit_code", "stderr_tail") if k in result}},
            )
        ctx.results["smoke"] = {k: result.get(k) for k in ("device", "dtype", "torch", "diffusers", "seconds_total") if k in result}
        ctx.reporter.detail(t("an image in {seconds}s on {device} ({dtype})", seconds=result.get("seconds_total", "?"),
                              device=result.get("device"), dtype=result.get("dtype")))
        return dict(ctx.results["smoke"])
