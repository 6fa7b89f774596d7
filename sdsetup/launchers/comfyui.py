"""ComfyUI: no webui-user file and no COMMANDLINE_ARGS. It is started as `python main.py FLAGS` with its
own flags (comfy/cli_args.py: --cpu, --lowvram, --force-fp32, --use-pytorch-cross-attention…), so
sdsetup writes `run_comfyui.sh` and `run_comfyui.bat`, files it owns whole: they cd into the install,
set the launch environment (HF_HOME, mirror variables) and start main.py with the flags for this
machine. Models are under models/checkpoints (folder_paths.py); a store shared with another UI is named
in extra_model_paths.yaml, ComfyUI's own setting."""

from __future__ import annotations

import hashlib
import os
import shlex
from pathlib import Path
from typing import Any

from sdsetup.i18n import t
from sdsetup.install.steps.base import Step
from sdsetup.webui_user_file import set_line

SCRIPTS = (("run_comfyui.sh", "sh"), ("run_comfyui.bat", "bat"))
NOTE = "written by `sdsetup install` (rewritten on every install; put your own flags after the script's name)"

# A1111 flag (as detect.recommend gives them) -> ComfyUI's; None drops it (ComfyUI decides by itself).
FLAG_MAP = {
    "--medvram": None, "--medvram-sdxl": None, "--lowvram": "--lowvram",
    "--no-half": "--force-fp32", "--no-half-vae": "--fp32-vae", "--upcast-sampling": "--force-upcast-attention",
    "--xformers": None,  # used when installed, without a flag
    "--opt-sdp-attention": "--use-pytorch-cross-attention", "--opt-sub-quad-attention": "--use-quad-cross-attention",
    "--skip-torch-cuda-test": None, "--no-download-sd-model": None,
}
_VALUED = {"--use-cpu", "--precision"}  # A1111 flags that take values, handled below


def translate(flags: list[str], backend: str) -> list[str]:
    """A1111-style flags -> ComfyUI's (pure)."""
    out: list[str] = []
    skip_values = False
    for flag in flags:
        if flag.startswith("--"):
            skip_values = flag in _VALUED
            if skip_values:
                if flag == "--precision":
                    continue
                continue
            mapped = FLAG_MAP.get(flag, flag)
        else:
            if skip_values:
                if flag == "full" and "--force-fp32" not in out:
                    out.append("--force-fp32")
                continue
            mapped = flag
        if mapped and not (mapped.startswith("--") and mapped in out):
            out.append(mapped)
    if backend == "cpu":
        out = ["--cpu", *[f for f in out if f not in ("--lowvram", "--force-fp32")]]  # --cpu runs fp32 already
    return out


def render_sh(args: list[str], env: list[tuple[str, str]]) -> str:
    lines = ["#!/usr/bin/env bash", f"# {NOTE}", 'cd "$(dirname "$0")" || exit 1']
    lines += [f"export {name}={shlex.quote(value)}" for name, value in env]
    lines.append("exec venv/bin/python main.py " + " ".join(shlex.quote(a) for a in args) + ' "$@"')
    return "\n".join(lines) + "\n"


def render_bat(args: list[str], env: list[tuple[str, str]]) -> str:
    """The quoting webui-user.bat has (sdsetup/webui_user_file.py): `set "NAME=value"` with `%` doubled,
    a value cmd.exe cannot hold refused (ValueError), flags as words with `%` doubled."""
    from sdsetup.webui_user_file import arg_word

    lines = ["@echo off", f"rem {NOTE}", 'cd /d "%~dp0"']
    lines += [set_line(name, value, "bat") for name, value in env]
    lines.append("venv\\Scripts\\python.exe main.py " + " ".join(arg_word(a).replace("%", "%%") for a in args) + " %*")
    return "\r\n".join(lines) + "\r\n"


def read_sh_args(text: str) -> list[str] | None:
    """The flags the script gives main.py (None: no exec line)."""
    for line in text.splitlines():
        if line.startswith("exec ") and " main.py" in line:
            words = shlex.split(line)
            index = words.index("main.py")
            return [w for w in words[index + 1:] if w != "$@"]
    return None


YAML_NAME = "extra_model_paths.yaml"
YAML_BEGIN = "# >>> sdsetup >>> models shared with another install (rewritten by `sdsetup install`)"
YAML_END = "# <<< sdsetup <<<"


