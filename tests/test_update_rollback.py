"""`sdsetup update --to REF` and `sdsetup rollback` end to end: a stand-in web UI at pin A (uipkg 1.0,
torch 2.1.0 held) moved to pin B (uipkg 2.0) through the github mirror and a local index, then rolled
back to exactly A: the commit, the venv's package set (from the local wheel cache: no index request, no
git request), the extension's commit, the launch file's sdsetup block. A killed update continues."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from sdsetup.snapshot.model import package_changes
from tests import daytwo_world as dw

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from tests.servers.fileserver import FileServer
    from tests.servers.gitserver import serve_git

    root = tmp_path_factory.mktemp("update-world")
    (root / "files").mkdir()
    with serve_git(root / "git") as git, FileServer(root / "files") as files:
        yield dw.build(root, git, files)


def _run(world, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sdsetup", *args, "--json"], env=dw.env(world), capture_output=True, text=True, timeout=240)


def _head(target) -> str:
    return subprocess.run(["git", "-C", str(target), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()


def test_update_from_pin_a_to_b_then_rollback_restores_a_exactly_from_the_local_cache(world, tmp_path):
    webui = dw.make_install(world, tmp_path / "webui")
    added = _run(world, "ext", "add", "https://github.com/sdfix/good-ext", "--dir", str(webui), "--mirror", "daytwo")
    assert added.returncode == 0, added.stderr[-2000:]
    packages_a = dw.venv_packages(webui)
    launch_a = (webui / "webui-user.sh").read_text("utf-8")

    updated = _run(world, "update", str(webui), "--to", "main", "--mirror", "daytwo")
    assert updated.returncode == 0, updated.stderr[-3000:]
    data = json.loads(updated.stdout)["data"]
    assert (data["from"], data["to"], data["packages"]) == (world.commit_a, world.commit_b, ["uipkg==2.0"])
    assert _head(webui) == world.commit_b and dw.venv_packages(webui)["uipkg"] == "2.0"
    assert dw.venv_packages(webui)["torch"] == "2.1.0"
    assert json.loads((webui / ".sdsetup/install.json").read_text())["webui"]["commit"] == world.commit_b

    # Later changes the rollback must undo: another extension, an edited sdsetup block, a package pip added.
    assert _run(world, "ext", "add", "https://github.com/sdfix/torch-ext", "--dir", str(webui), "--mirror", "daytwo",
                "--skip-requirements").returncode == 0
    (webui / "webui-user.sh").write_text(launch_a.replace("--skip-torch-cuda-test", "--medvram") + "export MINE=1\n", "utf-8")

    listed = json.loads(_run(world, "rollback", str(webui), "--list").stdout)["data"]["snapshots"]
    assert len(listed) == 1 and listed[0]["webui_commit"] == world.commit_a

    world.files.reset_log()
    world.git.clear()
    rolled = _run(world, "rollback", str(webui), "--mirror", "daytwo")
    assert rolled.returncode == 0, rolled.stderr[-3000:]
    venv = json.loads(rolled.stdout)["data"]["venv"]
    assert venv["from_cache"] == ["uipkg-1.0-py3-none-any.whl"] and venv["from_index"] == []
    assert _head(webui) == world.commit_a
    assert dw.venv_packages(webui) == packages_a  # the exact package set
    assert world.files.requests() == [] and world.git.requests == []  # no network at all
    assert not (webui / "extensions/torch-ext").exists() and (webui / "extensions/good-ext").is_dir()
    text = (webui / "webui-user.sh").read_text("utf-8")
    assert "--skip-torch-cuda-test" in text and "--medvram" not in text and "export MINE=1" in text  # the user's own line stays
    assert json.loads((webui / ".sdsetup/install.json").read_text())["webui"]["commit"] == world.commit_a
    assert not (webui / ".sdsetup/daytwo-journal.json").exists()


def test_an_update_killed_half_way_continues_when_run_again(world, tmp_path):
    webui = dw.make_install(world, tmp_path / "webui")
    world.files.rule("/pypi/files/*", rate=2_000, delay=1.0)  # slow enough to kill inside the package step
    proc = subprocess.Popen([sys.executable, "-m", "sdsetup", "update", str(webui), "--to", world.commit_b, "--mirror", "daytwo"],
                            env=dw.env(world), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _head(webui) != world.commit_b and proc.poll() is None:
            time.sleep(0.1)
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        world.files.rule("/pypi/files/*", rate=None, delay=None)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert (webui / ".sdsetup/daytwo-journal.json").exists()
    again = _run(world, "update", str(webui), "--to", world.commit_b, "--mirror", "daytwo")
    assert again.returncode == 0, again.stderr[-3000:]
    assert _head(webui) == world.commit_b and dw.venv_packages(webui)["uipkg"] == "2.0"
    assert len(json.loads(_run(world, "rollback", str(webui), "--list").stdout)["data"]["snapshots"]) == 1  # the first snapshot is kept
    back = _run(world, "rollback", str(webui))
    assert back.returncode == 0, back.stderr[-3000:]
    assert _head(webui) == world.commit_a and dw.venv_packages(webui)["uipkg"] == "1.0"


@pytest.mark.parametrize("current, target, remove, install", [
    ({"a": "1", "b": "2"}, {"a": "1", "b": "2"}, [], []),
    ({"a": "1", "b": "3"}, {"a": "1", "b": "2"}, ["b"], ["b"]),
    ({"a": "1", "c": "1", "pip": "25"}, {"a": "1"}, ["c"], []),
    ({"a": "1"}, {"a": "1", "d": "4"}, [], ["d"]),
])
def test_package_changes(current, target, remove, install):
    assert package_changes(current, target) == (remove, install)


@pytest.mark.parametrize("to, manifest", [(None, None), ("main", "a1111")])
def test_update_needs_exactly_one_target(to, manifest, tmp_path):
    from sdsetup.commands.update import update
    from sdsetup.errors import SdsetupError
    from sdsetup.settings import load_settings

    with pytest.raises(SdsetupError) as caught:
        update(load_settings({}), tmp_path, to=to, manifest=manifest)
    assert caught.value.exit_code == 2 and "--to" in caught.value.message


def test_a_rollback_killed_half_way_finishes_when_run_again_and_the_state_is_a(world, tmp_path):
    """SIGKILL inside the rollback's venv restore (uipkg 1.0 is not in the wheel cache, so it comes
    slowly from the index after 2.0 was taken out): the rerun continues the journaled rollback and ends
    at exactly A (commit, package set, record)."""
    webui = dw.make_install(world, tmp_path / "webui")
    packages_a = dw.venv_packages(webui)
    assert _run(world, "update", str(webui), "--to", world.commit_b, "--mirror", "daytwo").returncode == 0
    (webui / ".sdsetup/wheelhouse/uipkg-1.0-py3-none-any.whl").unlink()
    world.files.rule("/pypi/files/uipkg-1.0*", rate=500, delay=1.0)
    proc = subprocess.Popen([sys.executable, "-m", "sdsetup", "rollback", str(webui), "--mirror", "daytwo"], env=dw.env(world),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None and not any(
                "uipkg-1.0" in r.path for r in world.files.requests()):
            time.sleep(0.05)
        assert proc.poll() is None, "the rollback ended before the slow download began"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        world.files.rule("/pypi/files/uipkg-1.0*", rate=None, delay=None)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert (webui / ".sdsetup/daytwo-journal.json").exists()
    assert dw.venv_packages(webui) != packages_a  # killed half way: not A yet
    again = _run(world, "rollback", str(webui), "--mirror", "daytwo")
    assert again.returncode == 0, again.stderr[-3000:]
    assert _head(webui) == world.commit_a and dw.venv_packages(webui) == packages_a
    assert json.loads((webui / ".sdsetup/install.json").read_text())["webui"]["commit"] == world.commit_a
    assert not (webui / ".sdsetup/daytwo-journal.json").exists()
    assert "torch==2.1.0" in (webui / ".sdsetup/held-constraints.txt").read_text("utf-8").splitlines()


@pytest.fixture(scope="module")
def install_world(tmp_path_factory):
    """The install engine's own world (tests/fixtures/install/): `update --manifest` runs install."""
    from tests.fixtures.install import fixture as fx
    from tests.servers.fileserver import FileServer
    from tests.servers.gitserver import serve_git

    if not fx.real_wheels():
        pytest.skip("needs real pip/setuptools/wheel wheels in build/test-wheels: run scripts/test.sh once (it downloads them)")
    root = tmp_path_factory.mktemp("update-manifest-world")
    with serve_git(root / "git") as git:
        built = fx.build_world(root, git)
        with FileServer(built.files_dir) as files:
            config = fx.write_config(root / "config.toml", files.url("/"), git.prefix_base)
            facts = root / "machine.json"
            facts.write_text(json.dumps(fx.MACHINE), "utf-8")
            env = {**os.environ, "SDSETUP_CONFIG": str(config), "SDSETUP_MACHINE_FACTS": str(facts), "SDSETUP_TIMEOUT": "10",
                   "PYTHONUNBUFFERED": "1"}
            yield {"world": built, "git": git, "files": files, "root": root, "env": env, "manifest": fx.write_manifest(built, root / "a.toml")}


