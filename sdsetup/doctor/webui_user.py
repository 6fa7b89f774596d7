"""Read and change webui-user.sh / webui-user.bat the way the doctor's fixes need (pure functions).

The doctor writes its changes into one marked block of its own, placed where it takes effect last
(.sh: the end, since webui.sh sources the file; .bat: just before `call webui.bat`), so the user's
lines and `sdsetup install`'s block stay as they were and deleting the block undoes the fixes.
Only removing a launch flag (swap_args) edits the COMMANDLINE_ARGS lines where the flag is.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

SH_BEGIN = "# >>> sdsetup doctor >>>"
SH_END = "# <<< sdsetup doctor <<<"
BAT_BEGIN = "rem >>> sdsetup doctor >>>"
BAT_END = "rem <<< sdsetup doctor <<<"
NOTE = "added by `sdsetup doctor --fix`; delete this block to undo"
ARGS = "COMMANDLINE_ARGS"

SH_TEMPLATE = "#!/bin/bash\n# Settings for webui.sh (it sources this file).\n"
BAT_TEMPLATE = "@echo off\r\n\r\nset PYTHON=\r\nset GIT=\r\nset VENV_DIR=\r\nset COMMANDLINE_ARGS=\r\n\r\ncall webui.bat\r\n"

_SH_ASSIGN = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_BAT_ASSIGN = re.compile(r'^\s*set\s+(")?([A-Za-z_][A-Za-z0-9_]*)=(.*?)(?(1)"\s*|\s*)$', re.IGNORECASE)
_BAT_CALL = re.compile(r'(?im)^[ \t]*call[ \t]+("?)webui\.bat\1.*$')


def flavour_of(name: str) -> str:
    return "bat" if name.lower().endswith(".bat") else "sh"


@dataclass
class Assignment:
    index: int  # line number in the file, from 0
    name: str
    raw: str  # the value as written (quotes and expansions included)


def assignments(text: str, flavour: str) -> list[Assignment]:
    found = []
    for index, line in enumerate(text.splitlines()):
        stripped = line.strip()
        if flavour == "sh":
            if stripped.startswith("#"):
                continue
            match = _SH_ASSIGN.match(line)
            if match:
                found.append(Assignment(index, match.group(1), match.group(2).strip()))
        else:
            if stripped.lower().startswith(("rem ", "rem\t", "::")) or stripped.lower() == "rem":
                continue
            match = _BAT_ASSIGN.match(line)
            if match:
                found.append(Assignment(index, match.group(2).upper(), match.group(3)))
    return found


def _expand_sh(raw: str, env: dict[str, str]) -> str:
    try:
        words = shlex.split(raw, comments=True)
    except ValueError:
        words = [raw.strip("\"'")]
    value = " ".join(words)

    def conditional(match: re.Match) -> str:
        current = env.get(match.group(1), "")
        return match.group(2).replace(f"${match.group(1)}", current) if current else ""

    value = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\+([^}]*)\}", conditional, value)
    value = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", lambda m: env.get(m.group(1) or m.group(2), ""), value)
    return value.strip()


def _expand_bat(raw: str, env: dict[str, str]) -> str:
    value = re.sub(r"%([A-Za-z_][A-Za-z0-9_]*)%", lambda m: env.get(m.group(1).upper(), ""), raw)
    return value.replace("%%", "%").strip()


def effective_env(text: str, flavour: str) -> dict[str, str]:
    """Every variable the file sets, as the shell would see it after the last assignment."""
    env: dict[str, str] = {}
    for item in assignments(text, flavour):
        env[item.name] = _expand_sh(item.raw, env) if flavour == "sh" else _expand_bat(item.raw, env)
    return env


def split_args(value: str) -> list[str]:
    try:
        return shlex.split(value)
    except ValueError:
        return value.split()


def effective_args(text: str, flavour: str) -> list[str]:
    return split_args(effective_env(text, flavour).get(ARGS, ""))


# ------------------------------------------------------------------------------------ the doctor block


@dataclass
class Block:
    env: dict[str, str] = field(default_factory=dict)  # NAME -> value, in the order written
    args: list[str] = field(default_factory=list)  # flags appended to COMMANDLINE_ARGS


def _span(text: str, flavour: str) -> tuple[int, int] | None:
    begin, end = (SH_BEGIN, SH_END) if flavour == "sh" else (BAT_BEGIN, BAT_END)
    start = text.find(begin)
    if start < 0:
        return None
    start = text.rfind("\n", 0, start) + 1
    stop = text.find(end, start)
    if stop < 0:
        return None
    newline = text.find("\n", stop)
    return start, len(text) if newline < 0 else newline + 1


def read_block(text: str, flavour: str) -> Block:
    span = _span(text, flavour)
    block = Block()
    if span is None:
        return block
    for item in assignments(text[span[0]:span[1]], flavour):
        if item.name == ARGS:
            value = _expand_sh(item.raw, {}) if flavour == "sh" else _expand_bat(item.raw, {})
            block.args = split_args(value)
        elif flavour == "sh":
            block.env[item.name] = _expand_sh(item.raw, {})
        else:
            block.env[item.name] = item.raw.replace("%%", "%")
    return block


def _sh_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def _bat_value(value: str) -> str:
    if '"' in value or "\n" in value or "\r" in value:
        raise ValueError(f"cannot write {value!r} into a .bat file")
    return value.replace("%", "%%")


def render_block(block: Block, flavour: str, newline: str) -> str:
    if flavour == "sh":
        lines = [f"{SH_BEGIN} {NOTE}"]
        lines += [f"export {name}={_sh_quote(value)}" for name, value in block.env.items()]
        if block.args:
            joined = " ".join(block.args).replace('"', '\\"').replace("$", "\\$")
            lines.append(f'export {ARGS}="${{{ARGS}:+${ARGS} }}{joined}"')
        lines.append(SH_END)
    else:
        lines = [f"{BAT_BEGIN} {NOTE}"]
        lines += [f'set "{name}={_bat_value(value)}"' for name, value in block.env.items()]
        if block.args:
            lines.append(f'set "{ARGS}=%{ARGS}% {" ".join(_bat_value(a) for a in block.args)}"')
        lines.append(BAT_END)
    return newline.join(lines) + newline


def _write_block(text: str, block: Block, flavour: str) -> str:
    newline = "\r\n" if "\r\n" in text or (not text and flavour == "bat") else "\n"
    rendered = render_block(block, flavour, newline) if (block.env or block.args) else ""
    span = _span(text, flavour)
    if span:
        return text[: span[0]] + rendered + text[span[1]:]
    if not rendered:
        return text
    if flavour == "bat":
        calls = list(_BAT_CALL.finditer(text))
        if calls:
            at = calls[-1].start()
            return text[:at] + rendered + newline + text[at:]
    prefix = text if not text or text.endswith("\n") else text + newline
    return prefix + newline + rendered


def _remove_flag(text: str, flavour: str, flag: str) -> str:
    """Drop `flag` from every COMMANDLINE_ARGS assignment line (the user's, install's and ours)."""
    lines = text.splitlines(keepends=True)
    token = re.compile(r"(?<![^\s\"'=}%])" + re.escape(flag) + r"(?![^\s\"'%])")
    for item in assignments(text, flavour):
        if item.name != ARGS:
            continue
        line = lines[item.index]
        body = line.rstrip("\r\n")
        ending = line[len(body):]
        cut = body.find("=") + 1  # only the value side
        value = token.sub("", body[cut:])
        value = re.sub(r"[ \t]{2,}", " ", value)
        value = re.sub(r'^[ \t]+|(?<=["}])[ \t]+|[ \t]+(?=")|[ \t]+$', "", value)
        lines[item.index] = body[:cut] + value + ending
    return "".join(lines)


def change(text: str | None, flavour: str, *, set_env: dict[str, str] | None = None,
           add_args: list[str] | tuple[str, ...] = (), remove_args: list[str] | tuple[str, ...] = ()) -> str:
    """The file with the changes made (pure). Changes already in effect are left alone, so applying
    the same change twice gives the same text."""
    if text is None:
        text = SH_TEMPLATE if flavour == "sh" else BAT_TEMPLATE
    for flag in remove_args:
        if flag in effective_args(text, flavour):
            text = _remove_flag(text, flavour, flag)
    block = read_block(text, flavour)
    env_now = effective_env(text, flavour)
    for name, value in (set_env or {}).items():
        key = name.upper() if flavour == "bat" else name
        if env_now.get(key) != value:
            block.env[key] = value
    args_now = effective_args(text, flavour)
    for flag in add_args:
        if flag not in args_now and flag not in block.args:
            block.args.append(flag)
    block.args = [a for a in block.args if a not in remove_args]
    return _write_block(text, block, flavour)
