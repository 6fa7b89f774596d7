"""`verify` on a real fixture install: git checkouts at pins, a venv, models, HF files, a record.

One breakage per test, each named by a specific item with its fix. Recorded hardware comes from
SDSETUP_MACHINE_FACTS (a `check --json` envelope), as a helpdesk would replay a user's machine.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from sdsetup import verify
from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.settings import load_settings
from tests.fixtures.verify import fixture_install
from tests.fixtures.verify.fixture_install import CPU_MACHINE, NVIDIA_MACHINE

pytestmark = pytest.mark.slow


@pytest.fixture
def install(tmp_path):
    return fixture_install.build(tmp_path / "webui")


def settings_for(install, machine, monkeypatch):
    monkeypatch.setenv("SDSETUP_MACHINE_FACTS", str(install.machine_file(machine)))
    return load_settings({})


def item(data, item_id):
    found = [entry for entry in data["items"] if entry["id"] == item_id]
    assert found, f"no item {item_id} in {[entry['id'] for entry in data['items']]}"
    return found[0]


def test_a_good_install_passes_with_the_smoke_test(install, monkeypatch, tmp_path):
    settings = settings_for(install, CPU_MACHINE, monkeypatch)
    out = tmp_path / "verify.png"
    data = verify.verify_install(settings, install.root, out=out)
    assert data["ok"], [entry for entry in data["items"] if entry["status"] != "ok"]
    assert data["failed"] == []
    ids = [entry["id"] for entry in data["items"]]
    for expected in ("record", "webui", "repo:K-diffusion", "model:models/Stable-diffusion/tiny.safetensors",
                     "hub:openai/clip-vit-large-patch14/vocab.json", "machine", "webui-user", "python", "torch", "smoke"):
        assert expected in ids
    assert item(data, "torch")["value"].startswith("torch ") and "CPU-only build" in item(data, "torch")["value"]
    assert data["smoke"]["device"] == "cpu" and data["smoke"]["executable"].endswith(os.path.join("venv", "bin", "python"))
    assert "--no-half" in data["smoke"]["argv"]  # the smoke test ran with the install's own precision flags
    assert out.is_file() and data["smoke"]["image"] == str(out.resolve())


def test_missing_model_is_named_with_its_fix(install, monkeypatch):
    install.model.unlink()
    data = verify.verify_install(settings_for(install, CPU_MACHINE, monkeypatch), install.root, smoke=False)
    model = item(data, "model:models/Stable-diffusion/tiny.safetensors")
    assert model["status"] == "fail" and model["value"] == "missing"
    assert "sdsetup install" in model["fix"] and "example.invalid/tiny.safetensors" in model["fix"]
    assert data["failed"] == ["model:models/Stable-diffusion/tiny.safetensors"]


def test_wrong_hash_is_caught_even_when_size_and_cache_look_right(install, monkeypatch):
    settings = settings_for(install, CPU_MACHINE, monkeypatch)
    first = verify.verify_install(settings, install.root, smoke=False)
    assert item(first, "model:models/Stable-diffusion/tiny.safetensors")["status"] == "ok"
    again = verify.verify_install(settings, install.root, smoke=False)
    assert "hash from cache" in item(again, "model:models/Stable-diffusion/tiny.safetensors")["value"]

    data = bytearray(install.model.read_bytes())
    data[100] ^= 0xFF  # same size, one byte flipped: a damaged download
    stat = install.model.stat()
    install.model.write_bytes(bytes(data))
    os.utime(install.model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    broken = verify.verify_install(settings, install.root, smoke=False)
    model = item(broken, "model:models/Stable-diffusion/tiny.safetensors")
    assert model["status"] == "fail" and "sha256" in model["value"] and "damaged" in model["value"]
    assert install.record.models[0].sha256[:12] in model["value"] and "move" in model["fix"]


def test_rehash_does_not_trust_the_cache(install, monkeypatch):
    settings = settings_for(install, CPU_MACHINE, monkeypatch)
    verify.verify_install(settings, install.root, smoke=False)
    # Same size and mtime, other bytes: the inode's ctime moved, so the cache does not vouch for it any
    # more (issue 23 item 1: it said "sha256 ok (hash from cache)"); --rehash never asks the cache.
    stat = install.model.stat()
    data = bytearray(install.model.read_bytes())
    data[0] ^= 0xFF
    install.model.write_bytes(bytes(data))
    os.utime(install.model, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    trusted = verify.verify_install(settings, install.root, smoke=False)
    assert item(trusted, "model:models/Stable-diffusion/tiny.safetensors")["status"] == "fail"
    rehashed = verify.verify_install(settings, install.root, smoke=False, rehash=True)
    assert item(rehashed, "model:models/Stable-diffusion/tiny.safetensors")["status"] == "fail"


def test_truncated_hf_file_is_named(install, monkeypatch):
    install.hub_file.write_text("{")
    data = verify.verify_install(settings_for(install, CPU_MACHINE, monkeypatch), install.root, smoke=False)
    hub = item(data, "hub:openai/clip-vit-large-patch14/vocab.json")
    assert hub["status"] == "fail" and "expected" in hub["value"]


def test_repository_at_the_wrong_commit_is_named_with_the_checkout_command(install, monkeypatch):
    kdiff = install.root / "repositories" / "k-diffusion"
    fixture_install.git("checkout", "-q", install.kdiff_commits[1], cwd=kdiff)
    data = verify.verify_install(settings_for(install, CPU_MACHINE, monkeypatch), install.root, smoke=False)
    repo = item(data, "repo:K-diffusion")
    assert repo["status"] == "fail"
    assert repo["value"] == f"at {install.kdiff_commits[1][:10]}, pinned {install.kdiff_commits[0][:10]}"
    assert f"checkout {install.kdiff_commits[0]}" in repo["fix"] and str(kdiff) in repo["fix"]
    assert data["failed"] == ["repo:K-diffusion"]


def test_missing_repository_and_web_ui_commit(install, monkeypatch):
    shutil.rmtree(install.root / "repositories" / "k-diffusion")
    (install.root / "launch.py").write_text("print('changed')\n")
    fixture_install.git("commit", "-q", "-am", "local change", cwd=install.root)
    data = verify.verify_install(settings_for(install, CPU_MACHINE, monkeypatch), install.root, smoke=False)
    assert item(data, "repo:K-diffusion")["value"].endswith("missing")
    assert item(data, "webui")["status"] == "fail" and "pinned" in item(data, "webui")["value"]


def test_cpu_torch_on_a_recorded_nvidia_machine_fails_with_the_reinstall_command(install, monkeypatch):
    settings = settings_for(install, NVIDIA_MACHINE, monkeypatch)
    data = verify.verify_install(settings, install.root, smoke=False)
    torch_check = item(data, "torch")
    assert torch_check["status"] == "fail"
    assert "CPU-only build" in torch_check["value"] and "NVIDIA GeForce RTX 3060" in torch_check["value"]
    python = str(install.root / install.record.python)
    assert python in torch_check["fix"]
    assert "-m pip install --force-reinstall torch==2.1.2 torchvision==0.16.2" in torch_check["fix"]
    assert "https://download.pytorch.org/whl/cu121" in torch_check["fix"]  # driver CUDA 12.4, a1111's newest build
    # The CPU flags in webui-user are wrong for this machine too, and said so.
    flags = item(data, "webui-user")
    assert flags["status"] == "fail" and "--use-cpu" in flags["value"]
    assert "RTX 3060" in item(data, "machine")["value"] and "replayed" in item(data, "machine")["value"]


def test_no_record_is_a_clear_usage_error(tmp_path):
    with pytest.raises(SdsetupError) as caught:
        verify.verify_install(load_settings({}), tmp_path)
    assert caught.value.exit_code == ExitCode.USAGE
    assert "no install record" in caught.value.message and "sdsetup install" in caught.value.hint


def test_a_broken_venv_python_is_named(install, monkeypatch):
    venv_python = install.root / install.record.python
    venv_python.unlink()
    data = verify.verify_install(settings_for(install, CPU_MACHINE, monkeypatch), install.root, smoke=False)
    assert item(data, "python")["status"] == "fail" and "missing" in item(data, "python")["value"]
    assert item(data, "smoke")["status"] == "skip"


def test_record_paths_may_not_escape_the_install(install, monkeypatch):
    record_file = install.root / ".sdsetup" / "install.json"
    record = json.loads(record_file.read_text())
    record["models"][0]["path"] = "../outside.safetensors"
    record_file.write_text(json.dumps(record))
    with pytest.raises(SdsetupError) as caught:
        verify.verify_install(settings_for(install, CPU_MACHINE, monkeypatch), install.root, smoke=False)
    assert "escapes the install directory" in caught.value.message


def test_an_untouched_install_with_sdsetups_block_in_the_tracked_launcher_has_no_local_changes(install, monkeypatch):
    """Issue 11 item 8: webui-user.sh/.bat are the web UI's own tracked files; install adds its managed
    block to them. That is not a local change, and a bare `git stash` (which would take the block) is never offered."""
    root = install.root
    fixture_install.git("add", "-f", "webui-user.sh", "webui-user.bat", cwd=root)
    fixture_install.git("commit", "-q", "-m", "the web UI's launcher templates", cwd=root)
    head = fixture_install.git("rev-parse", "HEAD", cwd=root)
    record_file = root / ".sdsetup" / "install.json"
    record = json.loads(record_file.read_text("utf-8"))
    record["webui"]["commit"] = head
    record_file.write_text(json.dumps(record), "utf-8")
    sh = root / "webui-user.sh"
    sh.write_text(sh.read_text() + "# >>> sdsetup >>>\nexport HF_HUB_OFFLINE='1'\n# <<< sdsetup <<<\n")
    bat = root / "webui-user.bat"
    bat.write_text("rem >>> sdsetup >>>\nset HF_HUB_OFFLINE=1\nrem <<< sdsetup <<<\n" + bat.read_text())

    data = verify.verify_install(settings_for(install, CPU_MACHINE, monkeypatch), install.root, smoke=False)
    webui = item(data, "webui")
    assert webui["status"] == "ok", webui
    assert "local changes" not in webui["value"]

    (root / "launch.py").write_text("print('my fix')\n")
    data = verify.verify_install(settings_for(install, CPU_MACHINE, monkeypatch), install.root, smoke=False)
    webui = item(data, "webui")
    assert webui["status"] == "warn" and "launch.py" in webui["value"] and "webui-user" not in webui["value"]
    assert "stash push -- launch.py" in webui["fix"] and "webui-user" not in webui["fix"]


def test_verifys_torch_fix_hint_does_not_probe_the_network_without_a_chosen_mirror(tmp_path, monkeypatch):
    """verify builds the torch repair command offline: the mirror layer is asked only when the user chose
    a mirror (with none, or auto, routing would probe every channel first)."""
    from types import SimpleNamespace

    import sdsetup.net.mirrors as mirrors_mod
    from sdsetup.detect.machine import MachineFacts
    from sdsetup.settings import load_settings
    from sdsetup.verify import _torch_fix_command

    calls = []
    real = mirrors_mod.select_mirrors
    monkeypatch.setattr(mirrors_mod, "select_mirrors", lambda *a, **k: calls.append(a) or real(*a, **k))
    facts = MachineFacts(os={"system": "Linux", "machine": "x86_64", "bits": 64, "wsl": False}, gpus=[], ram_total_bytes=16 * 1024**3)
    record = SimpleNamespace(manifest="a1111")
    for flags in ({}, {"mirror": ["auto"]}):
        command = _torch_fix_command(load_settings(flags, {}), record, tmp_path / "python", "cpu", facts)
        assert "https://download.pytorch.org/whl/cpu" in command
    assert calls == []
    chosen = _torch_fix_command(load_settings({"mirror": ["cn"]}, {}), record, tmp_path / "python", "cpu", facts)
    assert calls and "download.pytorch.org" not in chosen
