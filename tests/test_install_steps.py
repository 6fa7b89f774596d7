"""Install pieces at their boundaries: pip's report (a real one), the journal, the Hub cache layout
against a real HTTP server, the venv and torch-constraint decisions."""

from __future__ import annotations

import dataclasses

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.install.journal import Journal
from sdsetup.install.steps.pip_deps import archive_filename
from sdsetup.install.steps.torch import constraint_lines
from sdsetup.install.steps.venv import venv_state
from sdsetup.install.wheelhouse import filename_from_url, parse_report
from sdsetup.manifest import PythonSpec
from tests.fixtures.install.fixture import build_wheel


def test_parse_a_real_pip_report(tmp_path):
    """pip's own --dry-run --report against a local PEP 503 index: every pick with its URL and sha256."""
    from tests.servers.fileserver import FileServer
    from tests.servers.pypi_index import sha256_of, write_simple_index

    wheels = [build_wheel(tmp_path / "w", "fixture-a", "1.0", requires=("fixture-b>=2",)),
              build_wheel(tmp_path / "w", "fixture-b", "2.0"), build_wheel(tmp_path / "w", "fixture-b", "1.0")]
    write_simple_index(tmp_path / "srv" / "simple", wheels, tmp_path / "srv" / "files")
    with FileServer(tmp_path / "srv") as server:
        report = tmp_path / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed", "--report", str(report),
                        "--index-url", server.url("/simple/"), "fixture-a"], check=True, capture_output=True, timeout=120)
    picks = {p.name: p for p in parse_report(json.loads(report.read_text()))}
    assert set(picks) == {"fixture-a", "fixture-b"} and picks["fixture-b"].version == "2.0"
    assert picks["fixture-b"].sha256 == sha256_of(tmp_path / "srv" / "files" / "fixture_b-2.0-py3-none-any.whl")
    assert picks["fixture-a"].requested and not picks["fixture-b"].requested
    assert picks["fixture-a"].url.startswith("http://127.0.0.1:") and picks["fixture-a"].is_wheel


def _report(*items):
    return {"version": "1", "install": list(items)}


def test_parse_report_local_archives_and_refusals():
    local = {"metadata": {"name": "clip", "version": "1.0"}, "requested": True,
             "download_info": {"url": "file:///w/.sdsetup/wheelhouse/CLIP-d50d.zip", "archive_info": {"hash": "sha256=" + "a" * 64}}}
    pick = parse_report(_report(local))[0]
    assert pick.local_path == "/w/.sdsetup/wheelhouse/CLIP-d50d.zip" and pick.sha256 == "a" * 64 and not pick.is_wheel
    vcs = {"metadata": {"name": "x", "version": "1"}, "download_info": {"url": "https://github.com/o/x", "vcs_info": {"vcs": "git"}}}
    with pytest.raises(SdsetupError, match="VCS URL"):
        parse_report(_report(vcs))
    with pytest.raises(SdsetupError, match="unexpected format"):
        parse_report({"version": "2", "install": []})


@pytest.mark.parametrize(
    "url, name",
    [
        ("https://download.pytorch.org/whl/cu121/torch-2.1.2%2Bcu121-cp310-cp310-linux_x86_64.whl", "torch-2.1.2+cu121-cp310-cp310-linux_x86_64.whl"),
        ("https://files.pythonhosted.org/packages/ab/cd/six-1.16.0-py2.py3-none-any.whl#sha256=abc", "six-1.16.0-py2.py3-none-any.whl"),
    ],
)
def test_filename_from_url(url, name):
    assert filename_from_url(url) == name


def test_archive_names_never_collide():
    assert archive_filename("https://github.com/openai/CLIP/archive/d50d76d.zip") == "CLIP-d50d76d.zip"
    assert archive_filename("https://github.com/mlfoundations/open_clip/archive/bb6e834.zip") == "open_clip-bb6e834.zip"


