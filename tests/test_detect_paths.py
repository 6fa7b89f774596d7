"""Install path pitfalls and a usable --dir: /proc/mounts text, verdict tables, real folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sdsetup.detect import paths
from sdsetup.errors import SdsetupError

FIXTURES = Path(__file__).parent / "fixtures" / "detect"
DESKTOP = paths.parse_mounts((FIXTURES / "proc-mounts-desktop.txt").read_text())
WSL = paths.parse_mounts((FIXTURES / "proc-mounts-wsl.txt").read_text())


def test_mounts_unescape_spaces():
    assert ("/media/wei/USB STICK", "vfat") in DESKTOP


@pytest.mark.parametrize(
    "path, mounts, expected",
    [
        ("/home/wei/sd", DESKTOP, "ext4"),
        ("/tmp/x", DESKTOP, "tmpfs"),
        ("/opt/sd", DESKTOP, "ext4"),
        ("/media/wei/USB STICK/sd", DESKTOP, "vfat"),
        ("/media/wei/USB STICKER", DESKTOP, "ext4"),  # a prefix of the name is not the mount
        ("/media/wei/T7/sd", DESKTOP, "exfat"),
        ("/mnt/nas/sd", DESKTOP, "cifs"),
        ("/mnt/c/Users/wei/sd", WSL, "9p"),
        ("/home/wei/sd", WSL, "ext4"),
        ("/x", [], None),
    ],
)
def test_fs_type_for(path, mounts, expected):
    assert paths.fs_type_for(path, mounts) == expected


@pytest.mark.skipif(not Path("/proc/mounts").exists(), reason="Linux only")
def test_probe_fs_type_on_this_machine(tmp_path):
    assert paths.probe_fs_type(tmp_path, "Linux") == paths.fs_type_for(os.path.realpath(tmp_path), paths.parse_mounts(Path("/proc/mounts").read_text()))


def kinds(path, **kwargs):
    kwargs.setdefault("system", "Linux")
    kwargs.setdefault("fs_type", "ext4")
    return [(status, problem.split(":")[0].split(" (")[0].split(";")[0]) for status, problem, _ in paths.path_pitfalls(path, **kwargs)]


@pytest.mark.parametrize(
    "path, kwargs, expected",
    [
        ("/home/wei/stable-diffusion-webui", {}, []),
        ("/home/wei/my stuff/sd", {}, [("warn", "the path has spaces")]),
        ("/home/魏/sd", {}, [("warn", "the path has non-ASCII characters")]),
        ("/media/wei/USB/sd", {"fs_type": "vfat"}, [("fail", "the disk is vfat")]),
        ("/media/wei/T7/sd", {"fs_type": "exfat"}, [("warn", "the disk is exFAT")]),
        ("/mnt/c/sd", {"fs_type": "9p", "wsl": True}, [("warn", "the folder is on a Windows drive seen from WSL")]),
        ("/mnt/nas/sd", {"fs_type": "cifs"}, [("warn", "the folder is on a network filesystem")]),
        (r"C:\sd\webui", {"system": "Windows", "fs_type": "ntfs"}, []),
        (r"E:\sd", {"system": "Windows", "fs_type": "fat32"}, [("fail", "the disk is fat32")]),
        (r"C:\Users\wei\OneDrive\sd", {"system": "Windows", "fs_type": "ntfs", "env": {"OneDrive": r"C:\Users\wei\OneDrive"}},
         [("warn", "the folder is inside OneDrive")]),
        (r"D:\OneDrive - Contoso\sd", {"system": "Windows", "fs_type": "ntfs"},
         [("warn", "the path has spaces"), ("warn", "the folder is inside OneDrive")]),
        ("C:\\" + "x" * 120, {"system": "Windows", "fs_type": "ntfs", "long_paths_enabled": False}, [("warn", "the path is 123 characters long")]),
        ("C:\\" + "x" * 120, {"system": "Windows", "fs_type": "ntfs", "long_paths_enabled": True}, []),
        ("/home/" + "x" * 200, {}, []),  # long paths are a Windows problem only
    ],
)
def test_path_pitfalls(path, kwargs, expected):
    assert kinds(path, **kwargs) == expected


def test_assess_paths_takes_the_worst():
    pitfalls = paths.path_pitfalls("/media/my usb/sd", system="Linux", fs_type="vfat")
    status, value, fix = paths.assess_paths("/media/my usb/sd", pitfalls, "vfat")
    assert status == "fail" and "spaces" in value and "4 GiB" in value and len(fix.splitlines()) == 2
    assert paths.assess_paths("/ok", [], "ext4") == ("ok", "/ok (ext4): no pitfalls", None)


def test_valid_dirs_existing_or_to_be_created(tmp_path):
    assert paths.validate_install_dir(tmp_path) == tmp_path
    assert paths.validate_install_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()  # checking never creates it
    assert list(tmp_path.iterdir()) == []  # and leaves no probe file behind


def test_a_file_or_a_path_under_a_file_is_a_usage_error(tmp_path):
    file = tmp_path / "notes.txt"
    file.write_text("x")
    with pytest.raises(SdsetupError) as info:
        paths.validate_install_dir(file)
    assert info.value.exit_code == 2 and "is a file" in info.value.message and info.value.hint
    with pytest.raises(SdsetupError) as info:
        paths.validate_install_dir(file / "sd")
    assert info.value.exit_code == 2 and f"{file} is a file" in info.value.message


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_folder_is_a_usage_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(SdsetupError) as info:
            paths.validate_install_dir(locked / "sd")
        assert "not writable" in info.value.message and "permission denied" in info.value.message
    finally:
        locked.chmod(0o700)


@pytest.mark.skipif(not Path("/proc/version").exists(), reason="Linux only")
def test_a_folder_nothing_can_be_written_to_is_a_usage_error():
    with pytest.raises(SdsetupError) as info:
        paths.validate_install_dir(Path("/proc/sd"))  # /proc takes no new files, even from root
    assert info.value.exit_code == 2 and "not writable" in info.value.message


@pytest.mark.parametrize("path, kwargs, expected", [
    # Recorded Windows facts: a deep folder, with and without LongPathsEnabled.
    ("C:\\" + "x" * 250, {"system": "Windows", "fs_type": "NTFS", "long_paths_enabled": False},
     [("fail", "Windows cannot create a folder path over 248 characters")]),
    ("C:\\" + "x" * 250, {"system": "Windows", "fs_type": "NTFS", "long_paths_enabled": True}, []),
    ("C:\\" + "x" * 120, {"system": "Windows", "fs_type": "NTFS", "long_paths_enabled": None},
     [("warn", "Windows' 260-character limit")]),  # the registry could not be read: warn
    (r"C:\Users\张三\sd", {"system": "Windows", "fs_type": "NTFS"}, [("warn", "non-ASCII characters (三张)")]),
    (r"C:\sd webui", {"system": "Windows", "fs_type": "NTFS"}, [("warn", "the path has spaces")]),
    (r"F:\sd", {"system": "Windows", "fs_type": "exFAT"}, [("warn", "the disk is exFAT")]),
    (r"F:\sd", {"system": "Windows", "fs_type": "FAT32"}, [("fail", "no file can exceed 4 GiB")]),
    (r"C:\Users\wei\OneDrive - Contoso\sd", {"system": "Windows", "fs_type": "NTFS",
                                            "env": {"OneDriveCommercial": r"C:\Users\wei\OneDrive - Contoso"}},
     [("warn", "the path has spaces"), ("warn", "inside OneDrive")]),
])
def test_windows_path_pitfalls_each_have_their_own_verdict_and_fix(path, kwargs, expected):
    found = paths.path_pitfalls(path, **kwargs)
    assert [(status, text) for (status, problem, _fix), (_, text) in zip(found, expected) if text in problem] == expected
    assert len(found) == len(expected) and all(fix for _status, _problem, fix in found)
