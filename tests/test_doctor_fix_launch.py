"""`doctor --fix` edits the file the UI really starts from — run_comfyui.sh/.bat for ComfyUI (issue 22
item 3) — and what it changed survives the next `sdsetup install` (issue 23 item 17)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from sdsetup import cli
from sdsetup.detect.machine import MachineFacts
from sdsetup.doctor import launch_files
from sdsetup.install import launch_overrides
from sdsetup.install.plan import InstallOptions, build_plan
from sdsetup.launchers.comfyui import render_bat, render_sh
from sdsetup.manifest import load_manifest
from sdsetup.net.mirrors import select_mirrors
from sdsetup.settings import load_settings

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
GIB = 1024**3


def doctor(*args: str):
    return CliRunner().invoke(cli.app, ["doctor", *args])


def comfy_install(root: Path) -> Path:
    root.mkdir()
    env = [("HF_HOME", str(root / ".cache" / "huggingface"))]
    (root / "run_comfyui.sh").write_text(render_sh(["--use-pytorch-cross-attention"], env))
    (root / "run_comfyui.bat").write_bytes(render_bat(["--use-pytorch-cross-attention"], env).encode())
    (root / "main.py").write_text("# ComfyUI\n")
    return root


def test_a_comfyui_fix_edits_run_comfyui_in_comfyuis_own_flags(tmp_path):
    root = comfy_install(tmp_path / "ComfyUI")
    result = doctor(str(root), "--log", str(FIXTURES / "nan-vae.log"), "--fix", "--yes", "--json")
    assert result.exit_code == 0, result.output
    sh = (root / "run_comfyui.sh").read_text()
    bat = (root / "run_comfyui.bat").read_bytes().decode()
    assert launch_files.effective_args(sh, "comfy-sh") == ["--use-pytorch-cross-attention", "--fp32-vae"]
    assert launch_files.effective_args(bat, "comfy-bat") == ["--use-pytorch-cross-attention", "--fp32-vae"]
    assert "--no-half-vae" not in sh, "A1111's flag is said in ComfyUI's words"
    assert bat.count("\r\n") == bat.count("\n"), "the .bat keeps CRLF"
    assert not (root / "webui-user.sh").exists() and not (root / "webui-user.bat").exists(), "no file ComfyUI never reads"
    # and again: nothing to do
    again = json.loads(doctor(str(root), "--log", str(FIXTURES / "nan-vae.log"), "--fix", "--yes", "--json").stdout)
    assert again["data"]["fixes"][0]["status"] == "done"


def test_out_of_memory_on_comfyui_goes_to_lowvram_and_an_env_fix_lands_before_main_py(tmp_path):
    root = comfy_install(tmp_path / "ComfyUI")
    assert doctor(str(root), "--log", str(FIXTURES / "cuda-oom.log"), "--fix", "--yes").exit_code == 0
    assert "--lowvram" in launch_files.effective_args((root / "run_comfyui.sh").read_text(), "comfy-sh")
    assert doctor(str(root), "--log", str(FIXTURES / "windows-gbk-encoding.log"), "--fix", "--yes").exit_code == 0
    bat = (root / "run_comfyui.bat").read_bytes().decode().splitlines()
    assert 'set "PYTHONUTF8=1"' in bat and bat.index('set "PYTHONUTF8=1"') < next(i for i, l in enumerate(bat) if "main.py" in l)
    assert launch_files.effective_env((root / "run_comfyui.sh").read_text(), "comfy-sh")["PYTHONUTF8"] == "1"


PORTABLE_GPU = ".\\python_embeded\\python.exe -s ComfyUI\\main.py --windows-standalone-build\r\npause\r\n"
PORTABLE_CPU = ".\\python_embeded\\python.exe -s ComfyUI\\main.py --cpu --windows-standalone-build\r\npause\r\n"


def portable(root: Path, gpu: str = PORTABLE_GPU) -> Path:
    (root / "ComfyUI").mkdir(parents=True)
    (root / "ComfyUI" / "main.py").write_text("# ComfyUI\n")
    (root / "python_embeded").mkdir()
    (root / "run_nvidia_gpu.bat").write_bytes(gpu.encode())
    (root / "run_cpu.bat").write_bytes(PORTABLE_CPU.encode())
    return root


def test_on_the_portable_build_a_fix_edits_run_nvidia_gpu_and_run_cpu_keeping_every_user_line(tmp_path):
    # the user's own additions: an echo line, a quoted output folder with a space, a % in a value
    gpu = ("@echo off\r\necho starting\r\n.\\python_embeded\\python.exe -s ComfyUI\\main.py --windows-standalone-build "
           '--output-directory "D:\\My Images"\r\npause\r\n')
    root = portable(tmp_path / "ComfyUI_windows_portable", gpu)
    # DIR may be the portable folder or the ComfyUI folder inside it
    for target in (root, root / "ComfyUI"):
        result = doctor(str(target), "--log", str(FIXTURES / "nan-vae.log"), "--fix", "--yes", "--json")
        assert result.exit_code == 0, result.output
    bat = (root / "run_nvidia_gpu.bat").read_bytes().decode()
    assert launch_files.effective_args(bat, "comfy-bat") == ["--windows-standalone-build", "--output-directory", '"D:\\My Images"',
                                                             "--fp32-vae"]
    assert bat.startswith("@echo off\r\necho starting\r\n") and bat.endswith("--fp32-vae\r\npause\r\n"), bat
    assert "%*" not in bat, "no argument forwarding the portable build never had"
    cpu = (root / "run_cpu.bat").read_bytes().decode()
    assert launch_files.effective_args(cpu, "comfy-bat") == ["--cpu", "--windows-standalone-build", "--fp32-vae"]
    assert not list(root.glob("webui-user.*")) and not list((root / "ComfyUI").glob("webui-user.*"))
    # an environment fix lands before main.py, quoted as in every other launch file (% doubled)
    assert doctor(str(root), "--log", str(FIXTURES / "windows-gbk-encoding.log"), "--fix", "--yes").exit_code == 0
    lines = (root / "run_nvidia_gpu.bat").read_bytes().decode().split("\r\n")
    assert lines.index('set "PYTHONUTF8=1"') < next(i for i, l in enumerate(lines) if "main.py" in l)
    assert launch_files.change(PORTABLE_GPU, "comfy-bat", set_env={"X": "50%"}).startswith('set "X=50%%"\r\n')
    assert launch_files.effective_env(launch_files.change(PORTABLE_GPU, "comfy-bat", set_env={"X": "50%"}), "comfy-bat") == {"X": "50%"}


def _plan(manifest: str, install_dir: Path):
    facts = MachineFacts.from_json({
        "os": {"system": "Linux", "release": "x", "version": "x", "machine": "x86_64", "bits": 64, "wsl": False},
        "gpus": [{"vendor": "nvidia", "name": "NVIDIA GeForce RTX 3060", "vram_total_bytes": 6 * GIB, "vram_free_bytes": None,
                  "driver_version": "550.54", "cuda_driver_version": "12.4", "compute_capability": "8.6", "source": "nvml"}],
        "ram_total_bytes": 32 * GIB, "ram_available_bytes": 24 * GIB})
    settings = load_settings({}, env={})
    return build_plan(load_manifest(manifest), facts, select_mirrors(settings, env={}), InstallOptions(), install_dir)


def test_a_flag_the_doctor_removed_stays_removed_on_the_next_install(tmp_path):
    root = tmp_path / "webui"
    root.mkdir()
    before = _plan("a1111", root).decisions.launch_args
    assert "--medvram" in before, before  # a 6 GB card: the install writes --medvram
    block = " ".join(before)
    (root / "webui-user.sh").write_text(
        f'#!/bin/bash\n# >>> sdsetup >>> managed\nexport COMMANDLINE_ARGS="${{COMMANDLINE_ARGS:+$COMMANDLINE_ARGS }}{block}"\n# <<< sdsetup <<<\n')
    result = doctor(str(root), "--log", str(FIXTURES / "cuda-oom.log"), "--fix", "--yes")
    assert result.exit_code == 0, result.output
    after = _plan("a1111", root).decisions.launch_args
    assert "--medvram" not in after and "--lowvram" in after, after
    assert launch_overrides.load(root)["remove_args"] == ["--medvram"]


def test_overrides_merge_a_flag_added_back_cancels_its_removal():
    once = launch_overrides.merged({}, remove_args=["--xformers"], add_args=["--opt-sdp-attention"])
    back = launch_overrides.merged(once, add_args=["--xformers"], set_env={"PYTHONUTF8": "1"})
    assert back == {"remove_args": [], "add_args": ["--opt-sdp-attention", "--xformers"], "env": {"PYTHONUTF8": "1"}}


def test_the_doctor_reads_extra_model_paths_yaml_as_the_user_wrote_it(tmp_path):
    root = comfy_install(tmp_path / "ComfyUI")
    shared = tmp_path / "a1111"
    (shared / "models").mkdir(parents=True)
    text = ('# 共享 A1111 的模型\na111:\n    base_path: "D:\\sd\\webui"\n    checkpoints: models/Stable-diffusion\n'
            f"gone:\n    base_path: {tmp_path / 'moved-away'}\nfine:\n    base_path: {shared}\n")
    (root / "extra_model_paths.yaml").write_bytes(text.encode("gbk"))  # a Chinese Windows editor's bytes
    result = doctor(str(root), "--json")
    found = [f for f in json.loads(result.stdout)["data"]["findings"] if f["id"] == "comfyui-extra-model-paths"]
    assert found, result.stdout[-2000:]
    evidence = " ".join(found[0]["evidence"])
    assert "line 3" in evidence and "double quotes" in evidence
    assert "moved-away does not exist" in evidence and str(shared) not in evidence
    assert (root / "extra_model_paths.yaml").read_bytes() == text.encode("gbk"), "read, never rewritten"