def test_constraints_keep_the_exact_torch_build():
    assert constraint_lines({"torchvision": "0.16.2+cu121", "torch": "2.1.2+cu121"}) == "torch==2.1.2+cu121\ntorchvision==0.16.2+cu121\n"
    with pytest.raises(SdsetupError, match="torchvision"):
        constraint_lines({"torch": "2.1.2", "torchvision": None})


@pytest.mark.parametrize(
    "probe, state",
    [
        (None, "missing"),
        ({"python": "3.12.1", "packages": {"pip": "26.0"}}, "python-unsupported"),
        ({"python": "3.10.13", "packages": {"pip": "23.2.1"}}, "pip-old"),
        ({"python": "3.10.13", "packages": {"pip": None}}, "pip-old"),
        ({"python": "3.10.13", "packages": {"pip": "25.1"}}, "ok"),
        ({"python": "3.11.7", "packages": {"pip": "26.3"}}, "ok"),
    ],
)
def test_venv_state(probe, state):
    assert venv_state(probe, PythonSpec(supported=("3.10", "3.11"), recommended="3.10", pip_minimum="25.1")) == state


def test_journal_survives_damage_and_matches_fingerprints(tmp_path):
    journal = Journal(tmp_path)
    journal.started("torch", "f1")
    assert not journal.is_done("torch", "f1")
    journal.done("torch", "f1", seconds=1.5, detail={"installed": {"torch": "2.1.2"}})
    again = Journal(tmp_path)
    assert again.is_done("torch", "f1") and not again.is_done("torch", "f2")
    assert again.detail("torch") == {"installed": {"torch": "2.1.2"}}
    (tmp_path / ".sdsetup" / "journal.json").write_text("{not json")
    assert Journal(tmp_path).steps == {}  # a damaged journal only means every step is checked again


def test_hub_files_land_in_the_hf_cache_layout_with_the_resolved_commit(tmp_path):
    """A branch revision is resolved from X-Repo-Commit, files go to snapshots/<commit>/, refs/main last."""
    from sdsetup.install.context import InstallContext, Reporter
    from sdsetup.install.steps.hub import HubStep, seeded_commit
    from sdsetup.manifest import HubRepoSpec
    from sdsetup.net.mirrors import select_mirrors
    from sdsetup.settings import load_settings
    from tests.servers.fileserver import FileServer
    from tests.servers.pypi_index import write_hf_tree

    commit = "0123456789abcdef0123456789abcdef01234567"
    files = {"vocab.json": b'{"a": 1}\n', "merges.txt": b"#version: 0.2\n"}
    write_hf_tree(tmp_path / "srv", "openai/clip-vit-large-patch14", "main", files)
    write_hf_tree(tmp_path / "srv", "openai/clip-vit-large-patch14", commit, files)
    spec = HubRepoSpec("openai/clip-vit-large-patch14", "main", tuple(files))
    target = tmp_path / "webui"
    with FileServer(tmp_path / "srv") as server:
        server.rule("/openai/*", headers={"X-Repo-Commit": commit})
        settings = load_settings({"mirror": [f"huggingface={server.url('/')}"]}, env={})
        mirrors = select_mirrors(settings, env={})
        plan = SimpleNamespace(install_dir=target, options=SimpleNamespace(quiet=True), mirrors=mirrors)
        ctx = InstallContext(plan=plan, settings=settings, journal=Journal(target), reporter=Reporter(True))
        step = HubStep([spec], mirrors)
        assert not step.is_done(ctx)
        step.run(ctx)
        assert step.is_done(ctx)
        requested = [r.path for r in server.requests(method="GET")]
    hub = target / ".cache/huggingface/hub/models--openai--clip-vit-large-patch14"
    assert (hub / "refs" / "main").read_text() == commit and seeded_commit(target, spec) == commit
    assert (hub / "snapshots" / commit / "vocab.json").read_bytes() == files["vocab.json"]
    assert all(f"/resolve/{commit}/" in path for path in requested)  # the files at the commit, not at a moving branch


