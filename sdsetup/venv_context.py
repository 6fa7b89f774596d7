"""What the wheelhouse and pip code (`install/wheelhouse.py`, `install/uv.py`, `install/pip_run.py`)
need from an install that already exists: its venv, state folder, mirror plan, one HTTP session and a
reporter. `ext`, `update` and `rollback` pass this where `install` passes its InstallContext."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from sdsetup.layout import InstallLayout


@dataclass
class VenvContext:
    install_dir: Path
    settings: Any
    mirrors: Any  # a MirrorPlan
    reporter: Any  # install.context.Reporter (say/detail/log)
    session: Any = None
    results: dict[str, Any] = field(default_factory=dict)

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
    def python(self) -> Path:
        return self.layout.python

    @property
    def constraints_file(self) -> Path:
        return self.layout.constraints

    @property
    def progress(self) -> bool:
        from sdsetup.output import progress_enabled

        return progress_enabled(self.settings.quiet)

    @cached_property
    def hash_cache(self):
        from sdsetup.hashing import HashCache

        return HashCache(self.layout.hash_cache)

    def git_runner(self):
        from sdsetup.gitops import GitRunner
        from sdsetup.redact import secrets_in_url

        return GitRunner(config_args=self.mirrors.git_config_args(insteadof=False), env=self.mirrors.git_env(),
                         secrets=secrets_in_url(self.settings.proxy))


def open_context(settings: Any, install_dir: Path) -> VenvContext:
    """The context of an existing install: one session, the mirror plan from settings."""
    from sdsetup.install.context import Reporter
    from sdsetup.net.mirrors import select_mirrors
    from sdsetup.net.session import build_session

    session = build_session(settings)
    return VenvContext(Path(install_dir), settings, select_mirrors(settings, session), Reporter(settings.quiet), session)
