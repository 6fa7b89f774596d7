"""scripts/bump_report.py against a real local git server: newer tags, the branch head, and the diff of
the files a manifest's facts come from."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.gitserver import _git, serve_git

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bump_report.py"


def _main(argv):
    spec = importlib.util.spec_from_file_location("bump_report", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bump_report"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.main(argv)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    root = tmp_path_factory.mktemp("bump-world")
    with serve_git(root / "git") as git:
        first = git.create_repo("sdbump/webui", {"requirements_versions.txt": "fixture-a==1.0\ntorch\n",
                                                  "modules/launch_utils.py": "TORCH_COMMAND = 'torch==2.1.2'\n",
                                                  "README.md": "unrelated\n"})
        work, bare = root / "git" / ".work" / "sdbump" / "webui", root / "git" / "sdbump" / "webui.git"
        (work / "requirements_versions.txt").write_text("fixture-a==2.0\ntorch\n")
        (work / "modules" / "launch_utils.py").write_text("TORCH_COMMAND = 'torch==2.7.0'\n")
        (work / "README.md").write_text("changed, but not a fact file\n")
        _git("commit", "-q", "-am", "bump", cwd=work)
        second = _git("rev-parse", "HEAD", cwd=work)
        _git("push", "-q", str(bare), "main", cwd=work)
        _git("tag", "v1.0", first, cwd=bare)
        _git("tag", "-a", "-m", "release", "v1.1", second, cwd=bare)
        _git("tag", "v1.1-rc1", first, cwd=bare)
        yield {"git": git, "first": first, "second": second}


def _manifest(tmp_path, commit, ref):
    path = tmp_path / "m.toml"
    path.write_text(f"""schema = 1
name = "bump-fixture"
[webui]
url = "https://github.com/sdbump/webui.git"
commit = "{commit}"
ref = "{ref}"
[torch.cpu]
packages = ["torch==2.1.2"]
[[pip]]
name = "requirements"
requirements_file = "requirements_versions.txt"
""", "utf-8")
    return str(path)


def test_a_newer_release_is_named_with_the_requirements_and_launch_diff(upstream, tmp_path, capsys):
    code = _main(["--manifest", _manifest(tmp_path, upstream["first"], "v1.0"), "--github", upstream["git"].base])
    out = capsys.readouterr().out
    assert code == 1
    assert "tags newer than v1.0: v1.1-rc1, v1.1" in out  # release candidates sort below the release
    assert f"diff {upstream['first'][:12]} .. v1.1 ({upstream['second'][:12]})" in out
    assert "-fixture-a==1.0" in out and "+fixture-a==2.0" in out
    assert "+TORCH_COMMAND = 'torch==2.7.0'" in out
    assert "README.md" not in out.split("--- diff", 1)[1].split("\n", 1)[1]  # only the fact files of an a1111-kind UI


def test_an_up_to_date_pin_says_so_and_exits_0(upstream, tmp_path, capsys):
    assert _main(["--manifest", _manifest(tmp_path, upstream["second"], "v1.1"), "--github", upstream["git"].base]) == 0
    assert "no tag newer than v1.1" in capsys.readouterr().out


def test_a_pin_that_follows_a_branch_shows_the_head(upstream, tmp_path, capsys):
    code = _main(["--manifest", _manifest(tmp_path, upstream["first"], "main"), "--github", upstream["git"].base])
    out = capsys.readouterr().out
    assert code == 1 and f"branch main head: {upstream['second'][:12]} (moved)" in out and "+fixture-a==2.0" in out


def test_an_unreachable_repository_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--manifest", _manifest(tmp_path, "1" * 40, "v1.0"),
                             "--github", "http://127.0.0.1:9/"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.startswith("bump_report: ") and "Traceback" not in result.stderr