def test_hub_without_a_commit_header_says_what_to_do(tmp_path):
    from sdsetup.install.context import InstallContext, Reporter
    from sdsetup.install.steps.hub import HubStep
    from sdsetup.manifest import HubRepoSpec
    from sdsetup.net.mirrors import select_mirrors
    from sdsetup.settings import load_settings
    from tests.servers.fileserver import FileServer
    from tests.servers.pypi_index import write_hf_tree

    write_hf_tree(tmp_path / "srv", "org/name", "main", {"config.json": b"{}"})
    with FileServer(tmp_path / "srv") as server:
        settings = load_settings({"mirror": [f"huggingface={server.url('/')}"], "timeout": 2}, env={})
        mirrors = select_mirrors(settings, env={})
        plan = SimpleNamespace(install_dir=tmp_path / "w", options=SimpleNamespace(quiet=True), mirrors=mirrors)
        ctx = InstallContext(plan=plan, settings=settings, journal=Journal(tmp_path / "w"), reporter=Reporter(True))
        with pytest.raises(SdsetupError) as info:
            HubStep([HubRepoSpec("org/name", "main", ("config.json",))], mirrors).run(ctx)
    assert info.value.exit_code == ExitCode.NETWORK and "X-Repo-Commit" in info.value.message
    assert "pin the revision" in info.value.hint



def test_a_pinned_hub_file_with_other_bytes_fails_that_source_and_the_next_serves_it(tmp_path):
    """Issue 13 item 4: a mirror serving different bytes for a pinned Hub file is caught; the next source
    is tried, and when none has the pinned bytes the error names the file and each source's reason."""
    import hashlib

    from sdsetup.install.context import InstallContext, Reporter
    from sdsetup.install.steps.hub import HubStep
    from sdsetup.manifest import HubRepoSpec
    from sdsetup.net.mirrors import select_mirrors
    from sdsetup.settings import load_settings
    from tests.servers.fileserver import FileServer
    from tests.servers.pypi_index import write_hf_tree

    commit = "0123456789abcdef0123456789abcdef01234567"
    good = b'{"the": "vocab"}\n'
    write_hf_tree(tmp_path / "bad", "org/name", commit, {"vocab.json": b'{"tampered": 1}\n'})
    write_hf_tree(tmp_path / "good", "org/name", commit, {"vocab.json": good})
    pin = hashlib.sha256(good).hexdigest()
    spec = HubRepoSpec("org/name", commit, ("vocab.json",), hashes=(("vocab.json", pin),), sizes=(("vocab.json", len(good)),))
    with FileServer(tmp_path / "bad") as bad, FileServer(tmp_path / "good") as goodsrv:
        config = tmp_path / "config.toml"
        config.write_text(f'[[rewrite]]\nprefix = "https://huggingface.co/"\nreplace = "{bad.url("/")}"\n', "utf-8")

        def run(mirror_args, target):
            settings = load_settings({"mirror": mirror_args, "timeout": 3}, env={"SDSETUP_CONFIG": str(config)})
            mirrors = select_mirrors(settings, env={})
            plan = SimpleNamespace(install_dir=target, options=SimpleNamespace(quiet=True), mirrors=mirrors)
            ctx = InstallContext(plan=plan, settings=settings, journal=Journal(target), reporter=Reporter(True))
            HubStep([spec], mirrors).run(ctx)

        target = tmp_path / "webui"
        run([f"huggingface={goodsrv.url('/')}"], target)
        seeded = target / ".cache/huggingface/hub/models--org--name/snapshots" / commit / "vocab.json"
        assert seeded.read_bytes() == good
        assert bad.requests(method="GET")  # the tampered source was tried first, and refused
        bad_base = bad.url("/").rstrip("/")
        with pytest.raises(SdsetupError) as info:
            run([f"huggingface={bad.url('/')}"], tmp_path / "other")
    # The tampered mirror and the unreachable Hub both failed: the message names the file and each source.
    assert "vocab.json" in info.value.message and bad_base in info.value.message
    assert "huggingface.co" in info.value.message
    assert not (tmp_path / "other/.cache/huggingface/hub/models--org--name/refs/main").exists()


