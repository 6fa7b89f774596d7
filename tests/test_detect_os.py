"""OS facts (bitness, WSL) and RAM, from recorded /proc text and raw values."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from sdsetup.detect import memory, os_info

FIXTURES = Path(__file__).parent / "fixtures" / "detect"


@pytest.mark.parametrize(
    "machine, env, pointer_bits, expected",
    [
        ("x86_64", {}, 64, 64),
        ("AMD64", {}, 64, 64),
        ("arm64", {}, 64, 64),
        ("aarch64", {}, 64, 64),
        ("i686", {}, 32, 32),
        ("armv7l", {}, 32, 32),
        ("x86", {}, 32, 32),  # 32-bit Windows
        ("x86", {"PROCESSOR_ARCHITEW6432": "AMD64"}, 32, 64),  # 32-bit Python on 64-bit Windows: the OS is 64-bit
        ("", {}, 64, 64),  # unknown name: this Python's pointer size
    ],
)
def test_os_bits(machine, env, pointer_bits, expected):
    assert os_info.os_bits(machine, env, pointer_bits) == expected


def test_wsl_from_proc_version_or_environment():
    wsl = (FIXTURES / "proc-version-wsl2.txt").read_text()
    debian = (FIXTURES / "proc-version-debian.txt").read_text()
    assert os_info.is_wsl(wsl, {}) is True
    assert os_info.is_wsl(debian, {}) is False
    assert os_info.is_wsl(debian, {"WSL_DISTRO_NAME": "Ubuntu"}) is True
    assert os_info.is_wsl(None, {}) is False


def test_os_facts_shape_and_wsl_only_on_linux():
    facts = os_info.os_facts("Linux", "5.15.153.1-microsoft-standard-WSL2", "#1 SMP", "x86_64", env={}, pointer_bits=64,
                             proc_version=(FIXTURES / "proc-version-wsl2.txt").read_text())
    assert facts == {"system": "Linux", "release": "5.15.153.1-microsoft-standard-WSL2", "version": "#1 SMP", "machine": "x86_64", "bits": 64, "wsl": True}
    windows = os_info.os_facts("Windows", "10", "10.0.19045", "AMD64", env={"WSL_DISTRO_NAME": "x"}, pointer_bits=64, proc_version=None)
    assert windows["wsl"] is False


def test_probe_os_matches_platform():
    facts = os_info.probe_os()
    assert (facts["system"], facts["release"], facts["machine"]) == (platform.system(), platform.release(), platform.machine())


def test_meminfo_parser():
    total, available = memory.parse_meminfo((FIXTURES / "meminfo.txt").read_text())
    assert total == 16318480 * 1024 and available == 12004352 * 1024
    assert memory.parse_meminfo("garbage") == (None, None)


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="Linux only")
def test_probe_memory_agrees_with_proc_meminfo():
    total, available = memory.probe_memory()
    expected_total, _ = memory.parse_meminfo(Path("/proc/meminfo").read_text())
    assert total == expected_total and 0 < available <= total
