"""MachineFacts: the stable JSON shape, and replay from a user's `check --json` output."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest

from sdsetup.detect.machine import MachineFacts, load_machine_facts, probe_machine
from sdsetup.errors import SdsetupError
from sdsetup.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "detect"

GPU_KEYS = {
    "vendor": str, "name": (str, type(None)), "vram_total_bytes": (int, type(None)), "vram_free_bytes": (int, type(None)),
    "driver_version": (str, type(None)), "cuda_driver_version": (str, type(None)), "compute_capability": (str, type(None)),
    "source": (str, type(None)),
}


def assert_machine_shape(data):
    assert set(data) == {"os", "gpus", "ram_total_bytes", "ram_available_bytes"}
    assert set(data["os"]) == {"system", "release", "version", "machine", "bits", "wsl"}
    assert isinstance(data["os"]["bits"], int) and isinstance(data["os"]["wsl"], bool)
    assert isinstance(data["gpus"], list)
    for gpu in data["gpus"]:
        assert set(gpu) == set(GPU_KEYS)
        for key, types in GPU_KEYS.items():
            assert isinstance(gpu[key], types), key
        assert gpu["vendor"] in ("nvidia", "amd", "intel", "apple")
    for key in ("ram_total_bytes", "ram_available_bytes"):
        assert isinstance(data[key], (int, type(None)))


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("machine-*.json")))
def test_every_recorded_machine_replays_and_round_trips(name):
    facts = load_machine_facts(FIXTURES / name)
    data = facts.to_json()
    assert_machine_shape(data)
    assert MachineFacts.from_json(json.loads(json.dumps(data))).to_json() == data
    assert facts.replayed_from == str(FIXTURES / name)


def test_envelope_data_and_bare_machine_forms(tmp_path):
    envelope = json.loads((FIXTURES / "machine-rtx3060-windows.envelope.json").read_text())
    machine = envelope["data"]["machine"]
    for i, document in enumerate([envelope, envelope["data"], machine]):
        path = tmp_path / f"{i}.json"
        path.write_text(json.dumps(document))
        facts = load_machine_facts(path)
        assert facts.gpus[0].name == "NVIDIA GeForce RTX 3060" and facts.system == "Windows"


def test_probe_machine_replays_when_settings_name_a_file():
    facts = probe_machine(Settings(machine_facts=FIXTURES / "machine-rx6700xt-linux.json"))
    assert [g.vendor for g in facts.gpus] == ["amd"]


def test_probe_machine_on_this_machine():
    facts = probe_machine(Settings())
    assert_machine_shape(facts.to_json())
    assert facts.system == platform.system() and facts.machine == platform.machine()
    assert facts.replayed_from is None


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "cannot read"),
        ("not json", "not valid JSON"),
        ("[1, 2]", "no JSON object"),
        ('{"data": {"items": []}}', "expected shape"),
        ('{"os": {"system": "Linux"}, "gpus": [{"name": "x"}]}', "expected shape"),
        ('{"os": {"system": "Linux", "bits": "sixty-four"}, "gpus": []}', "expected shape"),
        ('{"schema_version": 1, "command": "check", "ok": false, "error": {"message": "x"}}', "failed"),
    ],
)
def test_bad_replay_files_are_usage_errors_naming_the_file(tmp_path, content, message):
    path = tmp_path / "facts.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SdsetupError) as info:
        load_machine_facts(path)
    assert info.value.exit_code == 2 and message in info.value.message and str(path) in info.value.message
    assert "check --json" in info.value.hint


def test_a_probe_that_hangs_with_a_grandchild_is_stopped_whole_at_its_timeout(tmp_path):
    """Issue 23 ("what the last round left"): detect/_probe.py ran subprocess itself. On a timeout that
    kills only the direct child, and a grandchild holding the output pipe kept the probe waiting for it
    (a hung driver tool's helper: the whole `check` waits). Through children.run the group goes."""
    import os
    import sys
    import time

    import pytest

    from sdsetup.detect._probe import run_result

    if sys.platform == "win32":
        pytest.skip("POSIX shell and process groups")
    pid_file = tmp_path / "grandchild.pid"
    started = time.monotonic()
    assert run_result(["sh", "-c", f"sleep 30 & echo $! > {pid_file}; wait"], timeout=1) is None
    assert time.monotonic() - started < 10
    pid = int(pid_file.read_text())
    time.sleep(0.2)
    try:  # gone, or a zombie waiting for init to reap it (it runs no more)
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] if os.path.exists(f"/proc/{pid}") else "gone"
    except OSError:
        state = "gone"
    if not os.path.exists("/proc/self"):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    else:
        assert state in ("gone", "Z", "X"), state