# Issue 11 item 4: children never outlive sdsetup, and a rerun does not start beside a killed run's child.
_PARENT = """
import sys, subprocess
from pathlib import Path
from sdsetup import children
folder, code = Path(sys.argv[1]), sys.argv[2]
with children.tracking(folder):
    children.run([sys.executable, "-c", code])
"""


def _wait_for(path: Path, seconds: float = 30.0) -> str:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it is dead for our purpose
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_child_dies_with_a_sigkilled_sdsetup_and_its_record_says_so(tmp_path):
    import os
    import signal
    import time

    pidfile = tmp_path / "child.pid"
    code = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(tmp_path / "children"), code])
    try:
        child = int(_wait_for(pidfile))
        assert (tmp_path / "children" / f"{child}.json").is_file()  # recorded while it runs
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the child outlived its SIGKILLed parent"
    finally:
        parent.kill()
        try:
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
        except (OSError, ValueError):
            pass


@pytest.mark.skipif(os.name == "nt", reason="process groups are POSIX")
def test_a_rerun_waits_for_then_refuses_a_killed_runs_leftover_process(tmp_path):
    """pip or git may have started a process of its own (a build backend, git-remote-https); it keeps the
    child's process group, and the next install run exits BUSY (6) naming it until it is gone."""
    import os
    import signal

    from sdsetup.install.executor import _refuse_while_children_run
    from sdsetup.layout import InstallLayout

    layout = InstallLayout(tmp_path / "webui")
    pidfile = tmp_path / "grandchild.pid"
    code = ("import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            f"open({str(pidfile)!r}, 'w').write(str(p.pid)); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(layout.children), code])
    grandchild = int(_wait_for(pidfile))
    try:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        with pytest.raises(SdsetupError) as info:
            _refuse_while_children_run(layout, wait=0.5)
        assert info.value.exit_code == ExitCode.BUSY and "still running" in info.value.message
        assert "kill" in info.value.hint
    finally:
        os.kill(grandchild, signal.SIGKILL)
    import time

    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    _refuse_while_children_run(layout, wait=5)  # gone: the run goes ahead, and the stale record is dropped
    assert list(layout.children.glob("*.json")) == []