def render_yaml(existing: str | None, folders: list[str]) -> str | None:
    """extra_model_paths.yaml with sdsetup's section for `folders` (None: nothing to write); the user's
    own sections are kept as they are (pure)."""
    text = existing or ""
    if YAML_BEGIN in text and YAML_END in text:
        head, rest = text.split(YAML_BEGIN, 1)
        text = head.rstrip("\n") + ("\n" if head.strip() else "") + rest.split(YAML_END, 1)[1].lstrip("\n")
    if not folders:
        return text if existing is not None else None
    lines = [YAML_BEGIN]
    for index, folder in enumerate(folders):
        base, name = os.path.split(folder.rstrip("/\\"))
        lines += [f"sdsetup_shared_{index + 1}:", f"    base_path: {json_quote(base)}", f"    checkpoints: {json_quote(name)}"]
    lines.append(YAML_END)
    return (text.rstrip("\n") + "\n\n" if text.strip() else "") + "\n".join(lines) + "\n"


def json_quote(value: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is valid YAML)."""
    import json

    return json.dumps(value, ensure_ascii=True)  # ASCII (\\uXXXX): fits a user's file in any encoding


class _Settings:
    def __init__(self, args, env) -> None:
        self.args = tuple(args)
        self.env = tuple(env)


class ComfyLaunchStep(Step):
    id = "launch-scripts"
    title = "run_comfyui.sh and run_comfyui.bat"
    code_page: int | None = None  # the .bat's code page; None: this machine's (tests set another)

    def __init__(self, manifest: Any, decisions: Any, mirrors: Any) -> None:
        self.manifest = manifest
        self.decisions = decisions
        self.mirrors = mirrors

    def _env(self, hf_home: str) -> tuple[tuple[str, str], ...]:
        from sdsetup.install.webui_config import launch_env

        mirror_env = self.mirrors.webui_env(self.decisions.torch_tag if self.decisions.torch.index else None)
        return launch_env(repositories=(), hf_home=hf_home if self.manifest.hub else None,
                          hf_offline=self.manifest.launch.hf_offline and bool(self.manifest.hub),
                          extra=self.decisions.launch_env, mirror_env=mirror_env)

    def settings_for(self, ctx: Any) -> _Settings:
        from sdsetup.launch.held import held_env
        from sdsetup.layout import HF_HOME_REL

        env = self._env(HF_HOME_REL)
        own = dict(env)  # ComfyUI-Manager runs pip/uv for custom nodes: the held packages stay held
        return _Settings(self.decisions.launch_args, (*env, *((k, v) for k, v in held_env(ctx.install_dir) if k not in own)))

    def describe(self) -> dict[str, Any]:
        from sdsetup.layout import HF_HOME_REL
        from sdsetup.redact import redact_text, secrets_in_url

        env = self._env(HF_HOME_REL)
        secrets = secrets_in_url(self.mirrors.proxy) + [s for _n, v in env for s in secrets_in_url(v)]
        return {"id": self.id, "title": self.title, "files": [name for name, _ in SCRIPTS],
                "commandline_args": list(self.decisions.launch_args), "env": {k: redact_text(v, secrets) for k, v in env}}

    def rendered(self, ctx: Any) -> dict[str, bytes]:
        from sdsetup.model_store import shared_dirs

        from sdsetup.install.webui_config import encoding_refusal
        from sdsetup.webui_user_file import codec_for, first_unencodable, machine_oem_code_page

        settings = self.settings_for(ctx)
        try:
            bat = render_bat(list(settings.args), list(settings.env))
        except ValueError as exc:
            from sdsetup.errors import usage_error

            raise usage_error(t("run_comfyui.bat cannot hold a setting: {reason}", reason=exc),
                              t("remove the double quote or line break from that setting (a batch file cannot hold it)")) from None
        code_page = self.code_page or machine_oem_code_page()
        problem = first_unencodable(bat, code_page)  # cmd.exe reads the file in the OEM code page, not UTF-8
        if problem:
            raise encoding_refusal(*problem, code_page)
        out = {"run_comfyui.sh": render_sh(list(settings.args), list(settings.env)).encode("utf-8"),
               "run_comfyui.bat": bat.encode(codec_for(code_page))}
        try:
            # The user's bytes as they are, whatever their encoding (GBK is common): sdsetup's markers are
            # ASCII at line starts, and its section is ASCII, so it fits beside them.
            existing = ctx.path(YAML_NAME).read_bytes().decode("utf-8", "surrogateescape")
        except OSError:
            existing = None
        yaml = render_yaml(existing, shared_dirs(ctx.install_dir))
        if yaml is not None:
            out[YAML_NAME] = yaml.encode("utf-8", "surrogateescape")  # b"": only sdsetup's section was there; the file goes
        return out

    def identity(self, ctx: Any) -> Any:
        return {name: hashlib.sha256(data).hexdigest() for name, data in self.rendered(ctx).items()}

    def is_done(self, ctx: Any) -> bool:
        for name, data in self.rendered(ctx).items():
            try:
                if ctx.path(name).read_bytes() != data:
                    return False
            except OSError:
                if data:
                    return False
        return True

    def run(self, ctx: Any) -> dict[str, Any]:
        from sdsetup.fsutil import atomic_write_bytes
        from sdsetup.launch.held import write_held
        from sdsetup.redact import secrets_in_url

        write_held(ctx.install_dir, ctx.python, self.manifest.held)  # before the scripts that name it

        private = bool(self.mirrors.proxy_has_credentials) or any(secrets_in_url(v) for _n, v in self.settings_for(ctx).env)
        for name, data in self.rendered(ctx).items():
            path = ctx.path(name)
            if not data:  # an empty YAML file would stop ComfyUI (it iterates the parsed document)
                path.unlink(missing_ok=True)
                continue
            atomic_write_bytes(path, data, mode=None if name == YAML_NAME else
                               0o600 if private else (0o755 if name.endswith(".sh") else 0o644))  # private from its first byte
            ctx.reporter.detail(t("{name}: written", name=name))
        if private:
            ctx.warnings.append(t("run_comfyui.sh and run_comfyui.bat contain your proxy or mirror password; they are readable by you only: keep them private"))
        return {"written": sorted(self.rendered(ctx))}


class ComfyLauncher:
    kind = "comfyui"
    start_hint = "./run_comfyui.sh        (Windows: run_comfyui.bat)"
    launch_files = tuple(name for name, _ in SCRIPTS)

    def translate_flags(self, flags: list[str], backend: str) -> list[str]:
        return translate(list(flags), backend)

    def config_step(self, manifest: Any, decisions: Any, mirrors: Any) -> Step:
        return ComfyLaunchStep(manifest, decisions, mirrors)

    def check_launch(self, install_dir: Path, record: Any, facts: Any) -> tuple[list[str], list[dict[str, Any]]]:
        """run_comfyui.sh's flags, judged against the machine: --cpu where a GPU is, or none where none is."""
        path = Path(install_dir) / "run_comfyui.sh"
        items: list[dict[str, Any]] = []
        try:
            args = read_sh_args(path.read_text("utf-8", "replace"))
        except OSError:
            args = None
        if args is None:
            items.append({"id": "launch-file", "name": "run_comfyui.sh", "status": "warn", "value": t("missing"),  # i18n: keep
                          "fix": t("run `sdsetup install DIR` again: it writes run_comfyui.sh with the flags for this machine")})
            args = list(record.launch_args)
        item = {"id": "launch-flags", "name": t("launch flags"), "status": "ok", "fix": None}
        shown = " ".join(args) or "(none)"
        backend = None
        if facts is not None:
            from sdsetup.detect.recommend import choose_backend

            backend = choose_backend(facts)
        if backend is None:
            item.update(status="info", value=f"{shown} (machine facts unknown, not compared)")
        elif backend == "cpu" and "--cpu" not in args:
            item.update(status="fail", value=f"{shown}: no usable GPU and no --cpu: ComfyUI stops at its first torch.cuda call",
                        fix="edit run_comfyui.sh: add --cpu (or run `sdsetup install DIR` again)")
        elif backend != "cpu" and "--cpu" in args:
            item.update(status="fail", value=f"{shown}: --cpu makes ComfyUI generate on the CPU although a GPU is here",
                        fix="edit run_comfyui.sh: remove --cpu")
        else:
            item["value"] = f"{shown} (consistent with {backend})"
        return args, items + [item]

    def smoke_options(self, args: list[str]) -> dict[str, Any]:
        options: dict[str, Any] = {"webui_flags": ["--no-half"] if "--force-fp32" in args or "--cpu" in args else []}
        if "--cpu" in args:
            options["device"] = "cpu"
        return options


LAUNCHER = ComfyLauncher()
