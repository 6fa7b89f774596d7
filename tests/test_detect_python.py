"""Python candidates: the `py -0p` parser, the verdict and choice tables, and real interpreter probes."""

from __future__ import annotations

import json
import os
import platform
import stat
import sys
from pathlib import Path

import pytest

from sdsetup.detect import python as pythons

FIXTURES = Path(__file__).parent / "fixtures" / "detect"
posix_only = pytest.mark.skipif(os.name == "nt", reason="fake interpreters are shell scripts")


def test_py_launcher_list_new_format():
    found = pythons.parse_py_launcher_list((FIXTURES / "py-0p-new.txt").read_text())
    assert found == [
        ("3.12", r"C:\Users\Wei\AppData\Local\Programs\Python\Python312\python.exe"),
        ("3.11", r"C:\Users\Wei\AppData\Local\Programs\Python\Python311\python.exe"),
        ("3.10-32", r"C:\Program Files (x86)\Python310-32\python.exe"),
        ("ContinuumAnalytics/Anaconda39-64", r"C:\ProgramData\Anaconda3\python.exe"),
    ]


def test_py_launcher_list_old_format():
    found = pythons.parse_py_launcher_list((FIXTURES / "py-0p-old.txt").read_text())
    assert found == [("3.10-64", r"C:\Python310\python.exe"), ("3.9-32", r"C:\Python39-32\python.exe")]
    assert pythons.parse_py_launcher_list("No installed Pythons found!\r\n") == []


def test_probe_output_parser_takes_the_json_line():
    assert pythons.parse_probe_output('warning: something\n{"version": "3.10.13", "bits": 64, "executable": "/x"}\n') == {
        "version": "3.10.13",
        "bits": 64,
        "executable": "/x",
    }
    assert pythons.parse_probe_output("Python was not found; run without arguments to install from the Microsoft Store") is None


@pytest.mark.parametrize(
    "candidate, status, note_contains",
    [
        ({"version": "3.10.11", "bits": 64}, "ok", None),
        ({"version": "3.11.9", "bits": 64}, "ok", None),
        ({"version": "3.12.3", "bits": 64}, "warn", "torch 2.1.2"),
        ({"version": "3.13.0", "bits": 64}, "warn", "3.13"),
        ({"version": "3.9.18", "bits": 64}, "fail", "too old"),
        ({"version": "2.7.18", "bits": 64}, "fail", "too old"),
        ({"version": "3.10.6", "bits": 32}, "fail", "32-bit"),
        ({"version": None, "error": "exit code 9009: Python was not found"}, "fail", "9009"),
    ],
)
def test_assess_candidate(candidate, status, note_contains):
    got_status, note = pythons.assess_candidate(candidate)
    assert got_status == status
    assert (note is None) if note_contains is None else (note_contains in note)


def cand(version, source="PATH", status=None, path=None):
    candidate = {"version": version, "bits": 64, "source": source, "path": path or f"/usr/bin/python{version}"}
    candidate["status"] = status or pythons.assess_candidate(candidate)[0]
    return candidate


@pytest.mark.parametrize(
    "versions, requested, chosen",
    [
        (["3.11.7", "3.10.13", "3.12.1"], None, "3.10.13"),  # 3.10 first
        (["3.12.1", "3.11.7"], None, "3.11.7"),  # then 3.11
        (["3.13.0", "3.12.1"], None, "3.12.1"),  # then the oldest newer one (warned)
        (["3.9.18", "2.7.18"], None, None),  # nothing usable
        (["3.12.1", "3.10.13"], "--python", "3.12.1"),  # asked for: used even when another is preferred
        (["3.9.18", "3.10.13"], "--python", "3.9.18"),  # asked for a bad one: returned, its status says why
    ],
)
def test_choose_python(versions, requested, chosen):
    candidates = [cand(v, source=("--python" if requested and i == 0 else "PATH")) for i, v in enumerate(versions)]
    result = pythons.choose_python(candidates, "python" if requested else None)
    assert (result["version"] if result else None) == chosen


