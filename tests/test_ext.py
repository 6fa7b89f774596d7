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


def test_what_the_manifest_marks_as_held_is_held_by_ext_add(world, tmp_path):
    """`held = ["uipkg"]` in the manifest (kept in the install record): an extension asking for another
    uipkg is refused like one asking for another torch; without the key the same extension goes in."""
    webui = dw.make_install(world, tmp_path / "webui", held=("uipkg",))
    before = dw.venv_packages(webui)
    refused = _ext(world, "add", "https://github.com/sdfix/uipkg-ext", "--dir", str(webui))
    assert refused.returncode == 1, refused.stderr[-3000:]
    error = json.loads(refused.stdout)["error"]
    assert error["details"]["conflicts"] == [{"package": "uipkg", "held": "1.0", "wanted": "uipkg==2.0"}]
    assert "uipkg" in error["message"]
    assert not (webui / "extensions" / "uipkg-ext").exists() and dw.venv_packages(webui) == before

    record_file = webui / ".sdsetup/install.json"
    record = json.loads(record_file.read_text("utf-8"))
    del record["held"]
    record_file.write_text(json.dumps(record), "utf-8")
    accepted = _ext(world, "add", "https://github.com/sdfix/uipkg-ext", "--dir", str(webui))
    assert accepted.returncode == 0, accepted.stderr[-3000:]
    assert dw.venv_packages(webui)["uipkg"] == "2.0"


@pytest.mark.parametrize("value, problem", [('["gradio>=3"]', "is not a package name"), ('["numpy", "NumPy"]', "appears twice"),
                                            ('"gradio"', "expected a list"), ('["-r x"]', "is not a package name")])
def test_a_bad_held_key_is_a_usage_error_before_anything_is_done(tmp_path, value, problem):
    from tests.test_manifest import VALID

    bad = tmp_path / "held.toml"
    bad.write_text(f"held = {value}\n" + VALID, "utf-8")
    result = subprocess.run([sys.executable, "-m", "sdsetup", "install", str(tmp_path / "d"), "--manifest", str(bad), "--dry-run"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "'held" in result.stderr and problem in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "d").exists()


def test_the_held_key_reaches_the_install_record():
    from sdsetup.install_record import InstallRecord, RepoRecord
    from sdsetup.manifest import parse_manifest
    from sdsetup.tomlcompat import loads_toml
    from tests.test_manifest import VALID

    assert parse_manifest(loads_toml('held = ["gradio", "numpy"]\n' + VALID, "t"), "m.toml").held == ("gradio", "numpy")
    record = InstallRecord("m", RepoRecord("w", ".", "https://x/y.git", "0" * 40), "venv/bin/python", "cpu", held=["gradio"])
    assert InstallRecord.from_json(record.to_json()).held == ["gradio"]
    assert "held" not in InstallRecord("m", record.webui, "venv/bin/python", "cpu").to_json()  # older records stay as they were
