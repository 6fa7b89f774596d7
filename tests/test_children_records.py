"""Issue 23 item 9: a child record from a killed run, whose pid the system has since given to an unrelated
process, must not block the next install (exit 6 forever, telling the user to kill someone else's
process group). The record carries the process's start time; a pid that started later is not ours.
Real processes (`sleep` in its own session, as sdsetup starts its children)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from sdsetup import children

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="start times from /proc")


@pytest.fixture
def group_leader():
    """An unrelated process that leads its own group, as every sdsetup child does."""
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield process
    process.kill()
    process.wait(timeout=10)


def _record(folder, pid: int, **extra) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{pid}.json").write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "program": "git",
                                                    "args": [], "parent": 1, **extra}), "utf-8")


def test_a_stale_record_whose_pid_was_reused_does_not_count_and_is_removed(tmp_path, group_leader):
    folder = tmp_path / "children"
    ours = children.start_time(group_leader.pid)
    assert ours is not None
    _record(folder, group_leader.pid, start=ours - 1000)  # the recorded child started earlier: another process
    assert children.live_children(folder) == []
    assert not (folder / f"{group_leader.pid}.json").exists()


def test_a_record_of_the_same_process_still_counts(tmp_path, group_leader):
    folder = tmp_path / "children"
    _record(folder, group_leader.pid, start=children.start_time(group_leader.pid))
    assert [entry["pid"] for entry in children.live_children(folder)] == [group_leader.pid]


def test_adopt_records_the_start_time(tmp_path, group_leader):
    with children.tracking(tmp_path / "children"):
        record = children.adopt(group_leader, ["sleep", "60"])
    data = json.loads(record.read_text("utf-8"))
    assert data["start"] == children.start_time(group_leader.pid) and data["pid"] == group_leader.pid