def test_choice_keeps_discovery_order_among_equals():
    first, second = cand("3.10.13", "current", path="/a"), cand("3.10.11", path="/b")
    assert pythons.choose_python([first, second])["path"] == "/a"


def test_assess_python_item():
    section = pythons.python_section([cand("3.12.1")], None)
    status, value, fix = pythons.assess_python(section)
    assert status == "warn" and "3.12.1" in value and "Python 3.10" in fix
    status, value, fix = pythons.assess_python(pythons.python_section([cand("3.9.1")], None))
    assert status == "fail" and "no usable Python" in value and "3.10" in fix


def test_assess_python_item_for_an_interpreter_that_does_not_run():
    broken = {"version": None, "bits": None, "source": "--python", "path": "/tmp/notes.txt", "status": "fail",
              "note": "does not run: could not be started"}
    status, value, fix = pythons.assess_python(pythons.python_section([broken], "/tmp/notes.txt"))
    assert status == "fail" and "None" not in value and "/tmp/notes.txt" in value and "does not run" in fix


def test_current_interpreter_probe_is_real():
    candidate = pythons.probe_interpreter(sys.executable, "test")
    assert candidate["version"] == platform.python_version()
    assert candidate["bits"] == (64 if sys.maxsize > 2**32 else 32)
    assert "error" not in candidate


