"""Forge and ComfyUI end to end, on 127.0.0.1 only, in the install end-to-end test's world (local git
server, PEP 503 index, torch index, Hugging Face tree: tests/fixtures/install/) plus stand-in
repositories with the upstream layouts: ComfyUI's main.py, requirements.txt and models/checkpoints;
Forge's webui-user files, launch.py and backend/args.py.

What a user would notice: each UI installs, starts with its own launch configuration and passes verify's
checks; a run killed midway continues; a second UI installed beside the first reuses its checkpoint
without downloading it again (the file server's request log shows one download).
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

COMFY_MAIN = '''"""Stand-in for ComfyUI's main.py: checks what a first start needs, offline; prints one JSON line."""
import json, os, sys
from importlib import metadata
os.chdir(os.path.dirname(os.path.abspath(__file__)))
problems = []
try:
    import torch
    if getattr(torch, "BUILD", None) != "cpu":
        problems.append("torch is not the cpu build")
except ImportError:
    problems.append("torch missing")
try:
    metadata.version("fixture-a")
except metadata.PackageNotFoundError:
    problems.append("requirements not installed")
if "--cpu" not in sys.argv:
    problems.append("no --cpu on a machine without a GPU")
# folder_paths: models/checkpoints, plus the folders extra_model_paths.yaml names (base_path + checkpoints).
folders, base = ["models/checkpoints"], None
if os.path.isfile("extra_model_paths.yaml"):
    for line in open("extra_model_paths.yaml", encoding="utf-8"):
        key, _, value = line.strip().partition(": ")
        if key == "base_path":
            base = json.loads(value)
        elif key == "checkpoints" and base:
            folders.append(os.path.join(base, json.loads(value)))
if not any(os.path.isfile(os.path.join(folder, "model.safetensors")) for folder in folders):
    problems.append("no checkpoint in %s" % folders)
print(json.dumps({"ok": not problems, "problems": problems, "args": sys.argv[1:]}))
sys.exit(0 if not problems else 1)
'''


def comfy_files() -> dict[str, str]:
    return {
        "main.py": COMFY_MAIN,
        "folder_paths.py": "# stand-in: models_dir = models/\n",
        "comfy/cli_args.py": "# stand-in: --cpu, --lowvram, --force-fp32\n",
        "requirements.txt": "fixture-a==1.0\ntorch\n",
        "models/checkpoints/put_checkpoints_here": "",
        "extra_model_paths.yaml.example": "a1111:\n    base_path: path/to/stable-diffusion-webui/\n",
        ".gitignore": "/venv\n/models/checkpoints/*.safetensors\n",
    }


def forge_files() -> dict[str, str]:
    files = fx.webui_files()
    files["backend/args.py"] = "# stand-in: --always-cpu, --always-low-vram\n"
    return files


COMFY_MANIFEST = '''schema = 1
name = "comfyui-fixture"
title = "stand-in ComfyUI"

[launcher]
kind = "comfyui"

[webui]
url = "https://github.com/sdfixture/ComfyUI.git"
commit = "{commit}"
markers = ["main.py", "folder_paths.py"]

[python]
supported = ["3.10", "3.11", "3.12", "3.13"]
recommended = "3.12"

[torch.cpu]
packages = ["torch==2.1.2", "torchvision==0.16.2"]
index = "https://download.pytorch.org/whl/{{tag}}"
tags = ["cpu"]
download_bytes = 100000
installed_bytes = 100000

[[pip]]
name = "build-tools"
packages = ["setuptools==69.5.1", "wheel"]

[[pip]]
name = "requirements"
requirements_file = "requirements.txt"

[[models]]
name = "fixture checkpoint"
path = "models/checkpoints/model.safetensors"
url = "https://huggingface.co/sdfixture/sd15/resolve/main/model.safetensors"
sha256 = "{sha256}"
size = {size}

