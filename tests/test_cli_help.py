"""`sdsetup --help` lists the commands in the order a user meets them: check, install, verify, doctor,
then the tools (fetch, mirrors, bundle)."""

from __future__ import annotations

import re

import pytest

from typer.testing import CliRunner

from sdsetup.cli import app


def test_help_lists_commands_in_the_order_a_user_needs_them():
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "100", "NO_COLOR": "1"})
    assert result.exit_code == 0
    commands = result.stdout.split("Commands", 1)[1]
    names = re.findall(r"^\W+([a-z]+)\s{2,}\S", commands, flags=re.MULTILINE)
    assert names == ["check", "install", "verify", "doctor", "fetch", "update", "rollback", "launch", "gui", "mirrors", "bundle", "models", "ext"]


def test_proxy_help_shows_where_the_login_goes():
    # square brackets in a help text are Rich markup: "[user:pass@]" vanished from every --proxy help
    result = CliRunner().invoke(app, ["fetch", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0
    assert "user:pass@" in result.stdout


COMMANDS = [[], ["check"], ["install"], ["verify"], ["doctor"], ["fetch"], ["mirrors"], ["mirrors", "list"], ["mirrors", "probe"],
            ["bundle"], ["bundle", "create"], ["bundle", "verify"],
            ["models"], ["models", "add"], ["models", "list"],
            ["ext"], ["ext", "add"], ["ext", "list"], ["ext", "remove"], ["update"], ["rollback"], ["launch"], ["gui"]]


def _help(args, columns=80):
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": str(columns), "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a) or "sdsetup")
def test_a_flag_is_not_shown_as_taking_a_value(args):
    """`--json <bool>` read as if --json took a value (issue 11, item 17)."""
    text = _help(args)
    assert "<bool>" not in text
    for flag in ("--json", "--debug", "--help", "--dry-run", "--yes", "--fix"):
        for line in text.splitlines():
            if re.search(rf"(^|\s|,){flag}\s", line):
                assert not re.search(rf"{flag} <", line), line


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a) or "sdsetup")
def test_help_text_breaks_lines_only_where_the_width_needs_it(args):
    """No sentence cut by a line break left in the source, nor a summary cut short with '...'."""
    text = _help(args)
    assert "..." not in text.replace("COMMAND [ARGS]...", "").replace("{urls}...", "").replace("urls...", "")
    lines = text.splitlines()
    for line, following in zip(lines, lines[1:]):
        if not line.strip() or not following.strip() or line.strip().endswith(":"):
            continue
        indent = len(following) - len(following.lstrip())
        if indent != len(line) - len(line.lstrip()) or following.lstrip().startswith("-"):
            continue  # a new entry, not the same paragraph
        # the next line's first word would have fitted on this one: the break was not the width's
        assert len(line.rstrip()) + 1 + len(following.split()[0]) > 76, f"{line!r} / {following!r}"