def test_update_to_a_manifest_at_pin_b_then_rollback_to_exactly_a(install_world, tmp_path):
    w, env = install_world["world"], install_world["env"]
    target = tmp_path / "webui"
    installed = subprocess.run([sys.executable, "-m", "sdsetup", "install", str(target), "--manifest", str(install_world["manifest"]),
                                "--mirror", "e2e", "--python", sys.executable, "--yes", "--skip-smoke", "--json"],
                               env=env, capture_output=True, text=True, timeout=400)
    assert installed.returncode == 0, installed.stderr[-3000:]
    packages_a = dw.venv_packages(target)
    record_a = json.loads((target / ".sdsetup/install.json").read_text("utf-8"))
    assert _head(target) == w.webui_commit

    # Pin B: a newer web UI commit, and a manifest that names it.
    git = install_world["git"]
    commit_b = dw.add_commit(git.root, "sdfixture/stable-diffusion-webui", {"NEWS.md": "pin B\n"})
    manifest_b = tmp_path / "b.toml"
    manifest_b.write_text(install_world["manifest"].read_text("utf-8").replace(w.webui_commit, commit_b), "utf-8")
    updated = subprocess.run([sys.executable, "-m", "sdsetup", "update", str(target), "--manifest", str(manifest_b), "--mirror", "e2e",
                              "--json"], env=env, capture_output=True, text=True, timeout=400)
    assert updated.returncode == 0, updated.stderr[-3000:]
    snapshot = json.loads(updated.stdout)["data"]["snapshot"]
    assert _head(target) == commit_b and (target / "NEWS.md").is_file()
    assert json.loads((target / ".sdsetup/install.json").read_text("utf-8"))["webui"]["commit"] == commit_b
    assert not (target / ".sdsetup/daytwo-journal.json").exists()
    # Drift after the update that the rollback must undo: a package pip moved.
    subprocess.run([str(target / "venv/bin/python"), "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                    str(next(w.files_dir.rglob("fixture_b-1.0-*.whl")))], check=True, capture_output=True)
    assert dw.venv_packages(target)["fixture-b"] == "1.0"

    rolled = subprocess.run([sys.executable, "-m", "sdsetup", "rollback", str(target), snapshot, "--mirror", "e2e", "--json"],
                            env=env, capture_output=True, text=True, timeout=400)
    assert rolled.returncode == 0, rolled.stderr[-3000:]
    assert _head(target) == w.webui_commit and not (target / "NEWS.md").exists()
    assert dw.venv_packages(target) == packages_a
    record = json.loads((target / ".sdsetup/install.json").read_text("utf-8"))
    assert record["webui"] == record_a["webui"]
