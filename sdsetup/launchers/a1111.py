"""AUTOMATIC1111's web UI: webui-user.sh/.bat with COMMANDLINE_ARGS, the flags as detect.recommend
gives them. This adapter only names what install and verify already did before the seam existed, so
A1111 installs are unchanged byte for byte."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class A1111Launcher:
    kind = "a1111"
    start_hint = "./webui.sh        (Windows: webui-user.bat)"
    launch_files = ("webui-user.sh", "webui-user.bat")

    def translate_flags(self, flags: list[str], backend: str) -> list[str]:
        return list(flags)

    def config_step(self, manifest: Any, decisions: Any, mirrors: Any) -> Any:
        return _step_class()(manifest, decisions, mirrors)

    def check_launch(self, install_dir: Path, record: Any, facts: Any) -> tuple[list[str], list[dict[str, Any]]]:
        from sdsetup.verify import check_launch_flags

        return check_launch_flags(install_dir, record, facts)

    def smoke_options(self, args: list[str]) -> dict[str, Any]:
        from sdsetup.verify import smoke_options_from_args

        return smoke_options_from_args(args)


def _step_class():
    """WebuiUserStep, plus `--ckpt-dir` when a checkpoint is used from another install on another file
    system (sdsetup/model_store.py); otherwise exactly WebuiUserStep's files."""
    from dataclasses import replace

    from sdsetup.install.steps.webui_user import WebuiUserStep

    class SharedModelsWebuiUserStep(WebuiUserStep):
        def settings_for(self, ctx: Any):
            from sdsetup.model_store import shared_dirs

            settings = super().settings_for(ctx)
            folders = shared_dirs(ctx.install_dir)
            if not folders or "--ckpt-dir" in settings.args:
                return settings
            # --ckpt-dir adds a folder to models/Stable-diffusion (modules/sd_models.py lists both).
            return replace(settings, args=(*settings.args, "--ckpt-dir", folders[0]))

    return SharedModelsWebuiUserStep


LAUNCHER = A1111Launcher()
