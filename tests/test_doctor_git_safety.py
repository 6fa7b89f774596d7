"""doctor reads the user's repositories with git; a repository's own configuration must not make that
run a program (core.fsmonitor runs on `git status`): doctor's git goes through gitops.GitRunner."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from sdsetup.doctor.repos import repo_state

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git(cwd, *args):
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, env=env)


def test_doctor_reading_a_repository_never_runs_its_fsmonitor_program(tmp_path):
    repo = tmp_path / "stable-diffusion-webui"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "launch.py").write_text("print('hi')\n")
    _git(repo, "add", "launch.py")
    _git(repo, "commit", "-qm", "one")
    canary = tmp_path / "fsmonitor-ran"
    hook = tmp_path / "monitor.sh"
    hook.write_text(f"#!/bin/sh\ntouch '{canary}'\nexit 1\n")
    hook.chmod(0o755)
    _git(repo, "config", "core.fsmonitor", str(hook))
    (repo / "launch.py").write_text("print('changed')\n")

    state = repo_state("stable-diffusion-webui", repo)

    assert not canary.exists(), "doctor ran the repository's core.fsmonitor program"
    assert state["head"] and any("launch.py" in line for line in state["status"])
