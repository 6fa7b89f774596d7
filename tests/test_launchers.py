"""The launcher seam (sdsetup/launchers/): each UI's flags in its own words, its launch files read back,
the manifest's choice validated, and A1111 records unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdsetup.detect.recommend import CPU_FLAGS
from sdsetup.errors import SdsetupError
from sdsetup.install_record import InstallRecord, RepoRecord
from sdsetup.launchers import for_manifest, get_launcher
from sdsetup.launchers.comfyui import read_sh_args, render_sh
from sdsetup.manifest import load_manifest


def test_a1111_flags_pass_through_unchanged():
    flags = ["--medvram", "--xformers"]
    assert get_launcher("a1111").translate_flags(flags, "cuda") == flags


def test_forge_uses_its_own_memory_flags():
    forge = get_launcher("forge")
    assert forge.translate_flags(["--medvram", "--xformers"], "cuda") == ["--xformers"]
    assert forge.translate_flags(["--lowvram", "--opt-sdp-attention"], "cuda") == ["--always-low-vram", "--opt-sdp-attention"]
    cpu = forge.translate_flags(list(CPU_FLAGS), "cpu")
    assert cpu[-1] == "--always-cpu" and "--skip-torch-cuda-test" in cpu and cpu[:2] == ["--use-cpu", "all"]


def test_comfyui_gets_comfyuis_flags_not_a1111s():
    comfy = get_launcher("comfyui")
    assert comfy.translate_flags(list(CPU_FLAGS), "cpu") == ["--cpu"]
    assert comfy.translate_flags(["--lowvram", "--opt-sdp-attention"], "cuda") == ["--lowvram", "--use-pytorch-cross-attention"]
    assert comfy.translate_flags(["--medvram", "--xformers"], "cuda") == []
    assert comfy.translate_flags(["--upcast-sampling", "--opt-sub-quad-attention"], "rocm") == [
        "--force-upcast-attention", "--use-quad-cross-attention"]
    assert comfy.smoke_options(["--cpu"]) == {"webui_flags": ["--no-half"], "device": "cpu"}


def test_comfyui_script_flags_read_back_as_written():
    text = render_sh(["--cpu", "--listen", "0.0.0.0"], [("HF_HOME", "/a b/hf")])
    assert read_sh_args(text) == ["--cpu", "--listen", "0.0.0.0"]
    assert read_sh_args("#!/bin/sh\necho hi\n") is None


def test_builtin_manifests_choose_their_launchers():
    assert [for_manifest(load_manifest(n)).kind for n in ("a1111", "a1111-dev", "forge", "comfyui")] == [
        "a1111", "a1111", "forge", "comfyui"]
    assert load_manifest("comfyui").models[0].path.startswith("models/checkpoints/")


def test_an_unknown_launcher_kind_is_a_usage_error(tmp_path):
    text = (load_manifest("a1111").source and open(load_manifest("a1111").source, encoding="utf-8").read())
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("[webui]", '[launcher]\nkind = "invokeai"\n\n[webui]', 1), "utf-8")
    with pytest.raises(SdsetupError) as caught:
        load_manifest(str(bad))
    assert "launcher.kind" in str(caught.value) and caught.value.exit_code == 2


def test_a1111_records_keep_their_shape_and_others_name_their_launcher():
    record = InstallRecord(manifest="a1111", webui=RepoRecord("w", ".", "u", "c" * 40), python="venv/bin/python", backend="cpu")
    assert "launcher" not in record.to_json()
    record.launcher = "comfyui"
    data = record.to_json()
    assert data["launcher"] == "comfyui" and InstallRecord.from_json(data).launcher == "comfyui"


def test_comfyui_model_paths_keep_the_users_sections():
    from sdsetup.launchers.comfyui import render_yaml

    own = "a1111:\n    base_path: /srv/webui/\n    checkpoints: models/Stable-diffusion\n"
    written = render_yaml(own, ["/mnt/disk/webui/models/Stable-diffusion"])
    assert written.startswith(own)
    assert 'base_path: "/mnt/disk/webui/models"' in written and 'checkpoints: "Stable-diffusion"' in written
    assert render_yaml(written, []) == own  # no longer shared: sdsetup's section goes, the user's stays
    assert render_yaml(None, []) is None


@pytest.mark.slow
@pytest.mark.parametrize("name", ["a1111", "forge", "comfyui"])
def test_the_smoke_test_runs_as_each_ui_would_run_on_a_cpu_machine(name, tmp_path_factory):
    """The tiny-model txt2img with the flags each UI's install writes for a machine without a GPU, read
    back the way that UI reads them (ComfyUI's --cpu, A1111's and Forge's --use-cpu all/--no-half)."""
    import sys

    from sdsetup.detect.machine import MachineFacts
    from sdsetup.install.plan import decide
    from sdsetup.verify import run_smoke
    from tests.fixtures.install.fixture import MACHINE

    manifest = load_manifest(name)
    decisions = decide(manifest, MachineFacts.from_json(MACHINE))
    options = for_manifest(manifest).smoke_options(list(decisions.launch_args))
    assert options.get("device") == "cpu"
    doc = run_smoke(Path(sys.executable), cache_dir=tmp_path_factory.getbasetemp() / "smoke-model-cache", **options)
    assert doc["ok"], doc.get("error")
    assert doc["device"] == "cpu" and doc["dtype"] == "float32"


def _comfy_step(tmp_path, **settings_values):
    from sdsetup.detect.machine import MachineFacts
    from sdsetup.install.context import InstallContext, Reporter
    from sdsetup.install.journal import Journal
    from sdsetup.install.plan import InstallOptions, build_plan
    from sdsetup.net.mirrors import select_mirrors
    from sdsetup.settings import load_settings

    settings = load_settings(settings_values, env={})
    facts = MachineFacts.from_json({"os": {"system": "Linux", "release": "x", "version": "x", "machine": "x86_64", "bits": 64,
                                           "wsl": False}, "gpus": [], "ram_total_bytes": 32 << 30, "ram_available_bytes": 16 << 30})
    plan = build_plan(load_manifest("comfyui"), facts, select_mirrors(settings, env={}), InstallOptions(backend="cpu"), tmp_path)
    ctx = InstallContext(plan=plan, settings=settings, journal=Journal(tmp_path), reporter=Reporter(quiet=True))
    return next(step for step in plan.steps if step.id == "launch-scripts"), ctx


def test_a_users_gbk_extra_model_paths_yaml_is_kept_byte_for_byte(tmp_path):
    """Issue 23 item 11: a GBK extra_model_paths.yaml (common in China) crashed every ComfyUI install
    with exit 70 (read as UTF-8). The user's bytes stay as they are; sdsetup's section is added beside them."""
    from sdsetup.model_store import save_shared

    step, ctx = _comfy_step(tmp_path, mirror=["official"])
    own = "# 我的模型\na1111:\n    base_path: D:/绘画/webui/\n    checkpoints: models/Stable-diffusion\n".encode("gbk")
    (tmp_path / "extra_model_paths.yaml").write_bytes(own)
    save_shared(tmp_path, {"models/checkpoints/m.safetensors": "/mnt/其他/webui/models/Stable-diffusion/m.safetensors"})
    step.run(ctx)
    written = (tmp_path / "extra_model_paths.yaml").read_bytes()
    assert written.startswith(own) and b"sdsetup_shared_1:" in written
    assert written[len(own):].isascii(), "sdsetup's section is ASCII: it fits the user's encoding, whatever it is"
    assert step.is_done(ctx)
    save_shared(tmp_path, {})
    step.run(ctx)
    assert (tmp_path / "extra_model_paths.yaml").read_bytes() == own  # no longer shared: exactly the user's bytes


def test_run_comfyui_bat_quotes_values_as_webui_user_bat_does(tmp_path):
    """Issue 23 item 10: run_comfyui.bat wrote values raw: a `%` in a proxy password expanded as a
    variable, and a value the code page lacks was written as UTF-8 (cmd.exe reads the OEM code page)."""
    from sdsetup.errors import SdsetupError

    # A password holding "%" is written %25 in a URL; cmd.exe would read "%2" as the script's 2nd argument.
    step, ctx = _comfy_step(tmp_path, proxy="http://wei:50%25off@127.0.0.1:3128", mirror=["official"])
    bat = step.rendered(ctx)["run_comfyui.bat"]
    assert b'set "HTTPS_PROXY=http://wei:50%%25off@127.0.0.1:3128"' in bat, bat
    step.code_page = 936
    assert b"50%%25off" in step.rendered(ctx)["run_comfyui.bat"]
    step, ctx = _comfy_step(tmp_path, proxy="http://用户:pw@127.0.0.1:3128", mirror=["official"])
    step.code_page = 437  # a US machine: 例 has no byte there
    with pytest.raises(SdsetupError) as refused:
        step.rendered(ctx)
    assert refused.value.exit_code == 2 and "437" in refused.value.message
