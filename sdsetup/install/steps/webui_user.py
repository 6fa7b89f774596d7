"""webui-user.sh and webui-user.bat for this machine: COMMANDLINE_ARGS (VRAM tier, backend,
--no-download-sd-model), the repository pins, HF_HOME (+ offline switches), the mirror and proxy
environment. The user's own lines are kept; a file that changes is backed up first."""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

from sdsetup.install.steps.base import Step
from sdsetup.install.webui_config import (
    LaunchSettings, extract_block, launch_env, merge, python_from_pyvenv_cfg, render_bat_block, render_sh_block,
)

FILES = (("webui-user.sh", "sh"), ("webui-user.bat", "bat"))


class WebuiUserStep(Step):
    id = "webui-user"
    title = "webui-user.sh and webui-user.bat"

    def __init__(self, manifest: Any, decisions: Any, mirrors: Any) -> None:
        self.manifest = manifest
        self.decisions = decisions
        self.mirrors = mirrors

    def describe(self) -> dict[str, Any]:
        from sdsetup.install.plan import HF_HOME_REL
        from sdsetup.redact import redact_text, secrets_in_url

        env = self._env(f"<DIR>/{HF_HOME_REL}")
        secrets = secrets_in_url(self.mirrors.proxy)
        return {"id": self.id, "title": self.title, "files": [name for name, _ in FILES],
                "commandline_args": list(self.decisions.launch_args),
                "env": {k: redact_text(v, secrets) for k, v in env}}

    def _env(self, hf_home: str):
        return launch_env(
            repositories=self.manifest.repositories,
            hf_home=hf_home,
            hf_offline=self.manifest.launch.hf_offline and bool(self.manifest.hub),
            extra=self.decisions.launch_env,
            mirror_env=self.mirrors.webui_env(self.decisions.torch_tag if self.decisions.torch.index else None),
        )

    def settings_for(self, ctx: Any) -> LaunchSettings:
        try:
            candidates = python_from_pyvenv_cfg((ctx.venv_dir / "pyvenv.cfg").read_text("utf-8"), windows=os.name == "nt")
        except OSError:
            candidates = []
        python = next((c for c in candidates if os.path.isfile(c)), None)
        return LaunchSettings(args=tuple(self.decisions.launch_args), env=self._env(str(ctx.hf_home)), python=python)

    def rendered(self, ctx: Any) -> dict[str, tuple[str, str, str | None]]:
        """{file: (new text, how, old text)}."""
        settings = self.settings_for(ctx)
        out = {}
        for name, kind in FILES:
            path = ctx.path(name)
            try:
                old = path.read_bytes().decode("utf-8") if path.exists() else None
            except (OSError, UnicodeDecodeError):
                old = None
            block = render_sh_block(settings) if kind == "sh" else render_bat_block(settings)
            new, how = merge(old, block, kind)
            out[name] = (new, how, old)
        return out

    def identity(self, ctx: Any) -> Any:
        return {name: hashlib.sha256(new.encode()).hexdigest() for name, (new, _how, _old) in self.rendered(ctx).items()}

    def is_done(self, ctx: Any) -> bool:
        return all(how == "unchanged" for _new, how, _old in self.rendered(ctx).values())

    def run(self, ctx: Any) -> dict[str, Any]:
        from sdsetup.fsutil import atomic_write_bytes

        written = {}
        last = ctx.journal.detail(self.id).get("blocks", {})
        blocks = {}
        for name, (new, how, old) in self.rendered(ctx).items():
            kind = "sh" if name.endswith(".sh") else "bat"
            blocks[name] = hashlib.sha256((extract_block(new, kind) or "").encode()).hexdigest()
            if how == "unchanged":
                continue
            path = ctx.path(name)
            if old is not None:
                previous_block = extract_block(old, kind)
                edited_inside = previous_block is not None and hashlib.sha256(previous_block.encode()).hexdigest() != last.get(name)
                if previous_block is None or edited_inside:
                    backup = ctx.state_dir / "backups" / f"{name}.{time.strftime('%Y%m%d-%H%M%S')}"
                    atomic_write_bytes(backup, old.encode("utf-8"))
                    ctx.reporter.detail(f"{name}: your version is kept, with a copy in {backup.relative_to(ctx.install_dir)}")
                    if edited_inside:
                        ctx.warnings.append(f"{name}: the lines inside the sdsetup block had been edited; they were "
                                            f"replaced (your copy: {backup})")
            atomic_write_bytes(path, new.encode("utf-8"))
            if kind == "sh" and os.name != "nt":
                # Private when it carries a proxy password; otherwise the web UI's usual mode.
                os.chmod(path, 0o600 if self.mirrors.proxy_has_credentials else 0o644)
            written[name] = how
            ctx.reporter.detail(f"{name}: {how}")
        if self.mirrors.proxy_has_credentials:
            ctx.warnings.append("webui-user.sh and webui-user.bat contain your proxy password (the web UI's own pip, "
                                "git and huggingface_hub need it at launch); keep them private")
        return {"written": written, "blocks": blocks}
