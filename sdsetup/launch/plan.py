"""Pure decisions for `launch`: how the UI is started (the launch files' environment and flags, as
webui.sh / run_comfyui.sh would start it), which port it will take, and what a console line means."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DEFAULT_PORTS = {"a1111": 7860, "forge": 7860, "comfyui": 8188}
ENTRY = {"a1111": "launch.py", "forge": "launch.py", "comfyui": "main.py"}

# The line each UI prints once it serves: A1111/Forge (gradio) "Running on local URL:  http://127.0.0.1:7860",
# ComfyUI "To see the GUI go to: http://127.0.0.1:8188".
_READY = re.compile(r"(?:Running on local URL:|To see the GUI go to:)\s*(https?://\S+)")

# Lines after which the web UI will not come up (it exits by itself, or waits for a key that never comes).
FATAL = (
    "Torch is not able to use GPU",
    "Press any key to continue",
    "Couldn't launch python",
    "Couldn't install torch",
    "Cannot import 'setuptools.build_meta'",
    "ERROR: Could not find a version that satisfies the requirement",
)


@dataclass(frozen=True)
class LaunchPlan:
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)  # what the launch files set (added to the environment)
    host: str = "127.0.0.1"
    port: int = 7860
    source: str = "record"  # which file the flags and variables came from


def port_of(args: list[str], kind: str) -> tuple[str, int]:
    """(host to check, port) from the UI's flags: `--port N` / `--port=N`, `--listen` binds every interface."""
    port = DEFAULT_PORTS.get(kind, 7860)
    host = "127.0.0.1"
    for i, arg in enumerate(args):
        value = None
        if arg == "--port" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--port="):
            value = arg.split("=", 1)[1]
        if value is not None and value.isdigit():
            port = int(value)
        if arg == "--listen" or arg.startswith("--listen="):
            host = "0.0.0.0"
    return host, port


def build(kind: str, python: str, args: list[str], env: dict[str, str], source: str) -> LaunchPlan:
    host, port = port_of(args, kind)
    return LaunchPlan((python, ENTRY.get(kind, "launch.py"), *args), env, host, port, source)


def ready_url(line: str) -> str | None:
    match = _READY.search(line)
    return match.group(1).rstrip(".,") if match else None


def fatal(line: str) -> str | None:
    return next((needle for needle in FATAL if needle in line), None)
