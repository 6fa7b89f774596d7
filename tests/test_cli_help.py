"""`sdsetup --help` lists the commands in the order a user meets them: check, install, verify, doctor,
then the tools (fetch, mirrors, bundle)."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from sdsetup.cli import app


def test_help_lists_commands_in_the_order_a_user_needs_them():
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "100", "NO_COLOR": "1"})
    assert result.exit_code == 0
    commands = result.stdout.split("Commands", 1)[1]
    names = re.findall(r"^\W+([a-z]+)\s{2,}\S", commands, flags=re.MULTILINE)
    assert names == ["check", "install", "verify", "doctor", "fetch", "mirrors", "bundle"]


def test_proxy_help_shows_where_the_login_goes():
    # square brackets in a help text are Rich markup: "[user:pass@]" vanished from every --proxy help
    result = CliRunner().invoke(app, ["fetch", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0
    assert "user:pass@" in result.stdout
