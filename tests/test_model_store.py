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


# Issue 23, item 1: a sibling's file another user owns (or can write) is never hard-linked, and the
# hash cache does not trust a file whose bytes were rewritten in place with the mtime put back.

import os

import pytest

OTHER_UID = 65534  # nobody

as_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                             reason="needs root to give a file to a second user")


def _rewrite_as(uid: int, path: Path, data: bytes) -> None:
    """Another local user rewrites the file in place and puts its mtime back (a real second uid: a forked
    child that drops to it, so only that user's permissions apply)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 1
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            stat = os.stat(path)
            with open(path, "r+b") as handle:
                handle.write(data)
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
            status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the second user could not rewrite the file"


@pytest.fixture
def shared_tmp():
    """A folder every local user can reach (pytest's tmp_path is private to root)."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="sdsetup-uid-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@as_root
def test_a_siblings_file_owned_by_another_user_is_copied_not_linked(shared_tmp):
    tmp_path = shared_tmp
    from sdsetup.model_store import take_from_sibling

    data = b"checkpoint bytes" * 64
    sha = hashlib.sha256(data).hexdigest()
    first = _install_with_model(tmp_path, "webui", "models/m.safetensors", data)
    source = first / "models/m.safetensors"
    os.chown(source, OTHER_UID, OTHER_UID)
    dest = tmp_path / "ComfyUI" / "models/checkpoints/m.safetensors"
    assert take_from_sibling(source, dest, sha) == "copied"
    assert not dest.samefile(source) and dest.read_bytes() == data
    assert os.stat(dest).st_uid == os.geteuid()
    # The other user rewrites their file: ours keeps the verified bytes.
    _rewrite_as(OTHER_UID, source, b"EVIL")
    assert dest.read_bytes() == data


def test_a_siblings_file_others_can_write_is_copied_and_a_private_own_file_is_linked(tmp_path):
    from sdsetup.model_store import take_from_sibling

    data = b"checkpoint bytes"
    sha = hashlib.sha256(data).hexdigest()
    first = _install_with_model(tmp_path, "webui", "models/m.safetensors", data)
    source = first / "models/m.safetensors"
    source.chmod(0o644)
    own = tmp_path / "ComfyUI" / "models/own.safetensors"
    assert take_from_sibling(source, own, sha) == "linked" and own.samefile(source)
    source.chmod(0o666)  # world-writable: anyone could change the bytes under us later
    shared = tmp_path / "Forge" / "models/m.safetensors"
    assert take_from_sibling(source, shared, sha) == "copied" and not shared.samefile(source)


def test_a_copy_that_does_not_hash_to_the_manifest_is_not_kept(tmp_path):
    from sdsetup.model_store import take_from_sibling

    source = tmp_path / "webui" / "m.safetensors"
    source.parent.mkdir()
    source.write_bytes(b"changed after the check")
    source.chmod(0o666)
    dest = tmp_path / "ComfyUI" / "m.safetensors"
    assert take_from_sibling(source, dest, hashlib.sha256(b"original").hexdigest()) is None
    assert not dest.exists() and list(dest.parent.iterdir()) == []


@as_root
def test_the_hash_cache_rehashes_a_file_rewritten_in_place_with_its_mtime_restored(shared_tmp):
    tmp_path = shared_tmp
    from sdsetup.hashing import HashCache

    path = tmp_path / "m.safetensors"
    path.write_bytes(b"GOOD" * 1000)
    os.chown(path, OTHER_UID, OTHER_UID)
    cache = HashCache(tmp_path / "cache.json")
    good, cached = cache.sha256(path)
    assert not cached and HashCache(tmp_path / "cache.json").sha256(path) == (good, True)
    _rewrite_as(OTHER_UID, path, b"EVIL")
    digest, cached = HashCache(tmp_path / "cache.json").sha256(path)
    assert not cached and digest == hashlib.sha256(b"EVIL" + b"GOOD" * 999).hexdigest()


def test_the_hash_cache_rehashes_a_file_whose_owner_or_mode_changed(tmp_path):
    from sdsetup.hashing import HashCache

    path = tmp_path / "m.safetensors"
    path.write_bytes(b"bytes")
    path.chmod(0o644)
    HashCache(tmp_path / "cache.json").sha256(path)
    path.chmod(0o666)
    assert HashCache(tmp_path / "cache.json").sha256(path)[1] is False
