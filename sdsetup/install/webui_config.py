"""webui-user.sh / webui-user.bat: pure renderers and a merge that keeps the user's own lines.

sdsetup owns one marked block in each file; everything outside it is the user's and is kept as is.
COMMANDLINE_ARGS in the block appends to whatever the user set above it, so their own flags stay.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from sdsetup.webui_user_file import BAT_CALL, append_args_line, block_markers, block_span, set_line, sh_quote, template

NOTE = "managed by `sdsetup install`: changes inside this block are replaced on the next install"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class LaunchSettings:
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]  # in the order written
    python: str | None = None  # the base interpreter (python_cmd / PYTHON: used only to create a venv)


def launch_env(*, repositories: Iterable, hf_home: str | None, hf_offline: bool, extra: Iterable[tuple[str, str]] = (),
               mirror_env: dict[str, str] | None = None) -> tuple[tuple[str, str], ...]:
    """The environment for the web UI, in a stable order (pure)."""
    env: dict[str, str] = {}
    for repo in repositories:
        # The pins the web UI checks: with HEAD equal to them it never fetches (and the URL is never used).
        if repo.url_env:
            env[repo.url_env] = repo.url
        if repo.commit_env:
            env[repo.commit_env] = repo.commit
    if hf_home:
        env["HF_HOME"] = hf_home
    if hf_offline:
        env["HF_HUB_OFFLINE"] = "1"
        env["TRANSFORMERS_OFFLINE"] = "1"  # transformers 4.30 reads its own switch
    for name, value in extra:
        env[name] = value
    for name, value in (mirror_env or {}).items():
        env.setdefault(name, value)
    return tuple(env.items())


def _render_block(settings: LaunchSettings, flavour: str) -> str:
    begin, end = block_markers("sdsetup", flavour)
    lines = [f"{begin} {NOTE}"]
    if settings.python:
        # python_cmd is webui.sh's own variable (not exported); PYTHON is webui.bat's.
        lines.append(f"python_cmd={sh_quote(settings.python)}" if flavour == "sh" else set_line("PYTHON", settings.python, "bat"))
    lines.append(append_args_line(settings.args, flavour))
    lines += [set_line(name, value, flavour) for name, value in settings.env if _ENV_NAME.match(name)]
    lines.append(end)
    newline = "\n" if flavour == "sh" else "\r\n"
    return newline.join(lines) + newline


def render_sh_block(settings: LaunchSettings) -> str:
    return _render_block(settings, "sh")


def render_bat_block(settings: LaunchSettings) -> str:
    return _render_block(settings, "bat")


def extract_block(text: str, kind: str) -> str | None:
    span = block_span(text, *block_markers("sdsetup", kind))
    return text[span[0]:span[1]] if span else None


def merge(existing: str | None, block: str, kind: str) -> tuple[str, str]:
    """(new text, how): how is created | replaced | inserted | appended | unchanged (pure).

    The block replaces an earlier sdsetup block in place; otherwise it goes just before the line that
    starts the web UI (`call webui.bat` in .bat files: anything after it runs only once the web UI has
    exited) or at the end (.sh: webui.sh sources the file, so the end is the last word).
    """
    if existing is None:
        return merge(template(kind), block, kind)[0], "created"
    crlf = "\r\n" in existing
    block = block.replace("\r\n", "\n")
    if crlf:
        block = block.replace("\n", "\r\n")
    newline = "\r\n" if crlf else "\n"
    span = block_span(existing, *block_markers("sdsetup", kind))
    if span:
        new = existing[:span[0]] + block + existing[span[1]:]
        return new, "unchanged" if new == existing else "replaced"
    # `sdsetup doctor --fix` keeps its own block last, so its fixes win: ours goes before it.
    doctor = re.search(r"(?m)^[ \t]*(#|rem) >>> sdsetup doctor >>>", existing)
    if doctor:
        at = doctor.start()
        return existing[:at] + block + newline + existing[at:], "inserted"
    if kind == "bat":
        match = BAT_CALL.search(existing)
        if match:
            at = match.start()
            return existing[:at] + block + newline + existing[at:], "inserted"
    prefix = existing if not existing or existing.endswith(("\n", "\r")) else existing + newline
    return prefix + newline + block, "appended"


def python_from_pyvenv_cfg(text: str, *, windows: bool = False) -> list[str]:
    """Where the interpreter a venv was made from may be (pure): pyvenv.cfg's `executable` (3.11+),
    else `home` + the versioned name (3.10 writes only `home` and `version`)."""
    values = {}
    for line in text.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            values[key.strip().lower()] = value.strip()
    candidates = []
    if values.get("executable"):
        candidates.append(values["executable"])
    home = values.get("home")
    if home:
        sep = "\\" if windows else "/"
        minor = ".".join((values.get("version") or values.get("version_info") or "").split(".")[:2])
        names = ["python.exe"] if windows else [f"python{minor}" if minor else "python3", "python3"]
        candidates += [home.rstrip("/\\") + sep + name for name in names]
    return list(dict.fromkeys(candidates))


def redact_env_for_record(env: Sequence[tuple[str, str]], secrets: Sequence[str]) -> dict[str, str]:
    """The launch env without credentials (the install record is read by the helpdesk bundle)."""
    from sdsetup.redact import redact_text

    return {name: redact_text(value, list(secrets)) for name, value in env}
