"""Python interpreters for the web UI: every candidate, its version and bitness, and the one to use.

A1111 master pins torch 2.1.2 (facts §1.2), which has wheels for CPython 3.8-3.11 on 64-bit only:
3.10 is what the web UI is tested with, 3.11 works, 3.12+ gets "No matching distribution found for
torch==2.1.2" (facts §3.3), below 3.10 is refused by sdsetup, and 32-bit Python has no torch at all.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import sys
from typing import Any, Iterable, Sequence

from sdsetup.detect._probe import run_result, run_text
from sdsetup.i18n import N_, t
from sdsetup.versions import version_tuple

PATH_NAMES = ("python3.10", "python3.11", "python3.12")
# python.org's Windows installer puts only python.exe on PATH; python3.exe there is often the Store alias.
WINDOWS_PATH_NAMES = ("python", "python3")
MIN_VERSION = (3, 10)
PREFERRED = ((3, 10), (3, 11))  # in this order; anything newer only when nothing else is there

# Runs under whatever the candidate is (even Python 2), so: no f-strings, nothing newer than 2.7.
_SNIPPET = (
    "import sys, struct, json; "
    "print(json.dumps({'version': '%d.%d.%d' % tuple(sys.version_info[:3]), "
    "'bits': struct.calcsize('P') * 8, 'executable': sys.executable, 'prefix': sys.prefix, "
    "'base_prefix': getattr(sys, 'real_prefix', getattr(sys, 'base_prefix', sys.prefix)), "
    "'base_executable': getattr(sys, '_base_executable', '')}))"
)

# `py -0p`: new launcher " -V:3.12 *        C:\...\python.exe", old launcher " -3.10-64 *     C:\...".
_PY_LIST_LINE = re.compile(r"^\s*-(?:V:)?(?P<tag>\S+?)(?:\s+\*)?\s+(?P<path>\S.*?)\s*$")


def parse_py_launcher_list(text: str | None) -> list[tuple[str, str]]:
    """(tag, path) for each interpreter the Windows `py` launcher knows (`py -0p` output)."""
    found = []
    for line in (text or "").splitlines():
        match = _PY_LIST_LINE.match(line)
        if not match:
            continue
        path = match.group("path")
        # Entries without an executable path (e.g. "(venv)") are not interpreters we can run.
        if not (path.lower().endswith(".exe") or "\\" in path or "/" in path):
            continue
        found.append((match.group("tag"), path))
    return found


def parse_probe_output(text: str | None) -> dict[str, Any] | None:
    """The candidate's own answer to _SNIPPET, or None when it printed something else."""
    for line in reversed((text or "").strip().splitlines()):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("version"), str):
            found = {"version": data["version"], "bits": data.get("bits"), "executable": data.get("executable")}
            found.update({key: data[key] for key in ("prefix", "base_prefix", "base_executable") if data.get(key)})
            return found
    return None


def is_store_alias(path: str | None) -> bool:
    """A path under %LOCALAPPDATA%\\Microsoft\\WindowsApps: the Microsoft Store's App execution alias."""
    return "\\microsoft\\windowsapps\\" in (path or "").replace("/", "\\").lower()


def venv_base_candidates(executable: str, prefix: str | None, base_prefix: str | None, base_executable: str | None,
                         version: str | None, windows: bool) -> list[str]:
    """Where the interpreter a virtual environment was made from may be, best first; [] when
    `executable` is not in a venv (pure). Windows venvs keep python.exe in Scripts\\."""
    if not prefix or not base_prefix or os.path.normcase(prefix) == os.path.normcase(base_prefix):
        return []
    found = []
    if base_executable and os.path.normcase(base_executable) != os.path.normcase(executable):
        found.append(base_executable)
    sep = "\\" if windows else "/"
    root = base_prefix.rstrip("/\\")
    if windows:
        found.append(root + sep + "python.exe")
    else:
        minor = ".".join((version or "").split(".")[:2])
        found += [root + "/bin/python" + minor if minor else "", root + "/bin/python3"]
    return [path for path in dict.fromkeys(found) if path]


STORE_ALIAS_NOTE = N_(
    "the Microsoft Store's 'python' alias (an App execution alias), not a Python: install 64-bit Python 3.10 "
    "from python.org, and turn the alias off in Settings > Apps > Advanced app settings > App execution aliases"
)
STORE_PYTHON_NOTE = N_(
    "Python from the Microsoft Store: its sandbox redirects writes under AppData, which breaks venvs and pip "
    "caches for the web UI; prefer 64-bit Python 3.10 from python.org"
)


