"""webui-user.sh and webui-user.bat for this machine: COMMANDLINE_ARGS (VRAM tier, backend,
--no-download-sd-model), the repository pins, HF_HOME (+ offline switches), the mirror and proxy
environment. The user's own lines are kept byte for byte; a file that changes is backed up first.

The .bat block is written in this machine's OEM code page (what cmd.exe reads it in) with paths inside
the install relative to the batch file; the launch values are checked when the plan is made (the
step's constructor), so a value no shell file can hold stops the install before anything is fetched."""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

from sdsetup.install.steps.base import Step
from sdsetup.install.webui_config import (
    LaunchSettings, bat_encoding_problem, check_launch_values, encoding_refusal, extract_block, launch_env, merge_bytes,
    python_from_pyvenv_cfg, render_bat_block, render_sh_block,
)
from sdsetup.i18n import t

FILES = (("webui-user.sh", "sh"), ("webui-user.bat", "bat"))


class WebuiUserStep(Step):
    id = "webui-user"
    title = "webui-user.sh and webui-user.bat"

    def __init__(self, manifest: Any, decisions: Any, mirrors: Any, code_page: int | None = None) -> None:
        self.manifest = manifest
        self.decisions = decisions
        self.mirrors = mirrors
        self.code_page = code_page  # None: this machine's OEM code page
        # Plan time: a launch value that no webui-user file can hold is a usage error now, not at this step.
        own = set(dict(manifest.launch.env))
        others = [(f"launch env {name}", value) for name, value in self.decisions.launch_env if name not in own]
        for index, repo in enumerate(manifest.repositories):
            if repo.url_env:
                others.append((f"repositories[{index}].url ({repo.name})", repo.url))
        others += [(f"mirror setting {name}", value) for name, value in self._mirror_env().items()]
        check_launch_values(manifest, others)

    def _mirror_env(self) -> dict[str, str]:
        return self.mirrors.webui_env(self.decisions.torch_tag if self.decisions.torch.index else None)

    def carries_credential(self, env) -> bool:
        """Whether the web UI env holds a password (a proxy's or a mirror's user:pass@)."""
        from sdsetup.redact import secrets_in_url

        return bool(self.mirrors.proxy_has_credentials) or any(secrets_in_url(value) for _name, value in env)

    def describe(self) -> dict[str, Any]:
        from sdsetup.install.plan import HF_HOME_REL
        from sdsetup.redact import redact_text, secrets_in_url

        env = self._env(f"<DIR>/{HF_HOME_REL}")
        secrets = secrets_in_url(self.mirrors.proxy) + [s for _name, value in env for s in secrets_in_url(value)]
        return {"id": self.id, "title": self.title, "files": [name for name, _ in FILES],
                "commandline_args": list(self.decisions.launch_args),
                "env": {k: redact_text(v, secrets) for k, v in env}}

    def _env(self, hf_home: str):
        return launch_env(
            repositories=self.manifest.repositories,
            hf_home=hf_home,
            hf_offline=self.manifest.launch.hf_offline and bool(self.manifest.hub),
            extra=self.decisions.launch_env,
            mirror_env=self._mirror_env(),
        )

    def settings_for(self, ctx: Any) -> LaunchSettings:
        try:
            candidates = python_from_pyvenv_cfg((ctx.venv_dir / "pyvenv.cfg").read_text("utf-8"), windows=os.name == "nt")
        except OSError:
            candidates = []
        python = next((c for c in candidates if os.path.isfile(c)), None)
        from sdsetup.launch.held import held_env

        env = self._env(str(ctx.hf_home))
        own = dict(env)  # extensions' install.py run pip at launch: the held packages stay held (docs/launch.md)
        env = (*env, *((k, v) for k, v in held_env(ctx.install_dir) if k not in own))
        return LaunchSettings(args=tuple(self.decisions.launch_args), env=env, python=python, base=str(ctx.install_dir))

    def rendered(self, ctx: Any) -> dict[str, tuple[bytes, str, bytes | None]]:
        """{file: (new bytes, how, old bytes)}; a .bat value the code page cannot hold is refused."""
        from sdsetup.webui_user_file import machine_oem_code_page

        settings = self.settings_for(ctx)
        code_page = self.code_page or machine_oem_code_page()
        out = {}
        for name, kind in FILES:
            path = ctx.path(name)
            try:
                old = path.read_bytes() if path.exists() else None
            except OSError:
                old = None
            if old is not None:  # never replace across a block whose end the user removed (their lines are there)
                from sdsetup.webui_user_file import block_markers, unclosed_block

                begin, end = block_markers("sdsetup", kind)
                line = unclosed_block(old.decode("ascii", "surrogateescape"), begin, end)
                if line is not None:
                    from sdsetup.errors import usage_error

                    raise usage_error(
                        t("{name} line {line}: sdsetup's block starts here ({begin}) but its end line is missing",
                          name=name, line=line, begin=begin),
                        t("put the line `{end}` back after sdsetup's lines (or delete line {line}); sdsetup does not "
                          "guess which lines below it are yours", end=end, line=line))
            block = render_sh_block(settings) if kind == "sh" else render_bat_block(settings)
            if kind == "bat":
                problem = bat_encoding_problem(block, code_page)
                if problem:
                    raise encoding_refusal(*problem, code_page)
            new, how = merge_bytes(old, block, kind, code_page)
            out[name] = (new, how, old)
        return out

    def identity(self, ctx: Any) -> Any:
        return {name: hashlib.sha256(new).hexdigest() for name, (new, _how, _old) in self.rendered(ctx).items()}

    def is_done(self, ctx: Any) -> bool:
        return all(how == "unchanged" for _new, how, _old in self.rendered(ctx).values())

    def run(self, ctx: Any) -> dict[str, Any]:
        from sdsetup.fsutil import atomic_write_bytes
        from sdsetup.launch.held import write_held

        write_held(ctx.install_dir, ctx.python, getattr(self.manifest, "held", ()))  # before the files that name it

        written = {}
        last = ctx.journal.detail(self.id).get("blocks", {})
        blocks = {}
        private = self.carries_credential(self.settings_for(ctx).env)
        for name, (new, how, old) in self.rendered(ctx).items():
            kind = "sh" if name.endswith(".sh") else "bat"
            blocks[name] = _block_digest(new, kind)
            if how == "unchanged":
                if private and os.name != "nt":
                    os.chmod(ctx.path(name), 0o600)
                continue
            path = ctx.path(name)
            if old is not None:
                previous_block = extract_block(_as_text(old), kind)
                edited_inside = previous_block is not None and _block_digest(old, kind) != last.get(name)
                if previous_block is None or edited_inside:
                    backup = ctx.state_dir / "backups" / f"{name}.{time.strftime('%Y%m%d-%H%M%S')}"
                    atomic_write_bytes(backup, old, mode=0o600)  # it may hold a password
                    ctx.reporter.detail(t("{name}: your version is kept, with a copy in {copy}", name=name,
                                          copy=backup.relative_to(ctx.install_dir)))
                    if edited_inside:
                        ctx.warnings.append(t("{name}: the lines inside the sdsetup block had been edited; they were "
                                              "replaced (your copy: {backup})", name=name, backup=backup))
            atomic_write_bytes(path, new, mode=0o600 if private else 0o644)  # private from its first byte
            written[name] = how
            ctx.reporter.detail(f"{name}: {how}")
        if private:
            what = "proxy password" if self.mirrors.proxy_has_credentials else "mirror password"
            ctx.warnings.append(t("webui-user.sh and webui-user.bat contain your {what} (the web UI's own pip, git and "
                                  "huggingface_hub need it at launch); they are readable by you only: keep them private", what=what))
        return {"written": written, "blocks": blocks}


def _as_text(data: bytes) -> str:
    return data.decode("ascii", "surrogateescape")


def _block_digest(data: bytes, kind: str) -> str:
    """sha256 of the sdsetup block's bytes (as a UTF-8 file gave before: the journal keeps these)."""
    block = extract_block(_as_text(data), kind) or ""
    return hashlib.sha256(block.encode("ascii", "surrogateescape")).hexdigest()
