"""`sdsetup ext add/list/remove` end to end: extensions cloned through the github mirror (a real git
server) at a recorded commit, requirements from a local PEP 503 index into a real venv.

What a user notices: an extension whose requirements ask for another torch is refused before anything
changes (venv, extensions folder), with the choice it leaves; the same extension goes in with
--skip-requirements and torch stays; a normal extension's requirements are installed and torch stays;
remove keeps a copy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sdsetup.ext.rules import conflicts, held_packages, requirement_lines
from tests import daytwo_world as dw

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from tests.servers.fileserver import FileServer
    from tests.servers.gitserver import serve_git

    root = tmp_path_factory.mktemp("ext-world")
    (root / "files").mkdir()
    with serve_git(root / "git") as git, FileServer(root / "files") as files:
        yield dw.build(root, git, files)


def _ext(world, *args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "sdsetup", "ext", *args, "--json"]
    if args[0] == "add":
        argv += ["--mirror", "daytwo"]
    return subprocess.run(argv, env=dw.env(world), capture_output=True, text=True, timeout=240)


def test_an_extension_asking_for_another_torch_is_held_and_reported_before_anything_changes(world, tmp_path):
    webui = dw.make_install(world, tmp_path / "webui")
    before = dw.venv_packages(webui)

    refused = _ext(world, "add", "https://github.com/sdfix/torch-ext", "--dir", str(webui))
    assert refused.returncode == 1, refused.stderr[-3000:]
    error = json.loads(refused.stdout)["error"]
    assert error["details"]["conflicts"] == [{"package": "torch", "held": "2.1.0", "wanted": "torch==2.0.0"}]
    assert "--skip-requirements" in error["hint"]
    assert not (webui / "extensions" / "torch-ext").exists() and dw.venv_packages(webui) == before

    # A requirement that pulls another torch only through a dependency: the resolver, under the held pins, refuses.
    deep = _ext(world, "add", "https://github.com/sdfix/deep-ext", "--dir", str(webui))
    assert deep.returncode == 1, deep.stderr[-3000:]
    assert not (webui / "extensions" / "deep-ext").exists() and dw.venv_packages(webui) == before

    skipped = _ext(world, "add", "https://github.com/sdfix/torch-ext", "--dir", str(webui), "--skip-requirements")
    assert skipped.returncode == 0, skipped.stderr[-3000:]
    assert (webui / "extensions/torch-ext/scripts/t.py").is_file() and dw.venv_packages(webui) == before

    good = _ext(world, "add", "https://github.com/sdfix/good-ext", "--dir", str(webui))
    assert good.returncode == 0, good.stderr[-3000:]
    data = json.loads(good.stdout)["data"]
    assert data["commit"] == world.ext_ok and data["requirements"] == ["tinydep==1.0"]
    after = dw.venv_packages(webui)
    assert after["torch"] == "2.1.0" and after["tinydep"] == "1.0"
    assert (webui / ".sdsetup/wheelhouse/tinydep-1.0-py3-none-any.whl").is_file()  # rollback can reinstall it offline
    assert any("sdfix/good-ext" in r["path"] for r in world.git.requests)  # through the mirror

    listed = json.loads(_ext(world, "list", "--dir", str(webui)).stdout)["data"]["extensions"]
    assert {(e["name"], e["commit"], e["by_sdsetup"]) for e in listed} == {("good-ext", world.ext_ok, True),
                                                                          ("torch-ext", world.ext_torch, True)}
    removed = _ext(world, "remove", "good-ext", "--dir", str(webui))
    assert removed.returncode == 0, removed.stderr
    backup = Path(json.loads(removed.stdout)["data"]["backup"])
    assert (backup / "scripts/good.py").is_file() and not (webui / "extensions/good-ext").exists()


@pytest.mark.parametrize("lines, held, expected", [
    (["torch==2.0.0"], {"torch": "2.1.0+cu121"}, ["torch"]),
    (["torch>=2.0"], {"torch": "2.1.0+cu121"}, []),
    (["torch==2.1.0"], {"torch": "2.1.0+cu121"}, []),  # a local build satisfies its public version, as pip reads it
    (["Torch<2"], {"torch": "2.1.0"}, ["torch"]),
    (["torch @ https://example.org/torch.whl"], {"torch": "2.1.0"}, ["torch"]),
    (["xformers==0.0.20; sys_platform == 'nonexistent'"], {"xformers": "0.0.23"}, []),
    (["numpy==1.0"], {"torch": "2.1.0"}, []),
])
def test_which_requirements_would_move_a_held_package(lines, held, expected):
    assert [c.package for c in conflicts(lines, held)] == expected


def test_held_packages_and_requirement_lines_are_read_like_pip():
    assert held_packages("torch==2.1.0+cu121\ntorchvision==0.16.0+cu121\n# note\n", {"xformers": "0.0.23"}) == {
        "torch": "2.1.0+cu121", "torchvision": "0.16.0+cu121", "xformers": "0.0.23"}
    assert requirement_lines("# c\n-r other.txt\n--extra-index-url x\nnumpy  # pinned\n\ntorch\n") == ["numpy", "torch"]
