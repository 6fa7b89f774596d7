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