def test_a_timed_out_child_is_stopped_with_its_group(tmp_path):
    from sdsetup import children

    pidfile = tmp_path / "grandchild.pid"
    code = ("import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            f"open({str(pidfile)!r}, 'w').write(str(p.pid)); time.sleep(60)")
    import time

    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        children.run([sys.executable, "-c", code], timeout=3)
    assert time.monotonic() - started < 20  # the child was stopped, not waited for
    grandchild = int(_wait_for(pidfile, 1))

    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


def test_the_journal_keeps_a_steps_last_detail_while_it_reruns(tmp_path):
    journal = Journal(tmp_path)
    journal.done("webui-user", "fp1", seconds=0.1, detail={"blocks": {"webui-user.sh": "abc"}})
    journal.started("webui-user", "fp2")
    assert Journal(tmp_path).detail("webui-user") == {"blocks": {"webui-user.sh": "abc"}}  # also after a kill here
    journal.failed("webui-user", "fp2", "boom")
    assert Journal(tmp_path).detail("webui-user") == {"blocks": {"webui-user.sh": "abc"}}
    assert not journal.is_done("webui-user", "fp2")


def test_a_rerun_that_changes_the_launch_settings_warns_of_no_edit_and_backs_nothing_up(tmp_path):
    """Issue 11 item 9: the step compares the block in the file with the one it recorded; the journal
    used to drop that record when the step started, so every rerun 'found' an edited block."""
    from sdsetup.detect.machine import MachineFacts
    from sdsetup.install.context import InstallContext, Reporter
    from sdsetup.install.plan import InstallOptions, build_plan
    from sdsetup.manifest import load_manifest
    from sdsetup.net.mirrors import select_mirrors
    from sdsetup.settings import load_settings

    install_dir = tmp_path / "webui"
    install_dir.mkdir()
    (install_dir / "webui-user.sh").write_text('#!/bin/bash\nexport COMMANDLINE_ARGS="--api"\n')
    data = json.loads((Path(__file__).parent / "fixtures" / "detect" / "machine-gtx1650-windows.json").read_text())
    data["os"]["system"] = "Linux"
    settings = load_settings({}, env={})
    outcomes = []
    for gpus in (data["gpus"], []):  # the second run: another machine's flags, so the block changes
        facts = MachineFacts.from_json(dict(data, gpus=gpus))
        plan = build_plan(load_manifest("a1111"), facts, select_mirrors(settings, env={}), InstallOptions(quiet=True), install_dir)
        ctx = InstallContext(plan=plan, settings=settings, journal=Journal(install_dir), reporter=Reporter(True))
        step = next(step for step in plan.steps if step.id == "webui-user")
        assert not step.is_done(ctx)
        ctx.journal.started(step.id, step.fingerprint(ctx))  # as the executor does
        detail = step.run(ctx)
        ctx.journal.done(step.id, step.fingerprint(ctx), seconds=0.0, detail=detail)
        outcomes.append((list(ctx.warnings), sorted(p.name for p in (install_dir / ".sdsetup" / "backups").glob("*"))))
    first, second = outcomes
    assert len(first[1]) == 1  # the user's own file, before sdsetup first added its block
    assert not any("edited" in w for w in second[0]), second[0]
    assert second[1] == first[1]  # no new backup


# Wiring the mirror layer into install (issue 11 items 10 and 11).
_MIRROR_PASSWORD = "pw-s3cret-77"


def _login_mirrors():
    from sdsetup.net.mirror_profiles import Mirror
    from sdsetup.net.mirrors import MirrorPlan, select_mirrors
    from sdsetup.settings import load_settings

    settings = load_settings({"mirror": ["cn", f"pypi=https://alice:{_MIRROR_PASSWORD}@pypi.corp.example/simple"]}, {})
    plan = select_mirrors(settings, env={})
    torch = (Mirror("torch", "t", f"https://u:{_MIRROR_PASSWORD}@t.example/{{tag}}/", layout="simple"),)
    return MirrorPlan("x", {**plan.channels, "torch": torch})


def test_the_venv_steps_plan_never_shows_a_mirror_password():
    import json

    from sdsetup.install.steps.venv import VenvStep
    from sdsetup.manifest import load_manifest

    shown = json.dumps(VenvStep(load_manifest("a1111").python, _login_mirrors(), None).describe())
    assert _MIRROR_PASSWORD not in shown and "alice:***@" in shown


def test_a_torch_mirror_login_reaches_the_pip_that_installs_torch():
    from sdsetup.install.pip_run import tool_env

    env = tool_env(_login_mirrors(), torch_tag="cpu")
    assert env["PIP_EXTRA_INDEX_URL"] == f"https://u:{_MIRROR_PASSWORD}@t.example/cpu/"
    assert "PIP_EXTRA_INDEX_URL" not in tool_env(_login_mirrors())  # other pip runs are not sent there


def test_the_install_record_keeps_no_mirror_password():
    from sdsetup.install.steps.record import record_secrets

    assert _MIRROR_PASSWORD in record_secrets(_login_mirrors())


def test_no_hint_names_a_command_that_does_not_exist():
    from pathlib import Path as _P

    import sdsetup

    root = _P(sdsetup.__file__).parent
    assert not [p for p in root.rglob("*.py") if "mirrors test" in p.read_text("utf-8")]


def test_the_torch_steps_pip_runs_carry_the_torch_mirror_login(tmp_path):
    from sdsetup.install.context import InstallContext, Reporter
    from sdsetup.install.pip_run import tool_env
    from sdsetup.install.plan import Plan
    from sdsetup.install.steps.torch import with_torch_login
    from sdsetup.settings import load_settings

    plan = SimpleNamespace(install_dir=tmp_path, options=SimpleNamespace(quiet=True), mirrors=_login_mirrors())
    real = Plan(**{f.name: getattr(plan, f.name, None) for f in dataclasses.fields(Plan)})
    ctx = InstallContext(plan=real, settings=load_settings({}, {}), journal=Journal(tmp_path), reporter=Reporter(True))
    torch_ctx = with_torch_login(ctx, "cpu")
    assert tool_env(torch_ctx.mirrors)["PIP_EXTRA_INDEX_URL"] == f"https://u:{_MIRROR_PASSWORD}@t.example/cpu/"
    assert torch_ctx.journal is ctx.journal and torch_ctx.warnings is ctx.warnings
    assert "PIP_EXTRA_INDEX_URL" not in tool_env(ctx.mirrors)


# Issue 11 item 4 for pip: the install's pip runs are sdsetup's recorded children in their own group.
_OWN_GROUP = "import os, json; print(json.dumps({'python': '3.11.0', 'executable': 'x', 'packages': {}, 'own_group': os.getpgid(0) == os.getpid()}))"


@pytest.mark.skipif(os.name == "nt", reason="process groups: POSIX")
def test_pip_runs_and_venv_probes_go_through_the_child_runner(tmp_path):
    from sdsetup import children
    from sdsetup.install.pip_run import probe_venv, run_checked

    with children.tracking(tmp_path / "children"):
        result = run_checked([sys.executable, "-c", _OWN_GROUP], env=dict(os.environ), what="t", hint="h")
        assert json.loads(result.stdout)["own_group"] is True
        fake = tmp_path / "python"
        fake.write_text(f"#!/bin/sh\nexec {sys.executable} -c \"{_OWN_GROUP}\"\n")
        fake.chmod(0o755)
        assert probe_venv(fake)["own_group"] is True


def test_a_quiet_pip_run_says_what_it_waits_for(tmp_path, monkeypatch, capsys):
    """Issue 13 item 5: a pip run silent for the heartbeat interval prints what it waits for."""
    import sdsetup.install.pip_run as pip_run

    monkeypatch.setattr(pip_run, "HEARTBEAT_EVERY", 0.5)  # 15 s in a real run
    pip_run.run_checked([sys.executable, "-c", "import time; time.sleep(2)", "--index-url", "https://mirror.example/simple/"],
                        env=dict(os.environ), what="installing torch", hint="h")
    err = capsys.readouterr().err
    assert "waiting for installing torch" in err and "mirror.example" in err


# Issue 12 item 8: one version and name helper (sdsetup/versions.py, on packaging) for install too.
def test_install_reads_versions_and_names_the_way_pip_does():
    from sdsetup.install.steps.torch import requirement_name
    from sdsetup.install.steps.venv import venv_state

    spec = SimpleNamespace(supported=("3.11",), pip_minimum="25.1")
    # 25.0rc10 is older than 25.1 (a digit-joining reader took it for 25.10)
    assert venv_state({"python": "3.11.7", "packages": {"pip": "25.0rc10"}}, spec) == "pip-old"
    assert venv_state({"python": "3.11.7", "packages": {"pip": "25.1"}}, spec) == "ok"
    assert requirement_name("Open_Clip.Torch>=2.0") == "open-clip-torch"


def test_install_has_no_dead_context_timer():
    from sdsetup.install.context import InstallContext

    assert not hasattr(InstallContext, "timer")