[disk]
repositories_bytes = 1000000
packages_bytes = 1000000
tmp_bytes = 1000000
'''


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from tests.servers.fileserver import FileServer
    from tests.servers.gitserver import serve_git

    if not fx.real_wheels():
        pytest.skip("needs real pip/setuptools/wheel wheels in build/test-wheels: run scripts/test.sh once (it downloads them)")
    root = tmp_path_factory.mktemp("uis-world")
    with serve_git(root / "git") as git:
        built = fx.build_world(root, git)
        comfy_commit = git.create_repo("sdfixture/ComfyUI", comfy_files())
        forge_commit = git.create_repo("sdfixture/stable-diffusion-webui-forge", forge_files())
        with FileServer(built.files_dir) as files:
            a1111 = fx.write_manifest(built, root / "fixture.toml")
            text = a1111.read_text("utf-8")
            forge = root / "forge-fixture.toml"
            forge.write_text(text.replace('name = "fixture"', 'name = "forge-fixture"')
                             .replace("sdfixture/stable-diffusion-webui.git", "sdfixture/stable-diffusion-webui-forge.git")
                             .replace(built.webui_commit, forge_commit)
                             .replace("[webui]", '[launcher]\nkind = "forge"\n\n[webui]'), "utf-8")
            comfy = root / "comfyui-fixture.toml"
            comfy.write_text(COMFY_MANIFEST.format(commit=comfy_commit, sha256=built.model_sha256, size=built.model_size), "utf-8")
            config = fx.write_config(root / "config.toml", files.url("/"), git.prefix_base)
            facts = root / "machine.json"
            facts.write_text(json.dumps(fx.MACHINE), "utf-8")
            yield {"world": built, "files": files, "a1111": a1111, "forge": forge, "comfyui": comfy, "config": config,
                   "facts": facts}


def _env(world) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"SDSETUP_CONFIG": str(world["config"]), "SDSETUP_MACHINE_FACTS": str(world["facts"]),
                "SDSETUP_TIMEOUT": "10", "PYTHONUNBUFFERED": "1"})
    return env


def _argv(world, ui: str, target: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "sdsetup", "install", str(target), "--manifest", str(world[ui]), "--mirror", "e2e",
            "--python", sys.executable, "--yes", "--skip-smoke", *extra]


def _install(world, ui: str, target: Path) -> dict:
    result = subprocess.run(_argv(world, ui, target, "--json"), env=_env(world), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def _verify_items(world, target: Path) -> dict[str, dict]:
    """verify's items by id (the stand-in torch cannot run the smoke test, so only the checks are read)."""
    result = subprocess.run([sys.executable, "-m", "sdsetup", "verify", str(target), "--json"], env=_env(world),
                            capture_output=True, text=True, timeout=300)
    doc = json.loads(result.stdout)
    return {item["id"]: item for item in doc["data"]["items"]}


def _start_comfyui(target: Path) -> dict:
    result = subprocess.run(["bash", str(target / "run_comfyui.sh")], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _model_downloads(world) -> int:
    return len([r for r in world["files"].requests(MODEL_PATH) if r.method == "GET"])


def test_comfyui_installs_starts_with_its_own_flags_and_verifies(world, tmp_path):
    target = tmp_path / "ComfyUI"
    doc = _install(world, "comfyui", target)
    assert doc["ok"]
    record = json.loads((target / ".sdsetup" / "install.json").read_text("utf-8"))
    assert record["launcher"] == "comfyui" and record["launch_args"] == ["--cpu"]
    assert not (target / "webui-user.sh").exists()
    started = _start_comfyui(target)
    assert started["ok"], started["problems"]
    items = _verify_items(world, target)
    assert items["model:models/checkpoints/model.safetensors"]["status"] == "ok"
    assert items["launch-flags"]["status"] == "ok", items["launch-flags"]
    # The user drops --cpu: verify names it.
    script = target / "run_comfyui.sh"
    script.write_text(script.read_text("utf-8").replace(" --cpu", ""), "utf-8")
    assert _verify_items(world, target)["launch-flags"]["status"] == "fail"


def test_forge_installs_with_forges_memory_flags(world, tmp_path):
    target = tmp_path / "forge"
    _install(world, "forge", target)
    record = json.loads((target / ".sdsetup" / "install.json").read_text("utf-8"))
    assert record["launcher"] == "forge" and "--always-cpu" in record["launch_args"]
    launched = subprocess.run(["bash", str(target / "webui.sh")], capture_output=True, text=True, timeout=60,
                              env={k: v for k, v in os.environ.items() if not k.startswith(("HF_", "COMMANDLINE"))})
    doc = json.loads(launched.stdout.strip().splitlines()[-1])
    assert doc["ok"], doc["problems"]
    assert "--always-cpu" in doc["args"] and "--no-download-sd-model" in doc["args"]
    assert _verify_items(world, target)["model:models/Stable-diffusion/model.safetensors"]["status"] == "ok"


def test_a_second_ui_beside_the_first_reuses_its_checkpoint(world, tmp_path):
    first, second = tmp_path / "stable-diffusion-webui", tmp_path / "ComfyUI"
    _install(world, "a1111", first)
    before = _model_downloads(world)
    _install(world, "comfyui", second)
    assert _model_downloads(world) == before  # no second download
    a = first / "models" / "Stable-diffusion" / "model.safetensors"
    b = second / "models" / "checkpoints" / "model.safetensors"
    assert os.path.samefile(a, b)  # a hard link: the bytes are on disk once
    assert _verify_items(world, first)["model:models/Stable-diffusion/model.safetensors"]["status"] == "ok"
    assert _verify_items(world, second)["model:models/checkpoints/model.safetensors"]["status"] == "ok"
    assert _start_comfyui(second)["ok"]


def test_comfyui_killed_at_a_random_step_then_rerun_completes(world, tmp_path):
    target = tmp_path / "ComfyUI"
    steps = 9  # preflight, webui, venv, torch, 2 pip steps, models, launch scripts, record
    seed = int(os.environ.get("INSTALL_E2E_SEED") or time.time())
    kill_at = random.Random(seed).randrange(2, steps)
    world["files"].rule(MODEL_PATH, rate=1_000_000)
    process = subprocess.Popen(_argv(world, "comfyui", target), env=_env(world), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    seen = []
    try:
        for line in process.stderr:
            seen.append(line.rstrip())
            if line.startswith(f"[{kill_at}/"):
                if kill_at < steps - 1:  # the launch scripts and the record take milliseconds: kill at once there
                    time.sleep(random.Random(seed + 1).random() * 0.3)
                os.killpg(process.pid, signal.SIGKILL)
                break
    finally:
        process.wait(timeout=120)
        world["files"].clear(MODEL_PATH)
    assert process.returncode == -signal.SIGKILL, f"seed {seed}, kill at {kill_at}: {seen[-8:]}"
    _install(world, "comfyui", target)
    assert _start_comfyui(target)["ok"]
    journal = json.loads((target / ".sdsetup" / "journal.json").read_text("utf-8"))
    assert all(entry["status"] == "done" for entry in journal["steps"].values()), journal


@pytest.mark.skipif(not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat(os.path.dirname(os.path.abspath(__file__))).st_dev,
                    reason="needs a second file system (/dev/shm) to make a hard link impossible")
def test_a_checkpoint_on_another_file_system_is_used_where_it_is(world, tmp_path):
    """The first install's models folder is a link to another disk: no hard link can reach it, so the
    second UI names it in its own model-path setting (extra_model_paths.yaml) and still downloads nothing."""
    import shutil
    import tempfile

    first, second = tmp_path / "stable-diffusion-webui", tmp_path / "ComfyUI"
    _install(world, "a1111", first)
    other_disk = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="sdsetup-uis-"))
    try:
        folder = first / "models" / "Stable-diffusion"
        shutil.move(str(folder), str(other_disk / "Stable-diffusion"))
        folder.symlink_to(other_disk / "Stable-diffusion", target_is_directory=True)
        before = _model_downloads(world)
        _install(world, "comfyui", second)
        assert _model_downloads(world) == before  # no second download
        assert not (second / "models" / "checkpoints" / "model.safetensors").exists()
        yaml = (second / "extra_model_paths.yaml").read_text("utf-8")
        assert json.dumps(str(first / "models")) in yaml and '"Stable-diffusion"' in yaml
        item = _verify_items(world, second)["model:models/checkpoints/model.safetensors"]
        assert item["status"] == "ok" and "shared" in item["value"]
        assert _start_comfyui(second)["ok"]
        # A rerun is a no-op: nothing to do, nothing downloaded.
        doc = _install(world, "comfyui", second)
        assert doc["data"]["changed"] is False and _model_downloads(world) == before
    finally:
        shutil.rmtree(other_disk, ignore_errors=True)