def assess_candidate(candidate: dict[str, Any]) -> tuple[str, str | None]:
    """(status, note) for one interpreter: ok, warn (works with caveats) or fail (unusable)."""
    store = is_store_alias(candidate.get("found_as") or candidate.get("path"))
    if candidate.get("error"):
        if store:
            return "fail", t("{note} ({error})", note=t(STORE_ALIAS_NOTE), error=candidate["error"])
        return "fail", t("does not run: {error}", error=candidate["error"])
    version = version_tuple(candidate.get("version"))
    if not version:
        return "fail", t("version unknown")
    if candidate.get("bits") == 32:
        return "fail", t("32-bit Python has no torch wheels; install 64-bit Python 3.10")
    if version[:2] < MIN_VERSION:
        return "fail", t("Python {version} is too old; the web UI needs 3.10", version=candidate["version"])
    if version[:2] >= (3, 12):
        return (
            "warn",
            t("A1111 master pins torch 2.1.2, which has no wheels for Python {version}; "
              "use Python 3.10 (or the a1111-dev manifest, torch 2.7)", version=f"{version[0]}.{version[1]}"),
        )
    if store:
        return "warn", t(STORE_PYTHON_NOTE)
    if candidate.get("found_as") and candidate.get("source") == "current":
        return "ok", t("sdsetup's own venv ({venv}) was made from it; the web UI gets a venv of its own",
                       venv=candidate["found_as"])
    if candidate.get("found_as"):
        return "ok", t("found as {venv}, a virtual environment's Python; its base interpreter is used",
                       venv=candidate["found_as"])
    return "ok", None


def _preference(candidate: dict[str, Any]) -> tuple[int, int, int]:
    version = version_tuple(candidate.get("version"))[:2]
    # Among equal versions: a plain installed Python before the Store's and before a venv's own
    # interpreter (sdsetup's venv among them), whose base could not be found.
    second_best = int(is_store_alias(candidate.get("path")) or bool(candidate.get("in_venv")))
    if version in PREFERRED:
        return (PREFERRED.index(version), second_best, 0)
    # Newer than 3.11: the oldest of them is the most likely to have wheels.
    return (len(PREFERRED), second_best, version[1] if len(version) == 2 else 99)


def choose_python(candidates: Sequence[dict[str, Any]], requested: str | None = None) -> dict[str, Any] | None:
    """The interpreter to use: the requested one when given, else 3.10, then 3.11, then the oldest newer one.

    Candidates with status "fail" are never chosen automatically; a requested one is returned as is
    (its own status says what is wrong with it).
    """
    if requested is not None:
        for candidate in candidates:
            if candidate.get("source") == "--python":
                return candidate
        return None
    usable = [c for c in candidates if c.get("status") != "fail"]
    if not usable:
        return None
    # sorted() is stable: among equals, discovery order (current interpreter first) wins.
    return sorted(usable, key=_preference)[0]


