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
from typing import Iterable, Mapping

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


def expand(raw: str, env: dict[str, str], flavour: str, folder: str | None = None) -> str:
    """An assignment's value as the shell would store it, given the variables set so far; `folder`
    is the batch file's own folder (`%~dp0`), left as written when not given."""
    return _expand_sh(raw, env) if flavour == "sh" else _expand_bat(raw, env, folder)


def _expand_bat(raw: str, env: dict[str, str], folder: str | None = None) -> str:
    # Left to right, so `%%` (a literal %) is never read as the start of `%NAME%`.
    def one(match: re.Match) -> str:
        if match.group(0) == "%%":
            return "%"
        if match.group(1) is None:  # %~dp0: the folder with its trailing backslash
            return folder.rstrip("\\/") + "\\" if folder else match.group(0)
        return env.get(match.group(1).upper(), "")

    return re.sub(rf"%%|%~dp0|%({_NAME})%", one, raw, flags=re.IGNORECASE).strip()


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


def effective_env(text: str, flavour: str, folder: str | None = None) -> dict[str, str]:
    """Every variable the file sets, as the shell holds it after the last assignment (`folder`: see expand)."""
    env: dict[str, str] = {}
    for item in assignments(text, flavour):
        env[item.name] = expand(item.raw, env, flavour, folder)
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


def unclosed_block(text: str, begin: str, end: str) -> int | None:
    """The line number of a begin marker with no end marker of its own after it (deleted, or a second
    begin comes first), or None when every block is whole. Replacing from there to some later end would
    take the user's lines in between with it (issue 23 item 7), so callers refuse instead (pure)."""
    at = text.find(begin)
    while at >= 0:
        stop = text.find(end, at)
        again = text.find(begin, at + len(begin))
        if stop < 0 or 0 <= again < stop:
            return text.count("\n", 0, at) + 1
        at = text.find(begin, stop)
    return None


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


# What the two shells do with what sdsetup writes (facts: ../shared/facts/china-and-windows.md):
# - cmd.exe reads a batch file in the console's OEM code page (936 on Simplified-Chinese Windows), not
#   UTF-8; `%` must be doubled; `^ & | < >` are commands outside double quotes, and every `"` flips
#   in or out of quotes. Inside `set "NAME=value"` the specials are plain text as long as the value
#   holds no `"`, so that is the form for every value, with `%` doubled.
# - webui.bat runs `%PYTHON% -c ""` unquoted: PYTHON carries its own quotes (`set PYTHON="C:\…\python.exe"`,
#   the form webui.bat itself uses for the venv's interpreter).
# - a path inside the install is written as `%~dp0rest` (the folder of the batch file, with its
#   trailing backslash): the user's folder name (C:\Users\张三\…) never enters the file.
# - bash: single quotes keep spaces, `$` and backquotes; launch.py shlex-splits COMMANDLINE_ARGS.

DP0 = "%~dp0"

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def unwritable(value: str) -> str | None:
    """Why `value` cannot be written as one value into webui-user.bat / .sh, or None when it can (pure)."""
    if "\n" in value or "\r" in value:
        return "it holds a line break (each line of webui-user.bat/.sh is read on its own)"
    if '"' in value:
        return 'it holds a double quote ("): cmd.exe would end the quoted value there and run the rest as commands'
    control = _CONTROL.search(value)
    if control:
        return f"it holds the control character U+{ord(control.group(0)):04X}"
    return None


