"""`sdsetup install` end to end, on 127.0.0.1 only: a fixture web UI, launch-time repositories, a PEP 503
index with tiny wheels (and real pip/setuptools/wheel), a torch index, a CLIP-like archive and Hugging
Face files, reached through a mirror profile in the test's config file (tests/fixtures/install/).

What a user would notice: the install completes and the web UI's first launch finds everything in place
(the fixture launch.py checks what A1111's prepare_environment would fetch); a second run changes and
downloads nothing; a run killed at a random step continues; a corrupt model never lands at its path.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.install import fixture as fx

pytestmark = pytest.mark.slow

MODEL_PATH = "/hf/sdfixture/sd15/resolve/main/model.safetensors"
FAST_TAIL = 11  # hub, webui-user and record take milliseconds: killed as they start, not inside


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Servers and a built world shared by the tests of this module (each installs into its own DIR)."""
    from tests.servers.fileserver import FileServer
    from tests.servers.gitserver import serve_git

    if not fx.real_wheels():
        pytest.skip("needs real pip/setuptools/wheel wheels in build/test-wheels: run scripts/test.sh once (it downloads them)")
    root = tmp_path_factory.mktemp("install-world")
    with serve_git(root / "git") as git:
        built = fx.build_world(root, git)
        with FileServer(built.files_dir) as files:
            manifest = fx.write_manifest(built, root / "fixture.toml")
            config = fx.write_config(root / "config.toml", files.url("/"), git.prefix_base)
            facts = root / "machine.json"
            facts.write_text(json.dumps(fx.MACHINE), "utf-8")
            yield {"world": built, "git": git, "files": files, "manifest": manifest, "config": config, "facts": facts, "root": root}


