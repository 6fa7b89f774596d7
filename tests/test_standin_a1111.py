"""The stand-in A1111 (tests/fixtures/install/webui_launch.py) decides as the real launch does.

bench/real_ui installs and launches the real A1111 v1.10.1 (modules/launch_utils.py at 82a973c0). Where
the real prepare_environment() would go to the network at first launch, the stand-in must report a
problem, or the install end-to-end tests pass for an install the real web UI would repair online. The
expected answers below are the real code's, read at that commit:

- requirements_met(): each non-blank line must match `\\s*([-_a-zA-Z0-9]+)\\s*(?:==\\s*([-+_.a-zA-Z0-9]+))?`
  at its start (a comment line does not: False, i.e. `pip install -r` at launch); versions compare with
  packaging.version.parse (1.0 == 1.0.0); a trailing `# comment` is ignored; a line without == is
  skipped (`-r file` reads as the name `-r`); a dotted name is read up to the dot (and so skipped).
- torch: `not is_installed("torch") or not is_installed("torchvision")` runs TORCH_COMMAND; without
  --skip-torch-cuda-test, `assert torch.cuda.is_available()` failing raises "Torch is not able to use GPU".
- requirements_versions.txt starts with `setuptools==69.5.1  # temp fix …`: anything that moves setuptools
  after the install makes the first launch reinstall the requirements.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.install import fixture

LAUNCH = Path(fixture.HERE) / "webui_launch.py"
FUNCTIONS = ("RE_REQUIREMENT", "is_installed", "same_version", "requirements_problems", "torch_problems")


def standin_functions() -> str:
    """The stand-in's decision functions without its top-level checks (which run against the cwd)."""
    tree = ast.parse(LAUNCH.read_text("utf-8"))
    keep = [node for node in tree.body
            if isinstance(node, (ast.Import, ast.ImportFrom))
            or (isinstance(node, ast.FunctionDef) and node.name in FUNCTIONS)
            or (isinstance(node, ast.Assign) and any(getattr(t, "id", None) in FUNCTIONS for t in node.targets))]
    missing = set(FUNCTIONS) - {getattr(n, "name", None) or n.targets[0].id for n in keep if not isinstance(n, (ast.Import, ast.ImportFrom))}
    assert not missing, f"the stand-in lost {missing}"
    return ast.unparse(ast.Module(body=keep, type_ignores=[]))


def dist(site: Path, name: str, version: str) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", "utf-8")


def run_standin(tmp_path: Path, call: str, installed: dict[str, str], packages: dict[str, str] | None = None,
                *, isolated: bool = False):
    """Evaluate `call` with the stand-in's functions in a child Python that sees only `installed`
    distributions and `packages` modules (plus, unless isolated, this venv's packaging)."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    for name, version in installed.items():
        dist(site, name, version)
    for rel, text in (packages or {}).items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text, "utf-8")
    script = f"import sys, json\nsys.path.insert(0, {str(site)!r})\n{standin_functions()}\nprint(json.dumps({call}))\n"
    argv = [sys.executable, "-S" if isolated else "-s", "-c", script]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


# (requirements file, installed distributions, would the real requirements_met() be True?)
REQUIREMENTS_CASES = [
    ("standin-a==1.0\n", {"standin-a": "1.0"}, True),
    ("standin-a==1.0\n", {"standin-a": "1.0.0"}, True),          # packaging: 1.0 == 1.0.0
    ("standin-a==1.0\n", {"standin-a": "2.0"}, False),
    ("standin-a==1.0\n", {}, False),
    ("standin-tools==69.5.1  # temp fix for compatibility with some old packages\n", {"standin-tools": "69.5.1"}, True),
    ("# pinned for the web UI\nstandin-a==1.0\n", {"standin-a": "1.0"}, False),   # the comment line: pip install at launch
    ("-r other.txt\n", {}, True),                               # "-r" reads as a name without a version: skipped
    ("\n\nstandin-a\n", {}, True),                                # no version: skipped, even when missing
    ("standin.dotted==5.0\n", {}, True),                         # read as `standin`: no version, skipped
    ("standin-a==2.1.2\n", {"standin-a": "2.1.2+cpu"}, False),   # a local version is another version
]


@pytest.mark.parametrize("text,installed,met", REQUIREMENTS_CASES, ids=[c[0].splitlines()[-1][:30] for c in REQUIREMENTS_CASES])
def test_requirements_check_answers_as_the_real_requirements_met(tmp_path, text, installed, met):
    (tmp_path / "reqs.txt").write_text(text, "utf-8")
    problems = run_standin(tmp_path, "requirements_problems('reqs.txt')", installed)
    assert (problems == []) is met, problems


def test_requirements_versions_compare_alike_without_packaging(tmp_path):
    """The fixture venv may lack packaging: the stand-in's fallback still equates 1.0 and 1.0.0 and tells
    a local version apart, as packaging does."""
    (tmp_path / "reqs.txt").write_text("standin-a==1.0\nstandin-b==2.1.2\n", "utf-8")
    assert run_standin(tmp_path, "requirements_problems('reqs.txt')", {"standin-a": "1.0.0", "standin-b": "2.1.2"}, isolated=True) == []
    problems = run_standin(tmp_path, "requirements_problems('reqs.txt')", {"standin-a": "1.0", "standin-b": "2.1.2+cpu"}, isolated=True)
    assert problems and "standin-b" in problems[0]


CPU_TORCH = {"torch/__init__.py": "BUILD = 'cpu'\n", "torchvision/__init__.py": ""}


def test_torch_without_torchvision_is_a_network_install_at_launch(tmp_path):
    problems = run_standin(tmp_path, "torch_problems(['--skip-torch-cuda-test'])", {},
                           {"torch/__init__.py": "BUILD = 'cpu'\n"}, isolated=True)
    assert problems and "torchvision" in problems[0]


def test_cpu_torch_without_skip_cuda_test_stops_the_launch(tmp_path):
    """The real launch raises 'Torch is not able to use GPU' when torch.cuda.is_available() is false and
    --skip-torch-cuda-test is not given; with the flag (sdsetup's CPU flags) it goes on."""
    problems = run_standin(tmp_path, "torch_problems([])", {}, CPU_TORCH, isolated=True)
    assert any("--skip-torch-cuda-test" in p for p in problems)
    assert run_standin(tmp_path, "torch_problems(['--use-cpu', 'all', '--skip-torch-cuda-test'])", {}, CPU_TORCH, isolated=True) == []


def test_fixture_requirements_pin_setuptools_first_as_the_real_file_does():
    """The real requirements_versions.txt (v1.10.1) begins with `setuptools==69.5.1  # temp fix …`: an
    install step that moves setuptools afterwards (torch >= 2.6 asks for setuptools >= 77) sends the first
    launch back to pip. The stand-in's file carries the same first line, so the end-to-end test sees it."""
    first = fixture.webui_files()["requirements_versions.txt"].splitlines()[0]
    assert first.startswith("setuptools==69.5.1") and "#" in first
