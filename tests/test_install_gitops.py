"""gitops against a real git smart-HTTP server: fetch by commit (shallow, else full), failover,
no network when HEAD is the pin, local changes never overwritten, stale locks after a kill."""

from __future__ import annotations

import subprocess

import pytest

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.gitops import GitRunner, checkout_pinned, classify_failure, exclude_paths, head_commit, is_dirty, origin_url


@pytest.fixture
def git(tmp_path):
    from tests.servers.gitserver import serve_git

    with serve_git(tmp_path / "srv") as server:
        yield server


def _second_commit(git, name: str) -> str:
    """Add a commit on top, so the first one is no longer a branch tip (not advertised)."""
    work = git.root / ".work" / name
    (work / "later.txt").write_text("later\n")
    env_args = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", *env_args, "-C", str(work), "add", "-A"], check=True)
    subprocess.run(["git", *env_args, "-C", str(work), "commit", "-q", "-m", "later"], check=True)
    subprocess.run(["git", "-C", str(work), "push", "-q", str(git.root / f"{name}.git"), "HEAD:main"], check=True)
    return subprocess.run(["git", "-C", str(work), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize(
    "stderr, kind",
    [
        ("fatal: repository 'https://x/y.git/' not found", "permanent"),
        ("remote: Repository not found.\nfatal: Authentication failed for 'https://github.com/x/y.git/'", "permanent"),
        ("fatal: could not read Username for 'https://github.com': terminal prompts disabled", "permanent"),
        ("error: Server does not allow request for unadvertised object e2bd54", "shallow-refused"),
        ("fatal: remote error: upload-pack: not our ref e2bd54", "shallow-refused"),
        ("fatal: unable to access 'https://github.com/x/': Failed to connect to github.com port 443: Timed out", "transient"),
        ("error: RPC failed; curl 56 OpenSSL SSL_read: Connection was reset", "transient"),
        ("fatal: unable to access 'https://x/': Could not resolve host: x", "transient"),
    ],
)
def test_classify_failure(stderr, kind):
    assert classify_failure(stderr) == kind


def test_fetches_the_pinned_commit_shallow_and_sets_the_canonical_origin(git, tmp_path):
    sha = git.create_repo("owner/repo", {"a.txt": "a\n"})
    target = tmp_path / "checkout"
    result = checkout_pinned(target, [git.url("owner/repo.git")], sha, runner=GitRunner(), name="repo",
                             origin="https://github.com/owner/repo.git")
    assert head_commit(target) == sha and result.shallow and (target / ".git" / "shallow").is_file()
    assert (target / "a.txt").read_text() == "a\n"
    assert origin_url(target) == "https://github.com/owner/repo.git"


def test_a_server_that_refuses_a_fetch_by_id_gets_a_full_fetch(git, tmp_path):
    pinned = git.create_repo("owner/old", {"a.txt": "v1\n"})
    _second_commit(git, "owner/old")
    subprocess.run(["git", "-C", str(git.root / "owner/old.git"), "config", "--unset", "uploadpack.allowAnySHA1InWant"], check=True)
    target = tmp_path / "checkout"
    # Protocol v0 is what such servers speak; there an unadvertised commit cannot be asked for by id.
    result = checkout_pinned(target, [git.url("owner/old.git")], pinned, runner=GitRunner(config_args=["-c", "protocol.version=0"]),
                             name="old", backoff=0.01)
    assert head_commit(target) == pinned and not result.shallow
    assert [a["shallow"] for a in result.attempts] == [True, False]


def test_fails_over_to_the_next_url_and_reports_every_attempt(git, tmp_path):
    sha = git.create_repo("fork/repo", {"a.txt": "a\n"})
    target = tmp_path / "checkout"
    result = checkout_pinned(target, [git.url("gone/repo.git"), git.url("fork/repo.git")], sha, runner=GitRunner(), name="repo", backoff=0.01)
    assert head_commit(target) == sha and result.url.endswith("fork/repo.git")
    assert result.attempts[0]["ok"] is False and "not found" in result.attempts[0]["error"]

    with pytest.raises(SdsetupError) as info:
        checkout_pinned(tmp_path / "none", [git.url("gone/repo.git")], sha, runner=GitRunner(), name="repo", backoff=0.01)
    assert info.value.exit_code == ExitCode.NETWORK and "gone/repo.git" in info.value.message


def test_head_at_the_pin_touches_no_network(git, tmp_path):
    sha = git.create_repo("owner/repo", {"a.txt": "a\n"})
    target = tmp_path / "checkout"
    checkout_pinned(target, [git.url("owner/repo.git")], sha, runner=GitRunner(), name="repo")
    git.clear()
    result = checkout_pinned(target, ["http://127.0.0.1:9/unreachable.git"], sha, runner=GitRunner(), name="repo")
    assert result.already and git.requests == []


def test_local_changes_are_never_overwritten(git, tmp_path):
    first = git.create_repo("owner/repo", {"a.txt": "a\n"})
    second = _second_commit(git, "owner/repo")
    target = tmp_path / "checkout"
    checkout_pinned(target, [git.url("owner/repo.git")], first, runner=GitRunner(), name="the web UI")
    (target / "a.txt").write_text("my edit\n")
    assert is_dirty(target)
    with pytest.raises(SdsetupError) as info:
        checkout_pinned(target, [git.url("owner/repo.git")], second, runner=GitRunner(), name="the web UI")
    assert "local changes (a.txt)" in info.value.message and "stash" in info.value.hint
    assert (target / "a.txt").read_text() == "my edit\n" and head_commit(target) == first


def test_a_non_git_directory_with_files_is_refused(git, tmp_path):
    sha = git.create_repo("owner/repo", {"a.txt": "a\n"})
    target = tmp_path / "checkout"
    target.mkdir()
    (target / "precious.txt").write_text("mine")
    with pytest.raises(SdsetupError, match="is not empty and is not a git checkout"):
        checkout_pinned(target, [git.url("owner/repo.git")], sha, runner=GitRunner(), name="repo")
    assert (target / "precious.txt").read_text() == "mine" and not (target / ".git").exists()


def test_stale_git_locks_from_a_killed_fetch_are_cleared(git, tmp_path):
    first = git.create_repo("owner/repo", {"a.txt": "a\n"})
    second = _second_commit(git, "owner/repo")
    target = tmp_path / "checkout"
    checkout_pinned(target, [git.url("owner/repo.git")], first, runner=GitRunner(), name="repo")
    (target / ".git" / "shallow.lock").write_text("")  # what a SIGKILL during `git fetch --depth 1` leaves
    checkout_pinned(target, [git.url("owner/repo.git")], second, runner=GitRunner(), name="repo")
    assert head_commit(target) == second and not (target / ".git" / "shallow.lock").exists()


def test_exclude_paths_is_idempotent(git, tmp_path):
    sha = git.create_repo("owner/repo", {"a.txt": "a\n"})
    target = tmp_path / "checkout"
    checkout_pinned(target, [git.url("owner/repo.git")], sha, runner=GitRunner(), name="repo")
    assert exclude_paths(target, ["/.sdsetup/"]) is True
    assert exclude_paths(target, ["/.sdsetup/"]) is False
    (target / ".sdsetup").mkdir()
    (target / ".sdsetup" / "x").write_text("x")
    status = subprocess.run(["git", "-C", str(target), "status", "--porcelain"], capture_output=True, text=True).stdout
    assert ".sdsetup" not in status


@pytest.mark.parametrize(
    "a, b, same",
    [
        ("https://github.com/AUTOMATIC1111/stable-diffusion-webui.git", "https://GitHub.com/AUTOMATIC1111/stable-diffusion-webui", True),
        ("https://user:tok@github.com/o/r.git/", "http://github.com/o/r", True),
        ("https://github.com/o/r.git", "https://github.com/o/other.git", False),
        ("https://gitee.com/o/r.git", "https://github.com/o/r.git", False),
    ],
)
def test_normalize_repo_url(a, b, same):
    from sdsetup.gitops import normalize_repo_url

    assert (normalize_repo_url(a) == normalize_repo_url(b)) is same


WEBUI = "https://github.com/AUTOMATIC1111/stable-diffusion-webui.git"
MARKERS = ("launch.py", "webui.py")


@pytest.mark.parametrize(
    "has_head, origin, found, foreign",
    [
        (False, None, set(), None),  # an empty repository a first run left: fill it
        (True, WEBUI, set(), None),  # our own origin
        (True, "https://gitee.com/mirror/stable-diffusion-webui.git", set(MARKERS), None),  # a clone from a mirror
        (True, None, set(MARKERS), None),
        (True, "https://example.com/me/thesis.git", set(), "origin is https://example.com/me/thesis.git"),
        (True, "https://example.com/me/thesis.git", {"launch.py"}, "origin is"),
        (True, None, set(), "has no origin"),
        (False, "https://example.com/me/thesis.git", set(), "origin is"),
    ],
)
def test_judge_existing_checkout(has_head, origin, found, foreign):
    from sdsetup.gitops import judge_existing_checkout

    verdict = judge_existing_checkout(has_head=has_head, origin=origin, known_urls=[WEBUI], markers=MARKERS, markers_found=found)
    assert (verdict is None) if foreign is None else (foreign in verdict), verdict


def test_the_repositorys_own_fsmonitor_and_hooks_never_run(git, tmp_path):
    """Issue 15: a DIR owned by someone else can set core.fsmonitor and hooks; sdsetup's git runs neither."""
    import stat

    first = git.create_repo("owner/repo", {"a.txt": "a\n"})
    second = _second_commit(git, "owner/repo")
    target = tmp_path / "checkout"
    checkout_pinned(target, [git.url("owner/repo.git")], first, runner=GitRunner(), name="repo")
    ran = tmp_path / "ran"
    script = tmp_path / "evil.sh"
    script.write_text(f"#!/bin/sh\necho \"$0 $*\" >> '{ran}'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for name in ("post-checkout", "reference-transaction", "pre-auto-gc"):
        (hooks / name).write_bytes(script.read_bytes())
        (hooks / name).chmod(0o755)
    subprocess.run(["git", "-C", str(target), "config", "core.fsmonitor", str(script)], check=True)
    subprocess.run(["git", "-C", str(target), "config", "core.hooksPath", str(hooks)], check=True)
    # the same repository, driven by a plain git, does run them (the test can fail)
    probe = tmp_path / "probe"
    subprocess.run(["git", "clone", "-q", str(target), str(probe)], check=True, capture_output=True)
    subprocess.run(["git", "-C", str(probe), "config", "core.hooksPath", str(hooks)], check=True)
    subprocess.run(["git", "-C", str(probe), "checkout", "-q", "--detach", "HEAD"], check=True, capture_output=True)
    assert ran.is_file()
    ran.unlink()

    assert not is_dirty(target)
    checkout_pinned(target, [git.url("owner/repo.git")], second, runner=GitRunner(), name="repo")
    assert head_commit(target) == second
    assert not ran.exists(), ran.read_text()


def test_a_git_steps_network_failure_is_one_readable_line_with_the_way_forward(tmp_path):
    """Issue 13 item 6: whether the host or the proxy failed, each URL once, and the next step."""
    sha = "0" * 40
    urls = ["http://127.0.0.1:9/mirror/owner/repo.git", "http://127.0.0.1:9/owner/repo.git"]
    with pytest.raises(SdsetupError) as info:
        checkout_pinned(tmp_path / "r", urls, sha, runner=GitRunner(), name="repo", retries=0, backoff=0.01)
    error = info.value
    assert error.exit_code == ExitCode.NETWORK
    assert "could not reach 127.0.0.1" in error.message and "\n" not in error.message
    assert error.message.count("127.0.0.1:9") <= 1 and len(error.message) < 400  # the rest is in details and the log
    assert len(error.details["attempts"]) == 2
    assert "sdsetup mirrors probe" in error.hint and "--mirror cn" in error.hint


def test_a_fetch_that_outlives_its_overall_time_is_a_failed_source_not_a_hang(tmp_path, monkeypatch, capsys):
    """Issue 13 item 5: a stalled source is given up on, and the wait is not silent meanwhile."""
    import socket

    import sdsetup.gitops as gitops
    import threading
    import time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    held = []
    stop = threading.Event()

    def accept():  # accepts and never answers: a proxy or host that stalls
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                pass

    threading.Thread(target=accept, daemon=True).start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/owner/repo.git"
    monkeypatch.setattr(gitops, "HEARTBEAT_EVERY", 1.0)  # 15 s in a real run
    started = time.monotonic()
    try:
        with pytest.raises(SdsetupError) as info:
            checkout_pinned(tmp_path / "r", [url], "0" * 40, runner=GitRunner(), name="repo", retries=0, fetch_timeout=3)
    finally:
        stop.set()
        server.close()
        for conn in held:
            conn.close()
    assert time.monotonic() - started < 20
    assert info.value.exit_code == ExitCode.NETWORK and "did not finish within 3s" in info.value.message
    assert "waiting for git fetch of r" in capsys.readouterr().err and "127.0.0.1" in info.value.message


def test_webui_user_edits_survive_a_kill_while_the_checkout_moves(tmp_path):
    """Issue 23 item 6: install sets the user's edited webui-user files aside (reverts them) to move the
    checkout, and puts them back after. Killed in between, the edits were gone from DIR and the rerun
    said "your version is kept". Now the set-aside is recorded first and the next run puts them back."""
    import subprocess
    from types import SimpleNamespace

    from sdsetup.gitops import GitRunner
    from sdsetup.install.steps.webui import _set_aside_launcher_settings, restore_set_aside, set_aside_pending
    from sdsetup.layout import InstallLayout

    repo = tmp_path / "webui"
    repo.mkdir()
    for args in (["init", "-q"], ["config", "user.email", "t@e"], ["config", "user.name", "t"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True)
    (repo / "webui-user.sh").write_text("#!/bin/bash\n#export COMMANDLINE_ARGS=\"\"\n")
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "upstream"], check=True)
    mine = "#!/bin/bash\nexport COMMANDLINE_ARGS=\"--api --listen\"  # my own\n"
    (repo / "webui-user.sh").write_text(mine)
    ctx = SimpleNamespace(install_dir=repo, layout=InstallLayout(repo))
    saved = _set_aside_launcher_settings(ctx, GitRunner())
    assert saved and (repo / "webui-user.sh").read_text() != mine  # set aside: the checkout can move now
    # ... and sdsetup is killed here: no `finally` puts the file back.
    assert set_aside_pending(repo)
    restore_set_aside(ctx)  # what the next run does first
    assert (repo / "webui-user.sh").read_text() == mine
    assert not set_aside_pending(repo)


def test_the_recorded_undo_keeps_the_users_uncommitted_edits(tmp_path):
    """Issue 23 item 15: the undo install prints (`git checkout --force BRANCH`) threw away the user's
    uncommitted webui-user edits, which install itself had carried over. Real git, the printed commands."""
    import subprocess

    from sdsetup.install.steps.webui import undo_commands

    repo = tmp_path / "webui"
    repo.mkdir()

    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q", "-b", "master")
    git("config", "user.email", "t@e")
    git("config", "user.name", "t")
    (repo / "webui-user.sh").write_text("#!/bin/bash\n#export COMMANDLINE_ARGS=\"\"\n")
    (repo / "launch.py").write_text("v1\n")
    git("add", "-A")
    git("commit", "-qm", "master")
    head = git("rev-parse", "HEAD")
    git("checkout", "-q", "--detach")
    (repo / "launch.py").write_text("v2 (the pin)\n")
    git("commit", "-qam", "pin")
    pin = git("rev-parse", "HEAD")
    git("checkout", "-q", "--detach", pin)  # where install left it
    (repo / "webui-user.sh").write_text("#!/bin/bash\nexport COMMANDLINE_ARGS=\"--api\"  # my own\n")
    commands = undo_commands(repo, {"head": head, "branch": "master", "origin": None})
    for command in commands[:-1]:  # the last one removes the origin (none here)
        assert "--force" not in command
        subprocess.run(command.replace('"', "").split(), check=True, capture_output=True)
    assert git("symbolic-ref", "--short", "HEAD") == "master" and git("rev-parse", "HEAD") == head
    kept = (repo / "webui-user.sh").read_text() + git("stash", "show", "-p")
    assert "# my own" in kept, "the uncommitted edit is in the file or in `git stash list`, not gone"
    # Without uncommitted edits the same commands go back too (the stash step saves nothing).
    git("stash", "drop")
    git("checkout", "-q", "--detach", pin)
    for command in commands[:-1]:
        subprocess.run(command.replace('"', "").split(), check=True, capture_output=True)
    assert git("symbolic-ref", "--short", "HEAD") == "master" and git("stash", "list") == ""