def value_problems(items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(key, why) for every value that cannot be written; `items` are (key, value) pairs (pure)."""
    return [(key, why) for key, value in items if (why := unwritable(str(value)))]


def sh_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def bat_value(value: str) -> str:
    """`value` for a batch file: `%` doubled; refused (ValueError) when a batch file cannot hold it."""
    why = unwritable(value)
    if why:
        raise ValueError(f"cannot write {value!r} into a .bat file: {why}")
    return value.replace("%", "%%")


def _windows_path(value: str) -> bool:
    return bool(re.match(r"^(?:[A-Za-z]:[\\/]|\\\\)", value))


def relative_inside(value: str, base: str | None) -> str | None:
    """The rest of `value` below the folder `base` with backslashes ("" for base itself), or None when
    `value` is not a path inside it. Windows paths compare without case (pure)."""
    if not base or not value:
        return None
    path = value.replace("/", "\\")
    root = base.replace("/", "\\").rstrip("\\")
    if not root:
        return None
    fold = str.lower if _windows_path(base) else (lambda text: text)
    if fold(path.rstrip("\\")) == fold(root):
        return ""
    if fold(path).startswith(fold(root) + "\\"):
        return path[len(root) + 1:]
    return None


def bat_path_value(value: str, base: str | None = None) -> str:
    """`value` for a batch file, as `%~dp0rest` when it is a path inside `base` (the batch file's folder)."""
    rest = relative_inside(value, base)
    if rest is not None:
        return DP0 + bat_value(rest)
    return bat_value(value)


def bat_python_line(python: str, base: str | None = None) -> str:
    """PYTHON with the quotes inside the value: webui.bat runs `%PYTHON%` unquoted."""
    return f'set PYTHON="{bat_path_value(python, base)}"'


def set_line(name: str, value: str, flavour: str, *, base: str | None = None) -> str:
    """`NAME=value` for the file, quoted so that the shell stores exactly `value`; in a .bat a path
    inside `base` (the install dir) is written relative to the batch file."""
    if flavour == "sh":
        return f"export {name}={sh_quote(value)}"
    return f'set "{name}={bat_path_value(value, base)}"'


_SHLEX_SAFE = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def arg_word(arg: str) -> str:
    """One launch flag as a word that launch.py's shlex.split gives back unchanged; never uses `"`
    (cmd.exe would see it) and quotes backslashes (shlex would eat them: C:\\models)."""
    if _SHLEX_SAFE.fullmatch(arg):
        return arg
    return "'" + arg.replace("'", "'\\''") + "'"


def append_args_line(args: list[str] | tuple[str, ...], flavour: str) -> str:
    """COMMANDLINE_ARGS with `args` added after whatever the lines above it set."""
    joined = " ".join(arg_word(a) for a in args)
    if flavour == "sh":
        joined = re.sub(r'(["$`\\])', r"\\\1", joined)
        return f'export {ARGS}="${{{ARGS}:+${ARGS} }}{joined}"'
    return f'set "{ARGS}=%{ARGS}% {bat_value(joined)}"'


# ------------------------------------------------------------------------------- code page (.bat)

# The OEM code page Windows gives each language (what cmd.exe reads batch files in); wine maps a
# Unix locale the same way. Anything not listed is 437 (US) on Windows too for English, 850 for the
# western European languages.
_OEM_BY_LOCALE = {
    "zh_cn": 936, "zh_sg": 936, "zh_tw": 950, "zh_hk": 950, "zh_mo": 950, "ja": 932, "ko": 949,
    "ru": 866, "uk": 866, "be": 866, "bg": 866, "el": 737, "tr": 857, "he": 862, "ar": 720, "th": 874,
    "vi": 1258, "pl": 852, "cs": 852, "sk": 852, "hu": 852, "hr": 852, "sl": 852, "ro": 852, "sr": 855,
    "lt": 775, "lv": 775, "et": 775, "de": 850, "fr": 850, "es": 850, "it": 850, "pt": 850, "nl": 850,
    "da": 850, "sv": 850, "fi": 850, "nb": 850, "no": 850, "is": 850, "ca": 850,
}


def oem_code_page_for_locale(name: str | None) -> int:
    """The OEM code page of a locale name like zh_CN.UTF-8 (pure; 437 for C/POSIX/en and unknown)."""
    lang = (name or "").split(".")[0].split("@")[0].lower().replace("-", "_")
    return _OEM_BY_LOCALE.get(lang) or _OEM_BY_LOCALE.get(lang.split("_")[0]) or 437


def machine_oem_code_page(environ: Mapping[str, str] | None = None) -> int:
    """This machine's OEM code page: GetOEMCP() on Windows, else the one wine gives the locale."""
    import os

    if os.name == "nt":
        try:
            import ctypes

            return int(ctypes.windll.kernel32.GetOEMCP())  # type: ignore[attr-defined]
        except Exception:
            return 437
    environ = os.environ if environ is None else environ
    name = environ.get("LC_ALL") or environ.get("LC_CTYPE") or environ.get("LANG")
    return oem_code_page_for_locale(name)


def codec_for(code_page: int) -> str:
    return "utf-8" if code_page == 65001 else f"cp{code_page}"


def first_unencodable(text: str, code_page: int) -> tuple[str, str] | None:
    """(character, the line holding it) for the first character `code_page` cannot hold, or None (pure)."""
    try:
        text.encode(codec_for(code_page))
        return None
    except UnicodeEncodeError as exc:
        start = text.rfind("\n", 0, exc.start) + 1
        stop = text.find("\n", exc.start)
        line = text[start:stop if stop >= 0 else len(text)].rstrip("\r")
        return text[exc.start], line
    except LookupError:
        return None  # a code page Python has no codec for: nothing to check against
