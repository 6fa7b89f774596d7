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
