"""Atomic writes: a reader sees the old file or the new one, never half of one, and a failure leaves
the old file as it was with no temp file beside it (install records, doctor zips, bundle state)."""

from __future__ import annotations

import zipfile

import pytest

from sdsetup.fsutil import atomic_write_json, atomic_writer


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "report.zip"
    target.write_bytes(b"the user's old report")
    with pytest.raises(RuntimeError):
        with atomic_writer(target) as handle:
            handle.write(b"half of a new")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"the user's old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.zip"]


def test_a_streamed_zip_lands_whole_and_missing_folders_are_made(tmp_path):
    target = tmp_path / "new" / "folder" / "report.zip"
    with atomic_writer(target) as handle, zipfile.ZipFile(handle, "w") as archive:
        archive.writestr("README.txt", "hello")
        assert not target.exists()  # nothing at the final path until the block ends
    with zipfile.ZipFile(target) as archive:
        assert archive.read("README.txt") == b"hello"
    atomic_write_json(target.with_name("state.json"), {"b": 1, "a": [2]})
    assert target.with_name("state.json").read_text() == '{\n  "a": [\n    2\n  ],\n  "b": 1\n}\n'


def test_an_atomic_write_gets_a_plain_files_mode_or_keeps_the_replaced_ones(tmp_path):
    """Issue 23 item 14: mkstemp's 0600 made a bundle's pages unreadable to the web server's user."""
    import os

    from sdsetup.fsutil import atomic_write_text, umask

    new = tmp_path / "index.html"
    atomic_write_text(new, "<html>")
    assert os.stat(new).st_mode & 0o777 == 0o666 & ~umask()
    kept = tmp_path / "run.sh"
    kept.write_text("old")
    kept.chmod(0o750)
    atomic_write_text(kept, "new")
    assert os.stat(kept).st_mode & 0o777 == 0o750
    secret = tmp_path / "webui-user.sh"
    atomic_write_text(secret, "export HTTPS_PROXY=http://u:p@h:1", mode=0o600)
    assert os.stat(secret).st_mode & 0o777 == 0o600


def test_install_paths_follow_a_models_folder_linked_to_another_disk_and_refuse_system_targets(tmp_path):
    """Issue 23 item 8: a symlinked models/ (another disk: very common) made every install rerun exit 2
    while verify accepted it. Both follow the link now, and both refuse a link into the system."""
    import pytest

    from sdsetup.errors import SdsetupError
    from sdsetup.fsutil import safe_join
    from sdsetup.verify import record_path_in

    install = tmp_path / "webui"
    disk = tmp_path / "disk" / "models"
    (disk / "Stable-diffusion").mkdir(parents=True)
    install.mkdir()
    (install / "models").symlink_to(disk, target_is_directory=True)
    rel = "models/Stable-diffusion/model.safetensors"
    assert safe_join(install, rel, "model", follow_links=True) == install / rel
    assert record_path_in(install, rel, "model") == install / rel
    (install / "models").unlink()
    (install / "models").symlink_to("/etc", target_is_directory=True)
    for resolve in (lambda: safe_join(install, "models/passwd", "model", follow_links=True),
                    lambda: record_path_in(install, "models/passwd", "model")):
        with pytest.raises(SdsetupError) as refused:
            resolve()
        assert "/etc" in refused.value.message
    with pytest.raises(SdsetupError):  # the strict form (bundles) still refuses any link out
        safe_join(install, "models/x", "bundle path")


def test_of_two_runs_making_the_same_new_dir_exactly_one_made_it():
    """Issue 23 item 23: two first installs into one new DIR both saw it missing, both thought they had
    made it, and the loser's cleanup (a run that made DIR removes it when it fails early) could remove
    the winner's DIR. Whether this run made DIR is now mkdir's own answer: exactly one gets True."""
    import tempfile
    import threading
    from pathlib import Path

    from sdsetup.fsutil import make_new_dir

    with tempfile.TemporaryDirectory() as root:
        for attempt in range(200):
            target = Path(root) / f"webui-{attempt}"
            barrier = threading.Barrier(2)
            answers = []

            def race():
                barrier.wait()
                answers.append(make_new_dir(target))

            threads = [threading.Thread(target=race) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(answers) == [False, True] and target.is_dir()
        nested = Path(root) / "a" / "b" / "webui"
        assert make_new_dir(nested) is True and make_new_dir(nested) is False