def dedupe(candidates: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per real interpreter (a venv's python and its base count once; the first seen wins)."""
    seen: set[str] = set()
    unique = []
    for candidate in candidates:
        key = candidate.get("real_path") or candidate.get("path") or ""
        if not candidate.get("error") and key:
            key = os.path.normcase(key)
            if key in seen:
                continue
            seen.add(key)
        unique.append(candidate)
    return unique


def _use_venv_base(candidate: dict[str, Any], bases: Sequence[str]) -> dict[str, Any]:
    """A venv's interpreter stands for its base (the web UI gets a venv of its own, made from a real
    Python): the first base that exists replaces it, else it stays, marked, and is chosen last."""
    if not bases:
        return candidate
    base = next((path for path in bases if os.path.isfile(path)), None)
    if base is None:
        candidate["in_venv"] = True
        return candidate
    candidate["found_as"] = candidate["path"]
    candidate["path"] = base
    candidate["real_path"] = os.path.realpath(base)
    return candidate


def _current() -> dict[str, Any]:
    """The interpreter sdsetup runs on; from sdsetup's own venv, the Python that venv was made from."""
    version = "%d.%d.%d" % sys.version_info[:3]
    candidate = {
        "path": sys.executable,
        "real_path": os.path.realpath(sys.executable),
        "version": version,
        "bits": struct.calcsize("P") * 8,
        "source": "current",
    }
    bases = venv_base_candidates(sys.executable, sys.prefix, getattr(sys, "base_prefix", sys.prefix),
                                 getattr(sys, "_base_executable", ""), version, os.name == "nt")
    return _use_venv_base(candidate, bases)


def probe_interpreter(path: str, source: str, timeout: float = 10.0) -> dict[str, Any]:
    """Run the candidate once to learn its version and bitness (first start on Windows can be slow)."""
    candidate: dict[str, Any] = {"path": path, "version": None, "bits": None, "source": source}
    result = run_result([path, "-c", _SNIPPET], timeout=timeout)
    if result is None:
        candidate["error"] = "could not be started or did not answer in time"
        return candidate
    code, stdout, stderr = result
    answer = parse_probe_output(stdout) if code == 0 else None
    if answer is None:
        # e.g. a pyenv shim for a version that is not selected: "pyenv: python3.10: command not found"
        first = next((line.strip() for line in (stderr or stdout).splitlines() if line.strip()), "")
        candidate["error"] = f"exit code {code}" + (f": {first}" if first else "")
        return candidate
    candidate.update(version=answer["version"], bits=answer["bits"])
    executable = answer.get("executable") or path
    candidate["real_path"] = os.path.realpath(executable)
    windows = executable.lower().endswith(".exe") or "\\" in executable
    bases = venv_base_candidates(executable, answer.get("prefix"), answer.get("base_prefix"), answer.get("base_executable"),
                                 answer["version"], windows)
    return _use_venv_base(candidate, bases)


def resolve_requested(requested: str) -> str | None:
    """A --python value as an executable path: a path to a file, or a command name on PATH."""
    expanded = os.path.expanduser(requested)
    if os.path.isfile(expanded):
        return os.path.abspath(expanded)
    return shutil.which(expanded)


def require_requested(requested: str) -> str:
    """resolve_requested, or the usage error for a --python that names nothing (check and install share it)."""
    from sdsetup.errors import usage_error

    path = resolve_requested(requested)
    if not path:
        raise usage_error(
            t("--python {requested}: no such file or command", requested=requested),
            t("give the path of a Python 3.10 interpreter (e.g. /usr/bin/python3.10 or C:\\Python310\\python.exe), or leave --python out"),
        )
    return path


def discover_paths(system: str) -> list[tuple[str, str]]:
    """(path, source) of every interpreter worth probing, besides the current one."""
    found = []
    for name in (*PATH_NAMES, *(WINDOWS_PATH_NAMES if system == "Windows" else ())):
        path = shutil.which(name)
        if path:
            found.append((path, "PATH"))
    if system == "Windows":
        launcher = shutil.which("py")
        if launcher:
            for _tag, path in parse_py_launcher_list(run_text([launcher, "-0p"], timeout=5.0)):
                found.append((path, "py launcher"))
    return found


def probe_pythons(system: str, requested_path: str | None = None) -> list[dict[str, Any]]:
    """Every candidate with its status and note; the requested one (if any) first."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = ([(requested_path, "--python")] if requested_path else []) + discover_paths(system)
    with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
        probed = list(pool.map(lambda job: probe_interpreter(*job), jobs))
    if requested_path:
        ordered = [probed[0], _current(), *probed[1:]]
    else:
        ordered = [_current(), *probed]
    candidates = dedupe(ordered)
    for candidate in candidates:
        candidate["status"], candidate["note"] = assess_candidate(candidate)
    return candidates


def public(candidate: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON form of a candidate (stable keys)."""
    if candidate is None:
        return None
    return {
        "path": candidate.get("path"),
        "version": candidate.get("version"),
        "bits": candidate.get("bits"),
        "source": candidate.get("source"),
        "status": candidate.get("status"),
        "note": candidate.get("note"),
    }


def python_section(candidates: Sequence[dict[str, Any]], requested: str | None) -> dict[str, Any]:
    chosen = choose_python(candidates, requested)
    return {
        "requested": requested,
        "chosen": public(chosen),
        "candidates": [public(c) for c in candidates],
    }


def why_chosen(chosen: dict[str, Any]) -> str:
    """Why this interpreter makes the web UI's venv, in words (pure)."""
    if chosen.get("source") == "--python":
        why = t("given with --python")
    else:
        why = t({(3, 10): N_("3.10 is the version the web UI is tested with"),
                 (3, 11): N_("no 3.10 found; 3.11 also has torch 2.1.2 wheels")}.get(version_tuple(chosen.get("version"))[:2],
                                                                                  N_("no 3.10 or 3.11 found")))
    if chosen.get("status") == "ok" and chosen.get("note"):
        why += f"; {chosen['note']}"
    return why


def assess_python(section: dict[str, Any]) -> tuple[str, str, str | None]:
    """(status, value, fix) of the `python` check item."""
    chosen = section.get("chosen")
    found = len(section.get("candidates") or [])
    if chosen is None:
        alias = next((c["path"] for c in section.get("candidates") or [] if is_store_alias(c.get("path"))), None)
        return (
            "fail",
            t("no usable Python among {found} found ({alias} is the Microsoft Store's alias, not a Python)",
              found=found, alias=alias) if alias else t("no usable Python among {found} found", found=found),
            t("install 64-bit Python 3.10 (python.org; on Windows tick 'Add python.exe to PATH'), "
              "then pass it with --python PATH if it is not on PATH")
            + (t("; turn the Store alias off in Settings > Apps > Advanced app settings > App execution aliases")
               if alias else ""),
        )
    if chosen.get("version"):
        value = t("{version} ({bits}-bit) {path} (chosen: {why})", version=chosen["version"], bits=chosen["bits"],
                  path=chosen["path"], why=why_chosen(chosen))
    else:  # it did not run, so nothing is known but its path
        value = t("{path} (does not run)", path=chosen["path"])
    if chosen["status"] == "ok":
        return "ok", value, None
    fix = chosen.get("note") or ""
    if chosen["status"] == "fail":
        fix += t("; pass another interpreter with --python PATH, or leave --python out to pick one")
    else:
        fix += t("; install Python 3.10 and pass it with --python PATH")
    return chosen["status"], value, fix
