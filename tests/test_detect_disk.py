"""Disk budget per filesystem: grouping by device, the verdicts, pip's cache location."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from sdsetup.detect import disk
from sdsetup.detect.disk import DiskLocation

GIB = 1024**3


def test_paths_on_one_filesystem_share_one_budget():
    groups = disk.group_by_filesystem(
        [
            DiskLocation("install_dir", "/home/u/sd", 2049, 30 * GIB, 16 * GIB),
            DiskLocation("temp", "/tmp", 2049, 30 * GIB, 3 * GIB),
            DiskLocation("pip_cache", "/home/u/.cache/pip", 2049, 30 * GIB, 3 * GIB),
        ]
    )
    assert len(groups) == 1
    assert groups[0]["labels"] == ["install_dir", "temp", "pip_cache"] and groups[0]["required_bytes"] == 22 * GIB
    assert disk.assess_filesystem(groups[0])[0] == "ok"


def test_small_tmp_on_its_own_disk_fails_even_with_a_big_install_disk():
    groups = disk.group_by_filesystem(
        [
            DiskLocation("install_dir", "/home/u/sd", 2049, 500 * GIB, 16 * GIB),
            DiskLocation("temp", "/tmp", 41, 2 * GIB, 3 * GIB),
            DiskLocation("pip_cache", "/home/u/.cache/pip", 2049, 500 * GIB, 3 * GIB),
        ]
    )
    assert [g["labels"] for g in groups] == [["install_dir", "pip_cache"], ["temp"]]
    statuses = [disk.assess_filesystem(g) for g in groups]
    assert statuses[0][0] == "ok"
    status, value, fix = statuses[1]
    assert status == "fail" and "TMPDIR" in fix and "1.0 GiB short" in fix
    assert [disk.group_id(g) for g in groups] == ["disk_install_dir", "disk_temp"]
    assert disk.group_name(groups[1]) == "disk (temp)"


def test_sum_of_needs_on_a_shared_disk_can_fail_where_each_alone_fits():
    groups = disk.group_by_filesystem(
        [DiskLocation("install_dir", "/d", 7, 18 * GIB, 16 * GIB), DiskLocation("temp", "/t", 7, 18 * GIB, 3 * GIB)]
    )
    assert disk.assess_filesystem(groups[0])[0] == "fail"


def test_only_the_pip_cache_short_is_a_warning():
    (group,) = disk.group_by_filesystem([DiskLocation("pip_cache", "/c", 9, 1 * GIB, 3 * GIB)])
    status, _, fix = disk.assess_filesystem(group)
    assert status == "warn" and "PIP_CACHE_DIR" in fix


def test_unknown_free_space_is_a_warning():
    (group,) = disk.group_by_filesystem([DiskLocation("install_dir", "/x", None, None, GIB)])
    assert disk.assess_filesystem(group)[0] == "warn"


@pytest.mark.parametrize(
    "required, expected",
    [
        (None, disk.DEFAULT_REQUIRED),
        (5 * GIB, {**disk.DEFAULT_REQUIRED, "install_dir": 5 * GIB}),
        ({"temp": 1, "bogus": 9}, {**disk.DEFAULT_REQUIRED, "temp": 1}),
    ],
)
def test_required_bytes_from_install(required, expected):
    assert disk.required_by_label(required) == expected


def test_default_budget_is_the_sum_of_its_named_parts():
    assert disk.INSTALL_DIR_BYTES == disk.VENV_BYTES + disk.MODEL_BYTES + disk.WHEELHOUSE_BYTES + disk.SOURCES_BYTES
    assert disk.MODEL_BYTES == 4_265_146_304


@pytest.mark.parametrize(
    "env, system, expected",
    [
        ({}, "Linux", os.path.join("/home/u", ".cache", "pip")),
        ({"XDG_CACHE_HOME": "/big/cache"}, "Linux", os.path.join("/big/cache", "pip")),
        ({"PIP_CACHE_DIR": "/data/pip"}, "Linux", "/data/pip"),
        ({"PIP_NO_CACHE_DIR": "1"}, "Linux", None),
        ({}, "Darwin", os.path.join("/home/u", "Library", "Caches", "pip")),
        ({"LOCALAPPDATA": r"C:\Users\u\AppData\Local"}, "Windows", os.path.join(r"C:\Users\u\AppData\Local", "pip", "Cache")),
    ],
)
def test_pip_cache_dir(env, system, expected):
    assert disk.pip_cache_dir(env, system, "/home/u") == expected


def test_probe_uses_the_nearest_existing_folder(tmp_path):
    location = disk.probe_location("install_dir", tmp_path / "not" / "yet" / "there", GIB)
    assert location.device == os.stat(tmp_path).st_dev
    assert abs(location.free_bytes - shutil.disk_usage(tmp_path).free) < 256 * 1024**2


def test_probe_disk_lists_install_temp_and_pip_cache(tmp_path):
    groups = disk.probe_disk(tmp_path / "sd", env={"PIP_CACHE_DIR": str(tmp_path / "pipcache")}, system="Linux")
    paths = {label: path for g in groups for label, path in g["paths"].items()}
    assert paths == {"install_dir": str(tmp_path / "sd"), "temp": tempfile.gettempdir(), "pip_cache": str(tmp_path / "pipcache")}
