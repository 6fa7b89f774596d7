"""Stable Diffusion WebUI Forge: A1111's launch conventions (webui-user.sh/.bat, COMMANDLINE_ARGS,
launch_utils' *_REPO/*_COMMIT_HASH pins), but its own memory manager (backend/args.py): --medvram is
not needed, low VRAM is --always-low-vram, a CPU-only machine is --always-cpu. The A1111 precision
flags (--no-half, --precision full, --use-cpu) still parse in Forge's modules/cmd_args.py."""

from __future__ import annotations

from sdsetup.launchers.a1111 import A1111Launcher

# A1111 flag -> Forge's (None: dropped, Forge decides itself).
FLAG_MAP = {"--medvram": None, "--medvram-sdxl": None, "--lowvram": "--always-low-vram"}


class ForgeLauncher(A1111Launcher):
    kind = "forge"

    def translate_flags(self, flags: list[str], backend: str) -> list[str]:
        out: list[str] = []
        for flag in flags:
            mapped = FLAG_MAP.get(flag, flag)
            if mapped and not (mapped.startswith("--") and mapped in out):
                out.append(mapped)
        if backend == "cpu" and "--always-cpu" not in out:
            out.append("--always-cpu")
        return out


LAUNCHER = ForgeLauncher()