def _env(world) -> dict[str, str]:
    env = dict(os.environ)  # already isolated by tests/conftest.py (HOME, PIP_CONFIG_FILE=/dev/null, git)
    env.update({
        "SDSETUP_CONFIG": str(world["config"]),
        "SDSETUP_MACHINE_FACTS": str(world["facts"]),
        "SDSETUP_TIMEOUT": "10",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def _argv(world, target: Path, *extra: str, smoke: bool = False) -> list[str]:
    # The fixture's torch is a stand-in, so the smoke test (a real txt2img) is skipped but where it is the point.
    return [sys.executable, "-m", "sdsetup", "install", str(target), "--manifest", str(world["manifest"]),
            "--mirror", "e2e", "--python", sys.executable, "--yes", *([] if smoke else ["--skip-smoke"]), *extra]


def _install(world, target: Path, *extra: str, smoke: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(_argv(world, target, "--json", *extra, smoke=smoke), env=_env(world), capture_output=True, text=True, timeout=240)


def _launch(target: Path) -> dict:
    """The fixture web UI's first launch, through webui.sh (which sources webui-user.sh)."""
    result = subprocess.run(["bash", str(target / "webui.sh")], capture_output=True, text=True, timeout=60,
                            env={k: v for k, v in os.environ.items() if not k.startswith(("HF_", "COMMANDLINE"))})
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _assert_installed(world, target: Path) -> None:
    w = world["world"]
    record = json.loads((target / ".sdsetup" / "install.json").read_text("utf-8"))
    assert record["finished"] is True and record["manifest"] == "fixture"
    assert record["webui"]["commit"] == w.webui_commit
    assert {r["path"]: r["commit"] for r in record["repositories"]} == {
        "repositories/stable-diffusion-webui-assets": w.assets_commit,
        "repositories/stable-diffusion-stability-ai": w.sd_commit,
    }
    model = target / "models" / "Stable-diffusion" / "model.safetensors"
    assert model.stat().st_size == w.model_size
    launched = _launch(target)
    assert launched["ok"], launched["problems"]


def test_install_completes_and_a_second_run_changes_nothing(world, tmp_path):
    target = tmp_path / "webui"
    result = _install(world, target)
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["data"]["changed"] is True
    _assert_installed(world, target)

    # Through the mirror layer: the deleted canonical repository fell over to the fork's mirror,
    # archives and models came from the HTTP mirror, and nothing reached a canonical host.
    paths = [r["path"] for r in world["git"].requests]
    assert any("sdfixture-deleted/stablediffusion" in p for p in paths)
    assert any("sdfixture-fork/stablediffusion" in p for p in paths)
    assert world["files"].requests(MODEL_PATH, "GET")
    text = (target / "webui-user.sh").read_text("utf-8")
    assert "# Uncomment and change the variables below" in text  # the web UI's own lines are kept
    assert "--no-download-sd-model" in text and "HF_HUB_OFFLINE='1'" in text
    assert "call webui.bat" in (target / "webui-user.bat").read_text("utf-8").splitlines()[-1]

    before = fx.tree_state(target)
    world["files"].reset_log()
    world["git"].clear()
    again = _install(world, target)
    assert again.returncode == 0, again.stderr[-3000:]
    doc = json.loads(again.stdout)
    assert doc["data"]["changed"] is False
    assert {s["status"] for s in doc["data"]["steps"] if s["id"] != "preflight"} == {"done-before"}
    assert fx.tree_state(target) == before  # not one byte, not one mtime
    assert world["files"].requests() == [] and world["git"].requests == []  # nothing fetched, nothing probed

    # With the smoke test on, the stand-in torch cannot draw: the install says so (exit 1) and stays installed.
    smoked = _install(world, target, smoke=True)
    assert smoked.returncode == 1, smoked.stderr[-3000:]
    error = json.loads(smoked.stdout)["error"]
    assert "smoke test did not produce an image" in error["message"] and "install itself is complete" in error["hint"]
    assert json.loads((target / ".sdsetup" / "install.json").read_text("utf-8"))["finished"] is True


def test_killed_at_a_random_step_then_rerun_completes(world, tmp_path):
    target = tmp_path / "webui"
    steps = 13  # preflight, webui, venv, torch, 3 pip steps, 2 repositories, models, hub, webui-user, record
    # INSTALL_E2E_SEED=N replays a run (tests/conftest.py strips SDSETUP_* variables).
    seed = int(os.environ.get("INSTALL_E2E_SEED") or time.time())
    kill_at = random.Random(seed).randrange(2, steps + 1)
    # A slow mirror for the model (1 MB/s per connection), so a kill can land inside its download.
    world["files"].rule(MODEL_PATH, rate=1_000_000)
    process = subprocess.Popen(_argv(world, target), env=_env(world), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    seen = []
    try:
        for line in process.stderr:
            seen.append(line.rstrip())
            if line.startswith(f"[{kill_at}/"):
                if kill_at < FAST_TAIL:
                    time.sleep(random.Random(seed + 1).random() * 0.3)  # somewhere inside the step
                os.killpg(process.pid, signal.SIGKILL)  # the whole group: pip and git die too, as on a power cut
                break
    finally:
        process.wait(timeout=120)
        world["files"].clear(MODEL_PATH)
    assert process.returncode == -signal.SIGKILL, f"seed {seed}, kill at {kill_at}: {seen[-8:]}"

    result = _install(world, target)
    assert result.returncode == 0, f"seed {seed}, killed at step {kill_at}: {result.stderr[-3000:]}"
    _assert_installed(world, target)
    journal = json.loads((target / ".sdsetup" / "journal.json").read_text("utf-8"))
    assert all(entry["status"] == "done" for entry in journal["steps"].values()), journal


def test_corrupt_model_fails_clearly_and_nothing_lands_at_the_final_path(world, tmp_path):
    from tests.servers.fileserver import Fault

    target = tmp_path / "webui"
    world["files"].always(MODEL_PATH, Fault.corrupt())
    try:
        result = _install(world, target)
    finally:
        world["files"].clear(MODEL_PATH)
    assert result.returncode == 4, result.stderr[-3000:]  # INTEGRITY
    doc = json.loads(result.stdout)
    assert "model.safetensors" in doc["error"]["message"] or "checkpoint" in doc["error"]["message"]
    assert doc["error"]["details"].get("step") == "models"
    model = target / "models" / "Stable-diffusion" / "model.safetensors"
    assert not model.exists()
    record = target / ".sdsetup" / "install.json"
    assert not record.exists()  # the install is not recorded as finished

    # With the mirror fixed, the same command finishes the job.
    again = _install(world, target)
    assert again.returncode == 0, again.stderr[-3000:]
    _assert_installed(world, target)


def test_a_second_install_on_the_same_dir_is_refused_while_the_first_runs(world, tmp_path):
    from sdsetup.install.journal import InstallLock

    target = tmp_path / "webui"
    with InstallLock(target, "install"):
        result = _install(world, target)
    assert result.returncode == 6, result.stderr  # BUSY
    doc = json.loads(result.stdout)
    assert f"pid {os.getpid()}" in doc["error"]["message"]
    assert not (target / ".git").exists()


def test_everything_goes_through_an_authenticating_proxy_and_the_password_stays_out_of_logs(world, tmp_path):
    """git, pip and the download engine all use --proxy; only webui-user (which the web UI's own tools
    read at launch) carries the password, readable by its owner only, and the output says so."""
    from tests.servers.proxy import serve_proxy

    secret = "s3cret-Proxy-pass"
    target = tmp_path / "webui"
    with serve_proxy(user="helpdesk", password=secret) as proxy:
        result = _install(world, target, "--proxy", proxy.url)
        seen = proxy.requests
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_installed(world, target)
    targets = " ".join(r["target"] for r in seen)
    for server in (world["git"].base, world["files"].url("/")):
        assert server.rstrip("/").split("//")[1] in targets  # both servers were reached through the proxy
    assert "/pypi/" in targets and "/hf/sdfixture/sd15/" in targets and "git-upload-pack" in targets
    # git (curl) asks without credentials first and answers the 407; nothing got through unauthorized.
    assert all(r["authorized"] for r in seen if r["status"] < 400)

    doc = json.loads(result.stdout)
    assert any("proxy password" in w for w in doc["warnings"])
    assert secret not in result.stdout + result.stderr
    log = Path(doc["data"]["log"]).read_text("utf-8")
    assert "step record done" in log and secret not in log
    for name in ("install.json", "journal.json"):
        assert secret not in (target / ".sdsetup" / name).read_text("utf-8")
    script = target / "webui-user.sh"
    assert secret in script.read_text("utf-8") and (script.stat().st_mode & 0o077) == 0


def test_moving_to_a_new_pin_asks_first_and_keeps_the_users_launcher_edits(world, tmp_path):
    """A manifest with a newer web UI commit: the checkout moves only with --yes, and webui-user.sh -
    tracked by the web UI, edited by its owner and by sdsetup - comes through as the user left it."""
    import subprocess as sp

    target = tmp_path / "webui"
    assert _install(world, target).returncode == 0
    script = target / "webui-user.sh"
    script.write_text(script.read_text("utf-8") + "export MY_OWN_SETTING=1\n", "utf-8")

    git = world["git"]
    work = git.root / ".work" / "sdfixture/stable-diffusion-webui"
    (work / "NEWS.md").write_text("a newer web UI\n")
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    sp.run(["git", *ident, "-C", str(work), "add", "-A"], check=True)
    sp.run(["git", *ident, "-C", str(work), "commit", "-q", "-m", "newer"], check=True)
    sp.run(["git", "-C", str(work), "push", "-q", str(git.root / "sdfixture/stable-diffusion-webui.git"), "HEAD:main"], check=True)
    newer = sp.run(["git", "-C", str(work), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    text = world["manifest"].read_text("utf-8").replace(world["world"].webui_commit, newer)
    manifest = tmp_path / "newer.toml"
    manifest.write_text(text, "utf-8")

    argv = [a for a in _argv(world, target, "--json") if a != "--yes"]
    argv[argv.index(str(world["manifest"]))] = str(manifest)
    refused = subprocess.run(argv, env=_env(world), capture_output=True, text=True, timeout=240)
    assert refused.returncode == 2 and "--yes" in json.loads(refused.stdout)["error"]["hint"]

    moved = subprocess.run(argv + ["--yes"], env=_env(world), capture_output=True, text=True, timeout=240)
    assert moved.returncode == 0, moved.stderr[-3000:]
    head = sp.run(["git", "-C", str(target), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert head == newer and (target / "NEWS.md").is_file()
    assert "export MY_OWN_SETTING=1" in script.read_text("utf-8") and "# >>> sdsetup >>>" in script.read_text("utf-8")
    ran = {s["id"] for s in json.loads(moved.stdout)["data"]["steps"] if s["status"] == "ran"}
    assert ran == {"preflight", "webui", "record"}  # nothing else depends on the commit here
    assert _launch(target)["ok"]


def _git(*args: str, cwd: Path) -> str:
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    return subprocess.run(["git", *ident, "-C", str(cwd), *args], capture_output=True, text=True, check=True).stdout.strip()


def test_an_unrelated_git_repository_is_refused_and_adopting_it_records_how_to_go_back(world, tmp_path):
    """Issue 11 item 3: `install --yes` into someone's own repository must not detach its HEAD or replace
    its origin; --adopt-repo does, after recording the old branch and origin, and the undo works."""
    target = tmp_path / "thesis"
    target.mkdir()
    _git("init", "-q", "-b", "main", cwd=target)
    (target / "chapter1.md").write_text("my work\n")
    _git("add", "-A", cwd=target)
    _git("commit", "-q", "-m", "mine", cwd=target)
    _git("remote", "add", "origin", "https://example.com/me/thesis.git", cwd=target)
    head = _git("rev-parse", "HEAD", cwd=target)

    for extra in ((), ("--dry-run",)):
        refused = _install(world, target, *extra)
        assert refused.returncode == 2, refused.stderr[-2000:]
        error = json.loads(refused.stdout)["error"]
        assert "not the web UI" in error["message"] and "--adopt-repo" in error["hint"]
    assert _git("rev-parse", "HEAD", cwd=target) == head and _git("symbolic-ref", "--short", "HEAD", cwd=target) == "main"
    assert _git("remote", "get-url", "origin", cwd=target) == "https://example.com/me/thesis.git"
    assert sorted(p.name for p in target.iterdir()) == [".git", "chapter1.md"]  # not even .sdsetup/

    adopted = _install(world, target, "--adopt-repo")
    assert adopted.returncode == 0, adopted.stderr[-3000:]
    doc = json.loads(adopted.stdout)
    previous = json.loads((target / ".sdsetup" / "previous-checkout.json").read_text("utf-8"))
    assert previous["head"] == head and previous["branch"] == "main" and previous["origin"] == "https://example.com/me/thesis.git"
    record = json.loads((target / ".sdsetup" / "install.json").read_text("utf-8"))
    assert record["previous_checkout"]["branch"] == "main"
    warning = next(w for w in doc["warnings"] if "moved from main" in w)
    assert "https://example.com/me/thesis.git" in warning and "checkout main" in warning
    for command in previous["undo"]:  # what the warning tells the user to run
        subprocess.run(command.replace('"', "").split(), check=True, capture_output=True)
    assert _git("rev-parse", "HEAD", cwd=target) == head and _git("symbolic-ref", "--short", "HEAD", cwd=target) == "main"
    assert _git("remote", "get-url", "origin", cwd=target) == "https://example.com/me/thesis.git"


def test_a_first_run_that_fails_before_the_web_ui_arrives_leaves_no_dir_behind(tmp_path):
    """Issue 11 item 17: docs/install.md promises that a run which created DIR and failed before any of
    the web UI was in it removes DIR again; the `git init` it had made (an empty .git) kept DIR there."""
    from tests.test_manifest import VALID

    manifest = tmp_path / "m.toml"
    manifest.write_text(VALID.replace('url = "https://github.com/o/webui.git"', 'url = "http://127.0.0.1:9/o/webui.git"'), "utf-8")
    argv = [sys.executable, "-m", "sdsetup", "install", "DIR", "--manifest", str(manifest), "--python", sys.executable,
            "--skip-smoke", "--skip-models", "--mirror", "official", "--yes"]
    target = tmp_path / "new"
    result = subprocess.run([target if a == "DIR" else a for a in argv], capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stderr[-2000:]
    assert not target.exists()

    existing = tmp_path / "mine"  # a DIR the user made stays, whatever is in it
    existing.mkdir()
    result = subprocess.run([existing if a == "DIR" else a for a in argv], capture_output=True, text=True, timeout=120)
    assert result.returncode == 3 and existing.is_dir()


@pytest.mark.parametrize("uv", ["off", "broken"])
def test_the_pip_fallback_installs_end_to_end(world, tmp_path, uv):
    """Issue 23 ("what the last round left"): without uv (SDSETUP_UV=off), or with a uv that cannot
    answer (here one that fails every call), pip's own dry run resolves and the same install completes,
    through the same mirrors; a uv failure is logged, never the install's end."""
    env = _env(world)
    if uv == "broken":
        fake = tmp_path / "uv"
        fake.write_text("#!/bin/sh\necho 'error: unexpected argument found' >&2\nexit 2\n")
        fake.chmod(0o755)
        env["SDSETUP_UV"] = str(fake)
    else:
        env["SDSETUP_UV"] = "off"
    target = tmp_path / "webui"
    result = subprocess.run(_argv(world, target, "--json"), env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["data"]["changed"] is True
    _assert_installed(world, target)
    logs = [p for p in Path(env["SDSETUP_CACHE_DIR"]).rglob("*.log") if p.is_file()]
    text = "\n".join(p.read_text("utf-8", "replace") for p in logs)
    assert logs and " with uv (" not in text, "pip resolved everything"
    if uv == "broken":
        assert "using pip's dry run" in text, text[-2000:]
