"""Change webui-user.sh / webui-user.bat the way the doctor's fixes need (pure functions).

The doctor writes its changes into one marked block of its own, placed where it takes effect last
(.sh: the end, since webui.sh sources the file; .bat: just before `call webui.bat`), so the user's
lines and `sdsetup install`'s block stay as they were and deleting the block undoes the fixes.
Only removing a launch flag (swap_args) edits the COMMANDLINE_ARGS lines where the flag is.
Reading what a file sets is sdsetup.webui_user_file's job (shared with install and verify).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sdsetup.webui_user_file import (
    ARGS, BAT_CALL, append_args_line, assignments, block_markers, block_span, effective_args, effective_env, expand,
    set_line, split_args, template,
)
from sdsetup.webui_user_file import flavour_of  # noqa: F401  (doctor.fixes reads files through this module)

NOTE = "added by `sdsetup doctor --fix`; delete this block to undo"


@dataclass
class Block:
    env: dict[str, str] = field(default_factory=dict)  # NAME -> value, in the order written
    args: list[str] = field(default_factory=list)  # flags appended to COMMANDLINE_ARGS


def _span(text: str, flavour: str) -> tuple[int, int] | None:
    return block_span(text, *block_markers("sdsetup doctor", flavour))


def read_block(text: str, flavour: str) -> Block:
    span = _span(text, flavour)
    block = Block()
    if span is None:
        return block
    for item in assignments(text[span[0]:span[1]], flavour):
        # Read on their own: the block's COMMANDLINE_ARGS line holds only the flags it adds.
        value = expand(item.raw, {}, flavour)
        if item.name == ARGS:
            block.args = split_args(value)
        else:
            block.env[item.name] = value
    return block


def render_block(block: Block, flavour: str, newline: str) -> str:
    begin, end = block_markers("sdsetup doctor", flavour)
    lines = [f"{begin} {NOTE}"]
    lines += [set_line(name, value, flavour) for name, value in block.env.items()]
    if block.args:
        lines.append(append_args_line(block.args, flavour))
    lines.append(end)
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
        calls = list(BAT_CALL.finditer(text))
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
        text = template(flavour)
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
