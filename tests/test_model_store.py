"""sdsetup/model_store.py: finding a checkpoint in an install beside this one, and only there."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sdsetup.model_store import link_into, load_shared, save_shared, sibling_copy


def _install_with_model(root: Path, name: str, rel: str, data: bytes) -> Path:
    install = root / name
    (install / ".sdsetup").mkdir(parents=True)
    path = install / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    record = {"models": [{"path": rel, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}]}
    (install / ".sdsetup" / "install.json").write_text(json.dumps(record), "utf-8")
    return install


def _matches(sha):
    return lambda p: p.is_file() and hashlib.sha256(p.read_bytes()).hexdigest() == sha


def test_a_sibling_install_with_the_same_file_is_found_and_linked(tmp_path):
    data = b"checkpoint bytes"
    sha = hashlib.sha256(data).hexdigest()
    first = _install_with_model(tmp_path, "webui", "models/Stable-diffusion/m.safetensors", data)
    second = tmp_path / "ComfyUI"
    second.mkdir()
    found = sibling_copy(second, sha, _matches(sha))
    assert found == first / "models/Stable-diffusion/m.safetensors"
    dest = second / "models/checkpoints/m.safetensors"
    assert link_into(found, dest) and dest.samefile(found)
    assert sibling_copy(second, hashlib.sha256(b"other").hexdigest(), _matches(sha)) is None


def test_a_record_naming_a_path_outside_its_install_is_not_followed(tmp_path):
    data = b"secret-ish"
    sha = hashlib.sha256(data).hexdigest()
    (tmp_path / "outside.bin").write_bytes(data)
    install = tmp_path / "evil"
    (install / ".sdsetup").mkdir(parents=True)
    (install / ".sdsetup" / "install.json").write_text(json.dumps({"models": [{"path": "../outside.bin", "sha256": sha}]}), "utf-8")
    here = tmp_path / "ComfyUI"
    here.mkdir()
    assert sibling_copy(here, sha, _matches(sha)) is None


def test_a_file_the_sibling_itself_uses_from_elsewhere_is_followed(tmp_path):
    data = b"on another disk"
    sha = hashlib.sha256(data).hexdigest()
    store = tmp_path / "disk" / "m.safetensors"
    store.parent.mkdir()
    store.write_bytes(data)
    sibling = tmp_path / "forge"
    (sibling / ".sdsetup").mkdir(parents=True)
    (sibling / ".sdsetup" / "install.json").write_text(json.dumps({"models": [{"path": "models/Stable-diffusion/m.safetensors", "sha256": sha}]}), "utf-8")
    save_shared(sibling, {"models/Stable-diffusion/m.safetensors": str(store)})
    assert load_shared(sibling) == {"models/Stable-diffusion/m.safetensors": str(store)}
    here = tmp_path / "ComfyUI"
    here.mkdir()
    assert sibling_copy(here, sha, _matches(sha)) == store
    save_shared(sibling, {})
    assert load_shared(sibling) == {}


def test_forge_points_at_a_shared_checkpoint_with_ckpt_dir_and_a1111_files_are_unchanged_without(tmp_path):
    from sdsetup.detect.machine import MachineFacts
    from sdsetup.install.context import InstallContext, Reporter
    from sdsetup.install.journal import Journal
    from sdsetup.install.plan import InstallOptions, build_plan
    from sdsetup.install.steps.webui_user import WebuiUserStep
    from sdsetup.manifest import load_manifest
    from sdsetup.net.mirrors import select_mirrors
    from sdsetup.settings import load_settings
    from tests.fixtures.install.fixture import MACHINE

    settings = load_settings({}, env={})
    facts = MachineFacts.from_json(MACHINE)
    for name in ("a1111", "forge"):
        install_dir = tmp_path / name
        install_dir.mkdir()
        plan = build_plan(load_manifest(name), facts, select_mirrors(settings, env={}), InstallOptions(quiet=True), install_dir)
        ctx = InstallContext(plan=plan, settings=settings, journal=Journal(install_dir), reporter=Reporter(True))
        step = next(step for step in plan.steps if step.id == "webui-user")
        plain = WebuiUserStep(plan.manifest, plan.decisions, plan.mirrors)
        assert step.rendered(ctx) == plain.rendered(ctx)  # nothing shared: exactly the webui-user files as before
        other = tmp_path / "disk" / "models" / "Stable-diffusion"
        save_shared(install_dir, {plan.manifest.models[0].path: str(other / "v1-5-pruned-emaonly.safetensors")})
        args = step.settings_for(ctx).args
        assert args[-2:] == ("--ckpt-dir", str(other))
        assert b"--ckpt-dir" in step.rendered(ctx)["webui-user.sh"][0]
