"""webui-user.sh / webui-user.bat as files: what they set, and how sdsetup writes into them (pure).

The one reader of these files. `sdsetup install` (install/webui_config.py) and `sdsetup doctor --fix`
(doctor/webui_user.py) each write a marked block of their own with the helpers below, and verify,
the doctor and install read the result back through `effective_env` / `commandline_args`, so all
three agree on the flags and variables the web UI will see.

What the web UI sees: webui.sh sources the .sh file (bash); webui.bat runs the .bat file (cmd); then
launch.py shlex-splits COMMANDLINE_ARGS on every OS. The reader follows the plain assignments these
files hold (`export NAME=…`, `set NAME=…`, `set "NAME=…"`), last one winning, with the expansions
sdsetup's blocks use (`$NAME`, `${NAME}`, `${NAME:+word}`, `${NAME:-word}`, `%NAME%`); it runs nothing.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

ARGS = "COMMANDLINE_ARGS"

SH_TEMPLATE = "#!/bin/bash\n# Settings for webui.sh (it sources this file). Your own lines go outside the sdsetup block.\n"
BAT_TEMPLATE = "@echo off\r\n\r\nset PYTHON=\r\nset GIT=\r\nset VENV_DIR=\r\nset COMMANDLINE_ARGS=\r\n\r\ncall webui.bat\r\n"

# The line in webui-user.bat that starts the web UI: anything after it runs only once the web UI has exited.
BAT_CALL = re.compile(r'(?im)^[ \t]*call[ \t]+("?)webui\.bat\1.*$')

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_SH_ASSIGN = re.compile(rf"^\s*(?:export\s+)?({_NAME})=(.*)$")
_BAT_ASSIGN = re.compile(rf'^\s*set\s+(")?({_NAME})=(.*?)(?(1)"\s*|\s*)$', re.IGNORECASE)


def flavour_of(name: str) -> str:
    """`bat` for webui-user.bat, `sh` for webui-user.sh."""
    return "bat" if name.lower().endswith(".bat") else "sh"


def template(flavour: str) -> str:
    """The file to start from when the user has none (the .bat one is the web UI's own)."""
    return SH_TEMPLATE if flavour == "sh" else BAT_TEMPLATE


# ------------------------------------------------------------------------------------------- reading


@dataclass
class Assignment:
    index: int  # line number in the file, from 0
    name: str  # upper-cased in .bat files, where names ignore case
    raw: str  # the value as written (quotes and expansions included)


def assignments(text: str, flavour: str) -> list[Assignment]:
    """Every `NAME=value` line, in order; commented lines are skipped."""
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


def expand(raw: str, env: dict[str, str], flavour: str) -> str:
    """An assignment's value as the shell would store it, given the variables set so far."""
    return _expand_sh(raw, env) if flavour == "sh" else _expand_bat(raw, env)


def _expand_bat(raw: str, env: dict[str, str]) -> str:
    # Left to right, so `%%` (a literal %) is never read as the start of `%NAME%`.
    value = re.sub(rf"%%|%({_NAME})%", lambda m: env.get(m.group(1).upper(), "") if m.group(1) else "%", raw)
    return value.strip()


def _expand_sh(raw: str, env: dict[str, str]) -> str:
    """Quotes, backslashes, comments and parameter expansion; several words are joined with a space
    (bash would run the rest as a command, but the user meant them as the value)."""
    words: list[str] = []
    word: list[str] = []
    in_word = False
    i = 0
    while i < len(raw):
        char = raw[i]
        if char in " \t":
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
            i += 1
            continue
        if char == "#" and not in_word:
            break  # a comment
        in_word = True
        if char == "\\":
            word.append(raw[i + 1:i + 2])
            i += 2
        elif char == "'":
            end = raw.find("'", i + 1)
            end = len(raw) if end < 0 else end
            word.append(raw[i + 1:end])
            i = end + 1
        elif char == '"':
            text, i = _double_quoted(raw, i + 1, env, stop='"')
            word.append(text)
            i += 1
        elif char == "$":
            text, i = _dollar(raw, i, env)
            word.append(text)
        else:
            word.append(char)
            i += 1
    if in_word:
        words.append("".join(word))
    return " ".join(words).strip()


def _double_quoted(raw: str, i: int, env: dict[str, str], stop: str | None) -> tuple[str, int]:
    """Text from `i` up to `stop` (or the end) as inside double quotes; returns it and where it ended."""
    out: list[str] = []
    while i < len(raw) and raw[i] != stop:
        if raw[i] == "\\" and raw[i + 1:i + 2] in ("$", "`", '"', "\\"):
            out.append(raw[i + 1])
            i += 2
        elif raw[i] == "$":
            text, i = _dollar(raw, i, env)
            out.append(text)
        else:
            out.append(raw[i])
            i += 1
    return "".join(out), i


def _dollar(raw: str, i: int, env: dict[str, str]) -> tuple[str, int]:
    """`$NAME`, `${NAME}`, `${NAME:+word}`, `${NAME:-word}` at `i`; any other `$` stays as written."""
    plain = re.compile(_NAME).match(raw, i + 1)
    if plain:
        return env.get(plain.group(0), ""), plain.end()
    braced = re.compile(rf"\{{({_NAME})(?:(:?[-+])([^}}]*))?\}}").match(raw, i + 1)
    if not braced:
        return "$", i + 1
    name, operator, word = braced.groups()
    value = env.get(name)
    is_set = value is not None and (value != "" or not (operator or "").startswith(":"))
    if operator and operator.endswith("+"):
        value = _double_quoted(word, 0, env, stop=None)[0] if is_set else ""
    elif operator and not is_set:
        value = _double_quoted(word, 0, env, stop=None)[0]
    return value or "", braced.end()


def effective_env(text: str, flavour: str) -> dict[str, str]:
    """Every variable the file sets, as the shell holds it after the last assignment."""
    env: dict[str, str] = {}
    for item in assignments(text, flavour):
        env[item.name] = expand(item.raw, env, flavour)
    return env


def split_args(value: str) -> list[str]:
    """COMMANDLINE_ARGS as the web UI splits it (shlex, on every OS)."""
    try:
        return shlex.split(value)
    except ValueError:
        return value.split()


def commandline_args(text: str, flavour: str) -> list[str] | None:
    """The launch flags the file gives the web UI; None when it does not set COMMANDLINE_ARGS."""
    value = effective_env(text, flavour).get(ARGS)
    return None if value is None else split_args(value)


def effective_args(text: str, flavour: str) -> list[str]:
    return commandline_args(text, flavour) or []


# ------------------------------------------------------------------------------------------- writing


def block_markers(owner: str, flavour: str) -> tuple[str, str]:
    """The first and last line of the block `owner` ("sdsetup", "sdsetup doctor") keeps in a file."""
    comment = "#" if flavour == "sh" else "rem"
    return f"{comment} >>> {owner} >>>", f"{comment} <<< {owner} <<<"


def block_span(text: str, begin: str, end: str) -> tuple[int, int] | None:
    """Where the marked block is: from the start of its first line to the end of its last; None without one."""
    start = text.find(begin)
    if start < 0:
        return None
    start = text.rfind("\n", 0, start) + 1  # from the start of the marker's line
    stop = text.find(end, start)
    if stop < 0:
        return None
    newline = text.find("\n", stop)
    return start, (len(text) if newline < 0 else newline + 1)


def sh_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def bat_value(value: str) -> str:
    if '"' in value or "\n" in value or "\r" in value:
        raise ValueError(f"cannot write {value!r} into a .bat file")
    return value.replace("%", "%%")


def set_line(name: str, value: str, flavour: str) -> str:
    """`NAME=value` for the file, quoted so that the shell stores exactly `value`."""
    if flavour == "sh":
        return f"export {name}={sh_quote(value)}"
    return f'set "{name}={bat_value(value)}"'


def append_args_line(args: list[str] | tuple[str, ...], flavour: str) -> str:
    """COMMANDLINE_ARGS with `args` added after whatever the lines above it set."""
    if flavour == "sh":
        joined = re.sub(r'(["$`\\])', r"\\\1", " ".join(args))
        return f'export {ARGS}="${{{ARGS}:+${ARGS} }}{joined}"'
    return f'set "{ARGS}=%{ARGS}% {" ".join(bat_value(a) for a in args)}"'
