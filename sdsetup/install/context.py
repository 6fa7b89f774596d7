"""What a running step can reach: the install dir, the plan's decisions, settings, mirrors, the journal,
the one HTTP session, a progress reporter, and a few values steps hand to each other."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from sdsetup import events
from sdsetup.fsutil import safe_join
from sdsetup.install.journal import Journal
from sdsetup.install.plan import Plan
from sdsetup.layout import InstallLayout
from sdsetup.layout import venv_python_rel as venv_python_rel  # re-exported
from sdsetup.logs import get_logger


class Reporter:
    """Progress lines on stderr (never stdout: --json keeps stdout for the one document)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.log = get_logger("install")

    def say(self, text: str) -> None:
        self.log.info(text)
        events.emit("line", text=str(text), level="say")
        if not self.quiet:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def detail(self, text: str) -> None:
        self.log.info(text)
        events.emit("line", text=str(text), level="detail")
        if not self.quiet:
            sys.stderr.write(f"      {text}\n")
            sys.stderr.flush()


def venv_python(venv_dir: Path) -> Path:
    if os.name == "nt":
        return venv_dir / "Scripts" / "python.exe"
    return venv_dir / "bin" / "python"


@dataclass
class InstallContext:
    plan: Plan
    settings: Any
    journal: Journal
    reporter: Reporter
    preflight: dict[str, Any] = field(default_factory=dict)  # check's data, when preflight ran
    warnings: list[str] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)  # what steps report for the outcome

    @property
    def install_dir(self) -> Path:
        return self.plan.install_dir

    @property
    def manifest(self):
        return self.plan.manifest

    @property
    def decisions(self):
        return self.plan.decisions

    @property
    def mirrors(self):
        return self.plan.mirrors

    @property
    def options(self):
        return self.plan.options

    @property
    def layout(self) -> InstallLayout:
        return InstallLayout(self.install_dir)

    @property
    def state_dir(self) -> Path:
        return self.layout.state_dir

    @property
    def wheelhouse(self) -> Path:
        return self.layout.wheelhouse

    @property
    def hf_home(self) -> Path:
        return self.layout.hf_home

    @property
    def venv_dir(self) -> Path:
        return self.layout.venv

    @property
    def python(self) -> Path:
        return venv_python(self.venv_dir)

    @property
    def constraints_file(self) -> Path:
        return self.layout.constraints

    def path(self, relative: str, what: str = "manifest path") -> Path:
        """A manifest path inside the install dir; escapes (.., absolute) are refused, and links into system
        folders; a link to another disk (models/ is often one) is followed, as verify follows it."""
        return safe_join(self.install_dir, relative, what, follow_links=True)

    @cached_property
    def session(self):
        from sdsetup.net.session import build_session

        return build_session(self.settings)

    @cached_property
    def hash_cache(self):
        from sdsetup.hashing import HashCache

        return HashCache(self.layout.hash_cache)

    @property
    def progress(self) -> bool:
        from sdsetup.output import progress_enabled

        return progress_enabled(self.options.quiet or self.settings.quiet)

    def git_runner(self):
        from sdsetup.gitops import GitRunner
        from sdsetup.redact import secrets_in_url

        return GitRunner(
            config_args=self.mirrors.git_config_args(insteadof=False),
            env=self.mirrors.git_env(),
            secrets=secrets_in_url(self.settings.proxy),
        )
