"""`sdsetup doctor DIR --fix`: the safe fixes, shown, confirmed, backed up, and a no-op the second time."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sdsetup import cli
from sdsetup.detect.machine import MachineFacts
from sdsetup.doctor import fixes, webui_user
from sdsetup.doctor.kb import Autofix
from sdsetup.settings import load_settings
from tests.doctor_helpers import copy_venv, git, make_install, make_repo, make_venv
from tests.servers.pypi_index import build_wheel, serve_tree, write_simple_index

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
OFFICIAL_BAT = "@echo off\r\n\r\nset PYTHON=\r\nset GIT=\r\nset VENV_DIR=\r\nset COMMANDLINE_ARGS=--xformers\r\n\r\ncall webui.bat\r\n"
OFFICIAL_SH = '#!/bin/bash\n#export COMMANDLINE_ARGS=""\n#python_cmd="python3"\nexport COMMANDLINE_ARGS="--medvram"\n'
SD_FORK = "https://github.com/w-e-w/stablediffusion.git"


def doctor(*args: str, input: str | None = None):
    return CliRunner().invoke(cli.app, ["doctor", *args], input=input)


def backups(root: Path) -> list[Path]:
    folder = root / ".sdsetup" / "backups"
    return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.fixture
def webui(tmp_path):
    root = tmp_path / "stable-diffusion-webui"
    root.mkdir()
    (root / "webui-user.bat").write_bytes(OFFICIAL_BAT.encode())
    (root / "webui-user.sh").write_text(OFFICIAL_SH)
    return root


# ------------------------------------------------------------------------------------ webui-user edits


@pytest.mark.parametrize(
    "flavour, before, changes, effective",
    [
        ("bat", OFFICIAL_BAT, {"add_args": ["--no-half-vae"]}, ["--xformers", "--no-half-vae"]),
        ("bat", OFFICIAL_BAT, {"remove_args": ["--xformers"], "add_args": ["--opt-sdp-attention"]}, ["--opt-sdp-attention"]),
        ("sh", OFFICIAL_SH, {"remove_args": ["--medvram"], "add_args": ["--lowvram"]}, ["--lowvram"]),
        # sdsetup install's own block (appends to the user's args) is understood and kept
        ("sh", 'export COMMANDLINE_ARGS="--api"\n# >>> sdsetup >>> managed\nexport COMMANDLINE_ARGS="${COMMANDLINE_ARGS:+$COMMANDLINE_ARGS }--xformers"\n# <<< sdsetup <<<\n',
         {"add_args": ["--upcast-sampling"]}, ["--api", "--xformers", "--upcast-sampling"]),
        ("bat", 'set COMMANDLINE_ARGS=--api\r\nrem >>> sdsetup >>> managed\r\nset "COMMANDLINE_ARGS=%COMMANDLINE_ARGS% --xformers --medvram"\r\nrem <<< sdsetup <<<\r\ncall webui.bat\r\n',
         {"remove_args": ["--medvram"], "add_args": ["--lowvram"]}, ["--api", "--xformers", "--lowvram"]),
    ],
)
def test_launch_flag_edits_take_effect_and_are_idempotent(flavour, before, changes, effective):
    after = webui_user.change(before, flavour, **changes)
    assert webui_user.effective_args(after, flavour) == effective
    assert webui_user.change(after, flavour, **changes) == after
    if flavour == "bat":
        assert "\r\n" in after and "\n" not in after.replace("\r\n", "")
        assert after.rstrip().endswith("call webui.bat"), "the settings come before the web UI starts"


def test_set_env_writes_a_block_the_user_can_delete_and_quotes_values():
    sh = webui_user.change(OFFICIAL_SH, "sh", set_env={"STABLE_DIFFUSION_REPO": SD_FORK, "ODD": "it's $HOME"})
    assert webui_user.effective_env(sh, "sh")["STABLE_DIFFUSION_REPO"] == SD_FORK
    assert "export ODD='it'\\''s $HOME'" in sh
    assert sh.startswith(OFFICIAL_SH), "the user's lines are untouched"
    bat = webui_user.change(OFFICIAL_BAT, "bat", set_env={"PIP_DEFAULT_TIMEOUT": "120", "PCT": "50%"})
    assert 'set "PCT=50%%"' in bat and webui_user.effective_env(bat, "bat")["PCT"] == "50%"
    # already in effect (set by the user): nothing is written
    assert webui_user.change('export HF_ENDPOINT="https://hf-mirror.com"\n', "sh", set_env={"HF_ENDPOINT": "https://hf-mirror.com"}) \
        == 'export HF_ENDPOINT="https://hf-mirror.com"\n'


@pytest.mark.parametrize(
    "installed, vision, driver, capability, expected",
    [
        ("2.1.2+cpu", "0.16.2+cpu", "12.4", "8.6", ("2.1.2", "0.16.2", "cu121")),  # torch 2.1.2 has no cu124 build
        ("2.1.2", "0.16.2", "11.8", "7.5", ("2.1.2", "0.16.2", "cu118")),
        ("2.1.2+cu121", "0.16.2+cu121", "12.8", "12.0", ("2.7.0", "0.22.0", "cu128")),  # RTX 50xx
        ("2.7.0+cpu", None, "12.8", "8.9", ("2.7.0", "0.22.0", "cu128")),
        ("2.1.2+cpu", None, None, "8.6", ("2.1.2", "0.16.2", "cu121")),  # driver unknown: the release default
    ],
)
def test_torch_build_for_the_driver_and_gpu(installed, vision, driver, capability, expected):
    assert fixes.choose_torch_build(installed, vision, driver, capability) == expected


# ------------------------------------------------------------------------------------ --fix end to end


def test_fix_sets_the_sd_repo_override_with_backups_and_reruns_as_a_no_op(webui):
    log = str(FIXTURES / "sd-repo-gone-not-found.log")
    before = {name: (webui / name).read_bytes() for name in ("webui-user.bat", "webui-user.sh")}
    result = doctor(str(webui), "--log", log, "--fix", "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert "set STABLE_DIFFUSION_REPO=" in result.stderr, "the fix is shown before it is applied"
    fix = json.loads(result.stdout)["data"]["fixes"][0]
    assert fix["findings"] == ["sd-repo-gone-not-found"] and fix["result"] == "applied"
    for name, flavour in (("webui-user.bat", "bat"), ("webui-user.sh", "sh")):
        env = webui_user.effective_env(fixes._read_text(webui / name)[0], flavour)
        assert env["STABLE_DIFFUSION_REPO"] == SD_FORK
        assert env["STABLE_DIFFUSION_COMMIT_HASH"] == "cf1d67a6fd5ea1aa600c4df58e5b47da45f6bdbf"
    saved = backups(webui)
    assert sorted(p.name.split(".")[0] + "." + p.name.split(".")[1] for p in saved) == ["webui-user.bat", "webui-user.sh"]
    assert {p.read_bytes() for p in saved} == set(before.values()), "the backups hold the files as they were"
    assert (webui / "webui-user.bat").read_bytes().count(b"\r\n") == (webui / "webui-user.bat").read_bytes().count(b"\n")

    after = {name: (webui / name).read_bytes() for name in before}
    again = doctor(str(webui), "--log", log, "--fix", "--yes", "--json")
    fix = json.loads(again.stdout)["data"]["fixes"][0]
    assert fix["status"] == "done" and fix["result"] is None
    assert {name: (webui / name).read_bytes() for name in before} == after
    assert backups(webui) == saved, "a second run writes nothing"


def test_fix_asks_and_a_no_changes_nothing(webui):
    before = (webui / "webui-user.sh").read_bytes()
    result = doctor(str(webui), "--log", str(FIXTURES / "nan-vae.log"), "--fix", input="n\n")
    assert result.exit_code == 1
    assert "add --no-half-vae" in result.stderr and "Apply this fix?" in result.stderr
    assert "not applied (declined)" in result.stdout
    assert (webui / "webui-user.sh").read_bytes() == before and backups(webui) == []
    result = doctor(str(webui), "--log", str(FIXTURES / "nan-vae.log"), "--fix", input="y\n")
    assert result.exit_code == 0 and "--no-half-vae: applied" in result.stdout
    assert "--no-half-vae" in webui_user.effective_args((webui / "webui-user.sh").read_text(), "sh")


def test_fix_without_an_answer_declines_and_json_stays_clean(webui):
    # run from a script or CI: stdin is empty, so the question gets no answer
    before = (webui / "webui-user.sh").read_bytes()
    result = doctor(str(webui), "--log", str(FIXTURES / "nan-vae.log"), "--fix", "--json", input="")
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith("{"), "only the JSON document on stdout (no prompt text)"
    assert json.loads(result.stdout)["data"]["fixes"][0]["result"] != "applied"
    assert (webui / "webui-user.sh").read_bytes() == before and backups(webui) == []


def test_fix_from_stdin_needs_yes(webui):
    result = doctor(str(webui), "--log", "-", "--fix", input="A tensor with NaNs was produced in VAE\n")
    assert result.exit_code == 2 and "--yes" in result.stderr


def test_fix_creates_webui_user_when_there_is_none(tmp_path):
    root = tmp_path / "webui"
    root.mkdir()
    result = doctor(str(root), "--log", str(FIXTURES / "xformers-mismatch.log"), "--log", str(FIXTURES / "cuda-oom.log"),
                    "--fix", "--yes", "--json")
    fixes_done = {f["action"]: f for f in json.loads(result.stdout)["data"]["fixes"]}
    assert fixes_done["vram_flags"]["result"] == "applied"
    assert fixes_done["swap_args --xformers --opt-sdp-attention"]["status"] == "skip"
    assert "--xformers is not in webui-user" in fixes_done["swap_args --xformers --opt-sdp-attention"]["reason"]
    created = root / ("webui-user.bat" if os.name == "nt" else "webui-user.sh")
    assert "--medvram" in webui_user.effective_args(created.read_text(), webui_user.flavour_of(created.name))
    assert backups(root) == [], "nothing existed, so nothing needed a backup"


def test_vram_fix_steps_down_one_level_per_run(webui):
    def flags():
        return webui_user.effective_args((webui / "webui-user.sh").read_text(), "sh")

    (webui / "webui-user.bat").unlink()  # one launcher: each file steps down on its own
    assert "--medvram" in flags()
    doctor(str(webui), "--log", str(FIXTURES / "cuda-oom.log"), "--fix", "--yes")
    assert "--lowvram" in flags() and "--medvram" not in flags()
    result = doctor(str(webui), "--log", str(FIXTURES / "cuda-oom.log"), "--fix", "--yes", "--json")
    vram = [f for f in json.loads(result.stdout)["data"]["fixes"] if f["action"] == "vram_flags"][0]
    assert vram["status"] == "skip" and "--lowvram is already set" in vram["reason"]


def test_hf_mirror_fix_sets_the_endpoint(webui):
    result = doctor(str(webui), "--log", str(FIXTURES / "hf-unreachable.log"), "--fix", "--yes")
    assert result.exit_code == 0, result.output
    env = webui_user.effective_env((webui / "webui-user.bat").read_text(), "bat")
    assert env["HF_ENDPOINT"] == "https://hf-mirror.com" and env["HF_HUB_DISABLE_XET"] == "1"


# ------------------------------------------------------------------------------------ fixes that run things


@pytest.fixture(scope="module")
def venv_template(tmp_path_factory):
    return make_venv(tmp_path_factory.mktemp("fix-venv") / "venv").parents[1]


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    root = tmp_path_factory.mktemp("index")
    wheels = [build_wheel(root / "build", "httpx", v) for v in ("0.24.1", "0.27.0")]
    wheels += [build_wheel(root / "build", "fastapi", v) for v in ("0.90.1", "0.94.0", "0.99.1")]
    wheels += [build_wheel(root / "build", "torch", "2.1.2+cpu"), build_wheel(root / "build", "torchvision", "0.16.2+cpu")]
    write_simple_index(root / "simple", wheels, root / "files")
    with serve_tree(root) as server:
        yield server.url("/simple/")


def test_pip_fix_installs_into_the_venv_from_the_configured_index_then_is_done(tmp_path, venv_template, index, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", index)
    root = tmp_path / "webui"
    root.mkdir()
    python = copy_venv(venv_template, root / "venv")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "httpx==0.27.0"], check=True, capture_output=True, timeout=180)
    result = doctor(str(root), "--log", str(FIXTURES / "httpx-socket-options.log"), "--fix", "--yes", "--json")
    assert result.exit_code == 0, result.output
    fix = json.loads(result.stdout)["data"]["fixes"][0]
    assert fix["action"] == "pip_install httpx==0.24.1" and fix["result"] == "applied", fix
    assert fixes.installed_versions(python, ["httpx"]) == {"httpx": "0.24.1"}
    again = json.loads(doctor(str(root), "--log", str(FIXTURES / "httpx-socket-options.log"), "--fix", "--yes", "--json").stdout)
    assert again["data"]["fixes"][0]["status"] == "done"


@pytest.mark.parametrize("webui_pin, expected", [("0.94.0", "0.94.0"), (None, "0.90.1")])
def test_middleware_fix_installs_the_checkouts_own_fastapi_pin_never_below_it(tmp_path, venv_template, index, monkeypatch,
                                                                               webui_pin, expected):
    # A1111 1.10 pins fastapi==0.94.0: the entry's 0.90.1 (right for pre-1.0 checkouts) would downgrade it.
    monkeypatch.setenv("PIP_INDEX_URL", index)
    root = tmp_path / "webui"
    root.mkdir()
    if webui_pin:
        (root / "requirements_versions.txt").write_text(f"gradio==3.41.2\nfastapi=={webui_pin}  # pinned\nhttpx==0.24.1\n")
    python = copy_venv(venv_template, root / "venv")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "fastapi==0.99.1"], check=True, capture_output=True, timeout=180)
    result = doctor(str(root), "--log", str(FIXTURES / "gradio-middleware.log"), "--fix", "--yes", "--json")
    assert result.exit_code == 0, result.output
    fix = next(f for f in json.loads(result.stdout)["data"]["fixes"] if f["action"].startswith("pip_install fastapi"))
    assert fix["result"] == "applied", fix
    assert fixes.installed_versions(python, ["fastapi"]) == {"fastapi": expected}
    again = json.loads(doctor(str(root), "--log", str(FIXTURES / "gradio-middleware.log"), "--fix", "--yes", "--json").stdout)
    assert next(f for f in again["data"]["fixes"] if f["action"].startswith("pip_install fastapi"))["status"] == "done"


def test_a_failing_fix_is_reported_with_pips_words_and_exit_code_5(tmp_path, venv_template, index, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", index.replace("/simple/", "/nothing-here/"))
    monkeypatch.setenv("PIP_RETRIES", "0")
    root = tmp_path / "webui"
    root.mkdir()
    copy_venv(venv_template, root / "venv")
    result = doctor(str(root), "--log", str(FIXTURES / "httpx-socket-options.log"), "--fix", "--yes")
    assert result.exit_code == 5, result.output
    assert "FAILED" in result.stdout and "httpx" in result.stdout


def test_torch_fix_plans_the_cuda_build_for_this_driver(tmp_path, venv_template, index, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", index)
    root = tmp_path / "webui"
    root.mkdir()
    (root / "webui-user.bat").write_bytes(OFFICIAL_BAT.encode())
    python = copy_venv(venv_template, root / "venv")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "torch==2.1.2+cpu", "torchvision==0.16.2+cpu"],
                   check=True, capture_output=True, timeout=180)
    facts = MachineFacts.from_json({"os": {"system": "Windows", "release": "10", "machine": "AMD64", "bits": 64},
                                    "gpus": [{"vendor": "nvidia", "name": "NVIDIA GeForce RTX 3060", "vram_total_bytes": 12884901888,
                                              "driver_version": "551.86", "cuda_driver_version": "12.4", "compute_capability": "8.6"}]})
    ctx = fixes.FixContext(install_dir=root, settings=load_settings({}), system="Windows", venv_python=python, facts=facts)
    [plan] = fixes.plan_fixes(ctx, [("torch-no-gpu", Autofix("torch_cuda"))])
    assert plan.status == "ready", plan.reason
    pip_op, edit_op = plan.operations
    assert pip_op.argv[:4] == [str(python), "-m", "pip", "install"]
    assert "torch==2.1.2+cu121" in pip_op.argv and "torchvision==0.16.2+cu121" in pip_op.argv
    assert "https://download.pytorch.org/whl/cu121" in [a.rstrip("/") for a in pip_op.argv]
    assert "TORCH_COMMAND=pip install torch==2.1.2+cu121" in edit_op.new_text
    # without an NVIDIA card the CUDA build cannot help: skipped with the CPU advice
    ctx.facts = MachineFacts.from_json({"os": {"system": "Windows"}, "gpus": [{"vendor": "amd", "name": "Radeon RX 6600"}]})
    [plan] = fixes.plan_fixes(ctx, [("torch-no-gpu", Autofix("torch_cuda"))])
    assert plan.status == "skip" and "--skip-torch-cuda-test" in plan.reason


def test_clip_fix_plans_setuptools_then_clip_without_build_isolation(tmp_path, venv_template):
    root = tmp_path / "webui"
    root.mkdir()
    (root / "webui-user.sh").write_text('export CLIP_PACKAGE="/wheels/clip.zip"\n')
    python = copy_venv(venv_template, root / "venv")
    ctx = fixes.FixContext(install_dir=root, settings=load_settings({}), system="Linux", venv_python=python)
    [plan] = fixes.plan_fixes(ctx, [("clip-pkg-resources", Autofix("reinstall_clip"))])
    assert plan.status == "ready"
    first, clip, open_clip = (op.argv[4:] for op in plan.operations)
    assert first[:2] == ["setuptools==69.5.1", "wheel"]
    assert clip[:2] == ["--no-build-isolation", "/wheels/clip.zip"], "the user's CLIP_PACKAGE is honoured"
    assert open_clip[0] == "--no-build-isolation" and "open_clip" in open_clip[1]


# ------------------------------------------------------------------------------------ git fixes


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to give a folder another owner")
def test_dubious_ownership_is_found_in_the_install_and_fixed(tmp_path):
    root, _ = make_install(tmp_path / "webui", None)
    repo = root / "repositories" / "k-diffusion"
    for path in [repo, *repo.rglob("*")]:
        os.lchown(path, 4242, 4242)
    result = doctor(str(root), "--json")
    data = json.loads(result.stdout)["data"]
    assert data["findings"][0]["id"] == "git-dubious-ownership" and data["findings"][0]["source"] == "repositories"
    result = doctor(str(root), "--fix", "--yes", "--json")
    fix = json.loads(result.stdout)["data"]["fixes"][0]
    assert fix["result"] == "applied", fix
    # the folder is another account's: the fix says whose before it is agreed to
    assert "belongs to '4242', not to you ('root')" in fix["reason"]
    assert "belongs to '4242'" in result.stderr and "hooks" in result.stderr
    assert str(repo) in git("config", "--global", "--get-all", "safe.directory", cwd=tmp_path)
    data = json.loads(doctor(str(root), "--json").stdout)["data"]
    assert "git-dubious-ownership" not in [f["id"] for f in data["findings"]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_dead_local_git_proxy_is_removed_and_its_value_kept(webui):
    port = _free_port()
    git("config", "--global", "http.proxy", f"http://127.0.0.1:{port}", cwd=webui)
    result = doctor(str(webui), "--log", str(FIXTURES / "local-proxy-dead.log"), "--fix", "--yes")
    assert result.exit_code == 0, result.output
    assert subprocess.run(["git", "config", "--global", "--get", "http.proxy"], capture_output=True).returncode == 1
    [note] = [p for p in backups(webui) if p.name.startswith("git-http-proxy")]
    assert f"http://127.0.0.1:{port}" in note.read_text()


def test_a_live_local_git_proxy_is_left_alone(webui):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        git("config", "--global", "http.proxy", f"http://127.0.0.1:{port}", cwd=webui)
        result = doctor(str(webui), "--log", str(FIXTURES / "local-proxy-dead.log"), "--fix", "--yes", "--json")
    fix = json.loads(result.stdout)["data"]["fixes"][0]
    assert fix["status"] == "skip" and "answers now" in fix["reason"]
    assert git("config", "--global", "--get", "http.proxy", cwd=webui) == f"http://127.0.0.1:{port}"


# ------------------------------------------------------------------------------------ fixes together


def test_several_webui_user_fixes_in_one_run_all_apply(webui):
    # three findings, three edits of the same files: each later fix builds on the earlier one's edit
    logs = ["sd-repo-gone-not-found.log", "nan-vae.log", "cuda-oom.log"]
    args = [a for name in logs for a in ("--log", str(FIXTURES / name))]
    result = doctor(str(webui), *args, "--fix", "--yes", "--json")
    done = {f["action"].split()[0]: f for f in json.loads(result.stdout)["data"]["fixes"]}
    assert {k: f["result"] for k, f in done.items()} == {"set_env": "applied", "add_args": "applied", "vram_flags": "applied"}, done
    assert result.exit_code == 0, result.output
    for name, flavour in (("webui-user.bat", "bat"), ("webui-user.sh", "sh")):
        text = fixes._read_text(webui / name)[0]
        assert webui_user.effective_env(text, flavour)["STABLE_DIFFUSION_REPO"] == SD_FORK
        flags = webui_user.effective_args(text, flavour)
        assert "--no-half-vae" in flags and ({"--medvram", "--lowvram"} & set(flags))
        assert text.count("sdsetup doctor >>>") == 1, "one block holds every fix"
    # a run after that changes nothing
    again = json.loads(doctor(str(webui), *args, "--fix", "--yes", "--json").stdout)["data"]["fixes"]
    assert all(f["result"] is None for f in again if f["action"] != "vram_flags"), again


def test_a_file_the_user_edits_during_the_run_is_still_refused(webui, monkeypatch):
    ctx = fixes.FixContext(webui, load_settings(), "Linux", None)
    plans = fixes.plan_fixes(ctx, [("nan-vae", Autofix("add_args", ("--no-half-vae",)))])
    (webui / "webui-user.sh").write_text(OFFICIAL_SH + "# the user's own edit\n")
    fixes.apply_fixes(plans, ctx, lambda plan: True)
    assert plans[0].result == "failed" and "changed while the doctor was running" in plans[0].detail


def test_clip_fix_installs_what_the_installs_own_manifest_names(tmp_path, venv_template):
    # one source of truth: the fix reads the setuptools pin and the archives from the manifest the
    # install was made from (its record), not from a copy of its own
    from sdsetup.install.record import InstallRecord, RepoRecord, save_record
    from sdsetup.manifest import builtin_manifest_dir

    text = (builtin_manifest_dir() / "a1111.toml").read_text("utf-8")
    text = text.replace("setuptools==69.5.1", "setuptools==70.0.0").replace(
        "https://github.com/mlfoundations/open_clip/archive/", "https://mirror.example/open_clip/archive/")
    custom = tmp_path / "custom.toml"
    custom.write_text(text, "utf-8")
    root = tmp_path / "webui"
    root.mkdir()
    python = copy_venv(venv_template, root / "venv")
    save_record(root, InstallRecord(manifest=str(custom), webui=RepoRecord("stable-diffusion-webui", ".", "https://x/y.git", "0" * 40),
                                    python="venv/bin/python", backend="cpu", torch_tag="cpu", repositories=[], finished=True))
    ctx = fixes.FixContext(install_dir=root, settings=load_settings({}), system="Linux", venv_python=python)
    [plan] = fixes.plan_fixes(ctx, [("clip-pkg-resources", Autofix("reinstall_clip"))])
    first, clip, open_clip = (op.argv[4:] for op in plan.operations)
    assert first[:2] == ["setuptools==70.0.0", "wheel"]
    assert open_clip[1].startswith("https://mirror.example/open_clip/archive/")
    assert "openai/CLIP/archive/d50d76daa670286dd6cacf3bcd80b5e4823fc8e1.zip" in clip[1]
