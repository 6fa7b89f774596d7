"""webui-user.sh / webui-user.bat: pure renderers and a merge that keeps the user's own lines.

sdsetup owns one marked block in each file; everything outside it is the user's and is kept as is.
COMMANDLINE_ARGS in the block appends to whatever the user set above it, so their own flags stay.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from sdsetup.webui_user_file import (
    BAT_CALL, append_args_line, bat_python_line, block_markers, block_span, codec_for, first_unencodable, relative_inside,
    set_line, sh_quote, template, value_problems,
)
from sdsetup.i18n import t

NOTE = "managed by `sdsetup install`: changes inside this block are replaced on the next install"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class LaunchSettings:
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]  # in the order written
    python: str | None = None  # the base interpreter (python_cmd / PYTHON: used only to create a venv)
    base: str | None = None  # the install dir: paths inside it go into the .bat as %~dp0…


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
    if settings.python and flavour == "sh":
        lines.append(f"python_cmd={sh_quote(settings.python)}")  # webui.sh's own variable (not exported)
    elif settings.python and bat_can_run(settings.python, settings.base):
        lines.append(bat_python_line(settings.python, settings.base))
    lines.append(append_args_line(settings.args, flavour))
    lines += [set_line(name, value, flavour, base=settings.base) for name, value in settings.env if _ENV_NAME.match(name)]
    lines.append(end)
    newline = "\n" if flavour == "sh" else "\r\n"
    return newline.join(lines) + newline


def bat_can_run(python: str, base: str | None) -> bool:
    """A PYTHON that cmd.exe can start: a Windows path, or one inside the install (written as %~dp0…).
    A Linux interpreter path means nothing to webui.bat, which then falls back to `python`."""
    return bool(re.match(r"^(?:[A-Za-z]:[\\/]|\\\\)", python)) or relative_inside(python, base) is not None


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
    crlf = kind == "bat" or "\r\n" in existing  # cmd.exe's own line ends, whatever the user's lines use
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


def launch_value_problems(manifest_launch: object, others: Iterable[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """(key, why) for each launch value that webui-user.bat/.sh cannot hold: the manifest's
    `launch.args[i]` and `launch.env.NAME`, then `others` as (key, value) (pure)."""
    items = [(f"launch.args[{i}]", arg) for i, arg in enumerate(getattr(manifest_launch, "args", ()) or ())]
    items += [(f"launch.env.{name}", value) for name, value in dict(getattr(manifest_launch, "env", {}) or {}).items()]
    return value_problems([*items, *others])


def check_launch_values(manifest: object, others: Iterable[tuple[str, str]] = ()) -> None:
    """The usage error for the first unwritable launch value, naming its manifest key (plan time)."""
    from sdsetup.errors import usage_error

    problems = launch_value_problems(getattr(manifest, "launch", None), others)
    if problems:
        key, why = problems[0]
        where = f"manifest '{getattr(manifest, 'name', '?')}' {key}" if key.startswith(("launch.", "repositories[")) else key
        raise usage_error(t("{where} cannot be written into webui-user.bat/.sh: {why}", where=where, why=why),
                          t("change that value in the manifest (or the setting it comes from); nothing was installed"))


def bat_encoding_problem(block: str, code_page: int) -> tuple[str, str] | None:
    """(character, line) that the batch file's code page cannot hold, or None (pure)."""
    return first_unencodable(block, code_page)


def encoding_refusal(char: str, line: str, code_page: int):
    """The error for a .bat value with a character the machine's code page lacks: name it and the fix."""
    from sdsetup.errors import usage_error

    name = line.split("=", 1)[0].replace('set "', "").replace("set ", "").strip() or line
    return usage_error(
        t("webui-user.bat: {name} holds '{char}' (U+{codepoint:04X}), which code page {code_page} cannot write; cmd.exe "
          "reads webui-user.bat in that code page, so the web UI would look for a different path", name=name, char=char,
          codepoint=ord(char), code_page=code_page),
        t("use a path whose characters all exist in code page {code_page} (e.g. install Python into C:\\Python310 and pass "
          "--python C:\\Python310\\python.exe), or set Windows' 'language for non-Unicode programs' to one that has "
          "'{char}'", code_page=code_page, char=char),
    )


def merge_bytes(existing: bytes | None, block: str, kind: str, code_page: int = 65001) -> tuple[bytes, str]:
    """merge() on the files' bytes: the block encoded for the shell that reads it (.bat: the OEM code
    page; .sh: UTF-8), the user's lines kept byte for byte in whatever encoding they have (pure).

    Raises UnicodeEncodeError when the block does not fit the code page (check bat_encoding_problem first)."""
    encoded = block.encode(codec_for(code_page) if kind == "bat" else "utf-8")
    # ASCII with surrogateescape: markers and `call webui.bat` are ASCII at line starts, every other byte
    # passes through unchanged (a GBK trail byte never is a line break).
    as_text = None if existing is None else existing.decode("ascii", "surrogateescape")
    new, how = merge(as_text, encoded.decode("ascii", "surrogateescape"), kind)
    return new.encode("ascii", "surrogateescape"), how


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
