"""The files `sdsetup doctor --fix` edits to change how the UI starts: webui-user.bat/.sh for A1111 and
Forge, run_comfyui.sh/.bat for ComfyUI (issue 22 item 3). One interface over both, chosen by flavour:
"bat"/"sh" (webui_user.py's marked block) or "comfy-bat"/"comfy-sh" (the exec line and the environment
lines of sdsetup's ComfyUI scripts). Fixes are written in A1111's flags; for ComfyUI they are said in
its own (launchers.comfyui.translate), except that an out-of-memory step goes straight to --lowvram.
All functions are pure."""

from __future__ import annotations

import re
import shlex

from sdsetup.doctor import webui_user
from sdsetup.webui_user_file import bat_value, set_line

# sdsetup's own scripts, then the ones ComfyUI's Windows portable build ships (`.\python_embeded\python.exe
# -s ComfyUI\main.py --windows-standalone-build`, then `pause`): a fix goes into every one of them there is.
COMFY_SCRIPTS = {"run_comfyui.sh": "comfy-sh", "run_comfyui.bat": "comfy-bat",
                 "run_nvidia_gpu.bat": "comfy-bat", "run_cpu.bat": "comfy-bat"}
_MAIN_PY = re.compile(r"""(?:^|(?<=[\s\\/"']))main\.py["']?(?=\s|$)""")
_DOCTOR_MAP = {"--medvram": "--lowvram", "--medvram-sdxl": "--lowvram"}  # ComfyUI has one step down: --lowvram


def comfy_scripts(install_dir):
    """The ComfyUI launch scripts that start this install: its own, or, for DIR = the portable build's
    ComfyUI folder, the run_*.bat beside python_embeded one level up."""
    here = [install_dir / n for n in COMFY_SCRIPTS if (install_dir / n).is_file()]
    if here:
        return here
    up = install_dir.parent
    if (up / "python_embeded").is_dir():
        return [up / n for n in COMFY_SCRIPTS if n.endswith(".bat") and (up / n).is_file()]
    return []


def flavour_of(name: str) -> str:
    return COMFY_SCRIPTS.get(name) or webui_user.flavour_of(name)


def comfy_flags(flags) -> list[str]:
    from sdsetup.launchers.comfyui import translate

    out: list[str] = []
    for flag in flags:
        for mapped in translate([_DOCTOR_MAP.get(flag, flag)], "cuda"):
            if mapped not in out:
                out.append(mapped)
    return out


def _exec_line(text: str, flavour: str) -> tuple[int, list[str]] | None:
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.strip().lower().startswith(("rem ", "::", "#")) or not _MAIN_PY.search(line):
            continue
        if line.startswith("exec ") if flavour == "comfy-sh" else "python" in line.lower():
            return index, lines
    return None


def _split_exec(line: str) -> tuple[str, str]:
    """(everything up to and including main.py, the arguments after it) of the line that starts ComfyUI."""
    end = _MAIN_PY.search(line).end()
    return line[:end], line[end:]


def _comfy_words(rest: str, flavour: str) -> list[str]:
    # .bat: cmd.exe's words, quotes kept (a user's --output-directory "D:\My Images" is written back as it was)
    return shlex.split(rest, posix=flavour == "comfy-sh")


def _comfy_args(text: str, flavour: str) -> list[str]:
    found = _exec_line(text, flavour)
    if found is None:
        return []
    index, lines = found
    return [w for w in _comfy_words(_split_exec(lines[index])[1], flavour) if w not in ("$@", "%*")]


def effective_args(text: str, flavour: str) -> list[str]:
    if flavour.startswith("comfy-"):
        return _comfy_args(text, flavour)
    return webui_user.effective_args(text, flavour)


def effective_env(text: str, flavour: str) -> dict[str, str]:
    if not flavour.startswith("comfy-"):
        return webui_user.effective_env(text, flavour)
    env = {}
    pattern = r"^export (\w+)=(.*)$" if flavour == "comfy-sh" else r'^set "(\w+)=(.*)"$'
    for line in text.splitlines():
        m = re.match(pattern, line.strip())
        if m:
            value = m.group(2)
            env[m.group(1)] = (shlex.split(value)[0] if value else "") if flavour == "comfy-sh" else value.replace("%%", "%")
    return env


def change(text: str | None, flavour: str, *, set_env=None, add_args=(), remove_args=()) -> str:
    if not flavour.startswith("comfy-"):
        return webui_user.change(text, flavour, set_env=set_env, add_args=add_args, remove_args=remove_args)
    if text is None:
        raise ValueError("run_comfyui script is missing: run `sdsetup install DIR` to write it")
    found = _exec_line(text, flavour)
    if found is None:
        raise ValueError("run_comfyui script has no line that starts main.py: run `sdsetup install DIR` to write it again")
    index, lines = found
    newline = "\r\n" if "\r\n" in text else "\n"
    args = _comfy_args(text, flavour)
    removed = set(comfy_flags(remove_args))
    wanted = [a for a in args if a not in removed] + [a for a in comfy_flags(add_args) if a not in args]
    env_now = effective_env(text, flavour)
    new_env = [(k, v) for k, v in (set_env or {}).items() if env_now.get(k) != v]
    if wanted == args and not new_env:
        return text
    head, rest = _split_exec(lines[index])
    words = _comfy_words(rest, flavour)
    forward = [w for w in words if w in ("$@", "%*")]  # kept where there was one, never added (portable has none)
    kept = [w for w in words if w not in removed and w not in ("$@", "%*")]  # the user's words as written
    added = [a for a in wanted if a not in args]
    if flavour == "comfy-sh":
        lines[index] = " ".join([head, *(shlex.quote(a) for a in kept + added), *(['"$@"'] if forward else [])])
        env_lines = [set_line(k, v, "sh") for k, v in new_env]
    else:
        lines[index] = " ".join([head, *kept, *(bat_value(a) for a in added), *forward])
        env_lines = [set_line(k, v, "bat") for k, v in new_env]
    lines[index:index] = env_lines  # before the line that starts ComfyUI
    return newline.join(lines) + (newline if text.endswith(("\n", "\r")) else "")
