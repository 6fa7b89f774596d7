"""The proof: a real txt2img in the web UI's venv (sdsetup.verify.run_smoke), unless --skip-smoke.
A passed smoke test is journaled against the install record, so a rerun of a finished install does
not repeat it; any change to the install makes it run again."""

from __future__ import annotations

import hashlib
from typing import Any

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.install.steps.base import Step, StepSkipped


class SmokeStep(Step):
    id = "smoke"
    title = "smoke test: one txt2img in the web UI's venv"

    def __init__(self, manifest: Any, options: Any) -> None:
        self.manifest = manifest
        self.options = options

    def identity(self, ctx: Any) -> Any:
        from sdsetup.install.record import record_path

        try:
            return hashlib.sha256(record_path(ctx.install_dir).read_bytes()).hexdigest()
        except OSError:
            return None

    def run(self, ctx: Any) -> dict[str, Any]:
        try:
            from sdsetup.verify import run_smoke
        except ImportError:
            ctx.warnings.append("this sdsetup has no smoke test yet (sdsetup.verify); the install was not proven "
                                "with an image - run `sdsetup verify` once it is available")
            raise StepSkipped("no smoke test in this sdsetup") from None
        checkpoint = None
        if self.manifest.models and not self.options.skip_models:
            checkpoint = str(ctx.path(self.manifest.models[0].path))
        out = ctx.state_dir / "smoke.png"
        result = run_smoke(str(ctx.python), checkpoint=checkpoint, out=str(out))
        if not result.get("ok"):
            error = result.get("error") or {}
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise SdsetupError(
                f"the smoke test did not produce an image: {message or 'no details'}",
                "run `sdsetup doctor` for the likely cause; the install itself is complete (rerun install to retry the test)",
                ExitCode.FAILED,
                details={"smoke": result},
            )
        ctx.results["smoke"] = result
        return {k: result.get(k) for k in ("device", "dtype", "torch", "seconds") if k in result}

