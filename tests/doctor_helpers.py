"""Builders for the doctor tests: a real web UI-like install folder (git repos, venv, record)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from sdsetup.install.record import InstallRecord, RepoRecord, save_record


def git(*args: str, cwd: Path) -> str:
    env = dict(os.environ, GIT_AUTHOR_DATE="2024-01-01T00:00:00Z", GIT_COMMITTER_DATE="2024-01-01T00:00:00Z")
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout.strip()


def make_repo(path: Path, files: dict[str, str], remote: str | None = None) -> str:
    path.mkdir(parents=True, exist_ok=True)
    git("init", "-q", cwd=path)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git("add", "-A", cwd=path)
    git("commit", "-q", "-m", "initial", cwd=path)
    if remote:
        git("remote", "add", "origin", remote, cwd=path)
    return git("rev-parse", "HEAD", cwd=path)


def make_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True, timeout=180)
    return path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def copy_venv(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest, symlinks=True)
    return dest / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def make_install(root: Path, venv_template: Path | None, *, webui_user: dict[str, str] | None = None,
                 webui_remote: str = "https://github.com/AUTOMATIC1111/stable-diffusion-webui.git",
                 repo_remote: str = "https://github.com/crowsonkb/k-diffusion.git") -> tuple[Path, dict[str, str]]:
    """DIR with the web UI checkout, repositories/k-diffusion, webui-user files, a venv and the record."""
    files = {"launch.py": "print('launch')\n", "modules/launch_utils.py": "# web UI\n"}
    files.update(webui_user or {})
    commit = make_repo(root, files, webui_remote)
    kd = make_repo(root / "repositories" / "k-diffusion", {"k_diffusion/__init__.py": "# k\n"}, repo_remote)
    (root / "repositories" / "k-diffusion" / "k_diffusion" / "__init__.py").write_text("# changed locally\n")
    python_rel = None
    if venv_template is not None:
        copy_venv(venv_template, root / "venv")
        python_rel = "venv/Scripts/python.exe" if os.name == "nt" else "venv/bin/python"
    record = InstallRecord(
        manifest="a1111", webui=RepoRecord("stable-diffusion-webui", ".", webui_remote, commit),
        python=python_rel or "venv/bin/python", backend="cpu", torch_tag="cpu",
        repositories=[RepoRecord("K-diffusion", "repositories/k-diffusion", "https://github.com/crowsonkb/k-diffusion.git", kd)],
        finished=True,
    )
    save_record(root, record)
    return root, {"webui": commit, "k-diffusion": kd}