def fake_python(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def answer(version: str, executable: str) -> str:
    return "echo '" + json.dumps({"version": version, "bits": 64, "executable": executable}) + "'"


@posix_only
def test_broken_interpreter_reports_its_first_line(tmp_path):
    shim = fake_python(tmp_path, "python3.10", 'echo "pyenv: python3.10: command not found" >&2\nexit 127')
    candidate = pythons.probe_interpreter(str(shim), "PATH")
    assert candidate["error"] == "exit code 127: pyenv: python3.10: command not found"
    assert pythons.probe_interpreter(str(tmp_path / "missing"), "PATH")["error"]


@posix_only
def test_discovery_on_path_probes_each_and_prefers_310(tmp_path, monkeypatch):
    fake_python(tmp_path, "python3.10", answer("3.10.13", "/opt/py310/bin/python3.10"))
    fake_python(tmp_path, "python3.12", answer("3.12.1", "/opt/py312/bin/python3.12"))
    fake_python(tmp_path, "python3.11", 'echo "pyenv: python3.11: command not found" >&2\nexit 127')
    monkeypatch.setenv("PATH", str(tmp_path))
    candidates = pythons.probe_pythons("Linux")
    summary = [(c["source"], c["version"], c["status"]) for c in candidates]
    assert summary[0] == ("current", platform.python_version(), pythons.assess_candidate(candidates[0])[0])
    assert ("PATH", "3.10.13", "ok") in summary and ("PATH", "3.12.1", "warn") in summary and ("PATH", None, "fail") in summary
    section = pythons.python_section(candidates, None)
    assert section["chosen"]["version"] == "3.10.13"
    assert set(section["chosen"]) == {"path", "version", "bits", "source", "status", "note"}


@posix_only
def test_requested_interpreter_comes_first_and_is_chosen(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    fake_python(tmp_path, "python3.10", answer("3.10.13", "/opt/py310/bin/python3.10"))
    mine = fake_python(tmp_path, "mypython", answer("3.12.4", "/opt/mine/bin/python3.12"))
    assert pythons.resolve_requested("mypython") == str(mine)
    assert pythons.resolve_requested(str(mine)) == str(mine)
    assert pythons.resolve_requested("no-such-python") is None
    candidates = pythons.probe_pythons("Linux", str(mine))
    section = pythons.python_section(candidates, "mypython")
    assert candidates[0]["source"] == "--python"
    assert section["chosen"]["version"] == "3.12.4" and section["chosen"]["status"] == "warn"


def test_the_same_interpreter_counts_once():
    candidates = [
        {"path": "/venv/bin/python", "real_path": "/usr/bin/python3.11", "source": "current"},
        {"path": "/usr/bin/python3.11", "real_path": "/usr/bin/python3.11", "source": "PATH"},
        {"path": "/x/python3.10", "error": "exit code 127", "source": "PATH"},
    ]
    assert [c["source"] for c in pythons.dedupe(candidates)] == ["current", "PATH"]
    assert pythons.dedupe(candidates)[1]["path"] == "/x/python3.10"


# ------------------------------------------------- Windows interpreters (issue 14 item 3), recorded facts

STORE_ALIAS = r"C:\Users\Wei\AppData\Local\Microsoft\WindowsApps\python.exe"
# What the alias prints when no Store Python is installed (exit code 9009), as on Windows 10/11.
STORE_ALIAS_ERROR = ("exit code 9009: Python was not found; run without arguments to install from the Microsoft Store, "
                     "or disable this shortcut from Settings > Manage App Execution Aliases.")


def test_the_store_alias_is_said_to_be_no_python():
    status, note = pythons.assess_candidate({"path": STORE_ALIAS, "version": None, "error": STORE_ALIAS_ERROR, "source": "PATH"})
    assert status == "fail" and "not a Python" in note and "App execution aliases" in note and "python.org" in note


def test_a_store_python_is_warned_and_a_python_org_one_of_the_same_version_wins():
    store = {"path": STORE_ALIAS, "version": "3.10.11", "bits": 64, "source": "PATH"}
    status, note = pythons.assess_candidate(store)
    assert status == "warn" and "Microsoft Store" in note
    store["status"] = status
    plain = cand("3.10.11", path=r"C:\Users\Wei\AppData\Local\Programs\Python\Python310\python.exe")
    assert pythons.choose_python([store, plain])["path"] == plain["path"]


def test_32_bit_python_is_refused_even_from_the_py_launcher():
    found = dict((tag, path) for tag, path in pythons.parse_py_launcher_list((FIXTURES / "py-0p-new.txt").read_text()))
    candidate = {"path": found["3.10-32"], "version": "3.10.11", "bits": 32, "source": "py launcher"}
    status, note = pythons.assess_candidate(candidate)
    assert status == "fail" and "64-bit" in note
    candidate["status"] = status
    assert pythons.choose_python([candidate]) is None


@pytest.mark.parametrize("executable, prefix, base_prefix, base_executable, version, windows, expected", [
    # A Windows venv: Scripts\python.exe, made from C:\Python310.
    (r"C:\sd\venv\Scripts\python.exe", r"C:\sd\venv", r"C:\Python310", r"C:\Python310\python.exe", "3.10.11", True,
     [r"C:\Python310\python.exe"]),
    # Python 3.10 on Windows reports _base_executable = the venv's own: the base prefix names it.
    (r"C:\sd\venv\Scripts\python.exe", r"C:\sd\venv", r"C:\Python310", r"C:\sd\venv\Scripts\python.exe", "3.10.6", True,
     [r"C:\Python310\python.exe"]),
    ("/home/wei/sd/venv/bin/python", "/home/wei/sd/venv", "/usr", "/usr/bin/python3.10", "3.10.12", False,
     ["/usr/bin/python3.10", "/usr/bin/python3"]),
    ("/usr/bin/python3.10", "/usr", "/usr", "", "3.10.12", False, []),  # not a venv
    (r"C:\Python310\python.exe", r"C:\Python310", r"C:\Python310", "", "3.10.11", True, []),
])
def test_venv_base_candidates(executable, prefix, base_prefix, base_executable, version, windows, expected):
    assert pythons.venv_base_candidates(executable, prefix, base_prefix, base_executable, version, windows) == expected


def test_sdsetups_own_venv_interpreter_is_never_the_choice():
    """From a venv, the current candidate is the venv's base (this test suite runs from one)."""
    current = pythons._current()
    if sys.prefix == getattr(sys, "base_prefix", sys.prefix):
        pytest.skip("this interpreter is not in a venv")
    assert current["path"] != sys.executable and os.path.isfile(current["path"])
    assert "sdsetup's own venv" in pythons.assess_candidate(current)[1]
    # When the base cannot be found, a system interpreter of the same version is preferred to the venv's.
    own = {**cand("3.10.13", "current", path="/opt/sdsetup/venv/bin/python"), "in_venv": True}
    system = cand("3.10.12", path="/usr/bin/python3.10")
    assert pythons.choose_python([own, system])["path"] == "/usr/bin/python3.10"
    assert pythons.choose_python([own])["path"] == own["path"]  # the only one: still usable


@posix_only
def test_a_venv_interpreter_found_on_path_stands_for_its_base(tmp_path, monkeypatch):
    (tmp_path / "base").mkdir()
    base = fake_python(tmp_path / "base", "python3.10", answer("3.10.13", "/x"))
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    fake_python(venv, "python3.10", "echo '" + json.dumps({
        "version": "3.10.13", "bits": 64, "executable": str(venv / "python3.10"), "prefix": str(venv.parent),
        "base_prefix": str(tmp_path / "nowhere"), "base_executable": str(base)}) + "'")
    monkeypatch.setenv("PATH", str(venv))
    candidate = [c for c in pythons.probe_pythons("Linux") if c["source"] == "PATH"][0]
    assert candidate["path"] == str(base) and candidate["found_as"] == str(venv / "python3.10")
    status, note = pythons.assess_candidate(candidate)
    assert status == "ok" and "virtual environment" in note and "base interpreter" in note


@posix_only
def test_windows_discovery_asks_path_and_the_py_launcher(tmp_path, monkeypatch):
    """`python`/`python3` on PATH (where the Store alias lives) and every `py -0p` entry are candidates."""
    fake_python(tmp_path, "python", answer("3.10.11", "/x"))
    fake_python(tmp_path, "python3", answer("3.12.1", "/y"))
    listing = tmp_path / "listing.txt"
    listing.write_text((FIXTURES / "py-0p-new.txt").read_text())
    fake_python(tmp_path, "py", f'[ "$1" = "-0p" ] && /bin/cat "{listing}"')
    monkeypatch.setenv("PATH", str(tmp_path))
    found = pythons.discover_paths("Windows")
    assert (str(tmp_path / "python"), "PATH") in found and (str(tmp_path / "python3"), "PATH") in found
    assert (r"C:\Python310\python.exe", "py launcher") not in found  # that one is the old-format fixture
    assert (r"C:\Program Files (x86)\Python310-32\python.exe", "py launcher") in found
    assert [p for p, source in pythons.discover_paths("Linux") if source != "PATH"] == []


def test_the_python_item_says_which_one_is_used_and_why():
    status, value, _ = pythons.assess_python(pythons.python_section([cand("3.11.7"), cand("3.10.13")], None))
    assert status == "ok" and "3.10.13" in value and "chosen: 3.10 is the version the web UI is tested with" in value
    _, value, _ = pythons.assess_python(pythons.python_section([cand("3.11.7")], None))
    assert "no 3.10 found" in value
    _, value, _ = pythons.assess_python(pythons.python_section([cand("3.11.7", source="--python")], "x"))
    assert "given with --python" in value


def test_with_only_the_store_alias_the_python_item_names_it():
    alias = {"path": STORE_ALIAS, "version": None, "bits": None, "error": STORE_ALIAS_ERROR, "source": "PATH"}
    alias["status"], alias["note"] = pythons.assess_candidate(alias)
    status, value, fix = pythons.assess_python(pythons.python_section([alias], None))
    assert status == "fail" and "Microsoft Store's alias, not a Python" in value and "App execution aliases" in fix
