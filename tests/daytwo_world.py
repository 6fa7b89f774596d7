"""A small world for the day-two commands (ext, update, rollback, launch), all on 127.0.0.1:

- a real git server with a stand-in web UI (`sdfix/webui`, pins A and B: B needs uipkg 2.0 instead of
  1.0) and stand-in extensions (one whose requirements ask for another torch);
- a PEP 503 index of tiny wheels (torch 2.0.0 and 2.1.0 stand-ins, uipkg 1.0/2.0, tinydep 1.0);
- a config file whose `daytwo` profile routes pypi and github there;
- `make_install(dir)`: the web UI checked out at A, a real venv holding what an install would put there
  (torch 2.1.0 held by .sdsetup/constraints.txt, uipkg 1.0), its wheels in the install's wheelhouse, the
  install record and a webui-user.sh with an sdsetup block.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.servers.pypi_index import build_wheel, write_simple_index

LAUNCH_A = '''import os, sys
sys.stdout.write("stand-in web UI at pin A\\n")
'''
LAUNCH_B = '''import os, sys
sys.stdout.write("stand-in web UI at pin B\\n")
'''


@dataclass
class World:
    root: Path
    git: object
    files: object
    config: Path
    wheels: dict
    commit_a: str
    commit_b: str
    ext_ok: str
    ext_torch: str


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def add_commit(git_root: Path, name: str, files: dict[str, str]) -> str:
    """A second commit on the repository's main branch (pin B), pushed into the bare repository."""
    work = git_root / ".work" / name
    for rel, text in files.items():
        (work / rel).write_text(text, "utf-8")
    _git("add", "-A", cwd=work)
    _git("commit", "-q", "-m", "pin B", cwd=work)
    _git("push", "-q", str(git_root / f"{name}.git"), "HEAD:main", cwd=work)
    return _git("rev-parse", "HEAD", cwd=work)


def build(root: Path, git, files_server) -> World:
    wheels_dir = root / "wheels"
    wheels = {
        "torch-2.0.0": build_wheel(wheels_dir, "torch", "2.0.0"),
        "torch-2.1.0": build_wheel(wheels_dir, "torch", "2.1.0"),
        "uipkg-1.0": build_wheel(wheels_dir, "uipkg", "1.0"),
        "uipkg-2.0": build_wheel(wheels_dir, "uipkg", "2.0"),
        "tinydep-1.0": build_wheel(wheels_dir, "tinydep", "1.0"),
        "oldtorchdep-1.0": build_wheel(wheels_dir, "oldtorchdep", "1.0", requires=("torch<2.1",)),
    }
    write_simple_index(files_server.state.root / "pypi" / "simple", list(wheels.values()), files_server.state.root / "pypi" / "files")
    commit_a = git.create_repo("sdfix/webui", {"launch.py": LAUNCH_A, "requirements_versions.txt": "uipkg==1.0\n"})
    commit_b = add_commit(git.root, "sdfix/webui", {"launch.py": LAUNCH_B, "requirements_versions.txt": "uipkg==2.0\n"})
    ext_ok = git.create_repo("sdfix/good-ext", {"scripts/good.py": "# a stand-in extension\n", "requirements.txt": "tinydep>=1.0\n"})
    ext_torch = git.create_repo("sdfix/torch-ext", {"scripts/t.py": "# wants another torch\n", "requirements.txt": "torch==2.0.0\ntinydep\n"})
    git.create_repo("sdfix/deep-ext", {"requirements.txt": "oldtorchdep==1.0\n"})
    git.create_repo("sdfix/uipkg-ext", {"scripts/u.py": "# wants another uipkg\n", "requirements.txt": "uipkg==2.0\n"})
    config = root / "config.toml"
    config.write_text(
        "[profiles.daytwo]\n"
        f'pypi = [{{ name = "local-pypi", url = "{files_server.url("/pypi/simple/")}" }}]\n'
        f'github = [{{ name = "local-git", url = "{git.prefix_base}", style = "prefix", serves = ["git"] }}]\n', "utf-8")
    return World(root, git, files_server, config, wheels, commit_a, commit_b, ext_ok, ext_torch)


def env(world: World, **extra: str) -> dict[str, str]:
    out = dict(os.environ)
    out.update({"SDSETUP_CONFIG": str(world.config), "SDSETUP_TIMEOUT": "10", "PYTHONUNBUFFERED": "1"}, **extra)
    return out


def make_install(world: World, target: Path, *, held: tuple[str, ...] = ()) -> Path:
    _git("clone", "-q", world.git.url("sdfix/webui.git"), str(target), cwd=world.root)
    _git("-c", "advice.detachedHead=false", "checkout", "-q", "--detach", world.commit_a, cwd=target)
    _git("remote", "set-url", "origin", "https://github.com/sdfix/webui.git", cwd=target)
    subprocess.run([sys.executable, "-m", "venv", str(target / "venv")], check=True, capture_output=True)
    python = target / "venv" / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-index", str(world.wheels["torch-2.1.0"]),
                    str(world.wheels["uipkg-1.0"])], check=True, capture_output=True, env=env(world))
    state = target / ".sdsetup"
    (state / "wheelhouse").mkdir(parents=True)
    for key in ("torch-2.1.0", "uipkg-1.0"):
        shutil.copyfile(world.wheels[key], state / "wheelhouse" / world.wheels[key].name)
    (state / "constraints.txt").write_text("torch==2.1.0\n", "utf-8")
    record = {"manifest": "fixture", "webui": {"name": "stable-diffusion-webui", "path": ".", "url": "https://github.com/sdfix/webui.git",
                                                "commit": world.commit_a},
              "python": "venv/bin/python", "backend": "cpu", "torch_tag": "cpu", "finished": True,
              "launch_args": ["--skip-torch-cuda-test"], "env": {"SDSETUP_STANDIN": "1"}}
    if held:
        record["held"] = list(held)  # what a manifest's `held = [...]` puts in the record
    (state / "install.json").write_text(json.dumps(record), "utf-8")
    (target / "webui-user.sh").write_text("#!/bin/bash\n# >>> sdsetup >>>\nexport COMMANDLINE_ARGS='--skip-torch-cuda-test'\n# <<< sdsetup <<<\n", "utf-8")
    return target


def venv_packages(target: Path) -> dict[str, str]:
    out = subprocess.run([str(target / "venv/bin/python"), "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True,
                         env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}).stdout
    return {p["name"].lower(): p["version"] for p in json.loads(out)}
