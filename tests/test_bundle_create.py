"""`sdsetup bundle create` and `bundle verify` against real local servers (git smart HTTP, a static
file server) and real pip: what lands in the bundle for another platform, resuming, no network on a
rerun, and tampering found precisely."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.bundle import world as fixture
from tests.servers.fileserver import FileServer
from tests.servers.gitserver import serve_git

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def clean_env(home: Path, config: Path) -> dict[str, str]:
    """The environment conftest gives a test, for sdsetup run as a separate process."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "SDSETUP_", "HF_", "HUGGINGFACE_", "GIT_", "UV_")) and k.upper() not in
           ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")}
    home.mkdir(parents=True, exist_ok=True)
    (home / ".gitconfig").write_text("[user]\n\tname = t\n\temail = t@example.invalid\n[init]\n\tdefaultBranch = main\n")
    facts = home / "machine.json"
    facts.write_text(json.dumps({"os": {"system": "Linux", "release": "6.1", "version": "#1", "machine": "x86_64", "bits": 64,
                                        "wsl": False}, "gpus": [], "ram_total_bytes": 8 << 30, "ram_available_bytes": 6 << 30}))
    env.update(HOME=str(home), SDSETUP_CONFIG=str(config), SDSETUP_CACHE_DIR=str(home / "cache"), PIP_CONFIG_FILE=os.devnull,
               PIP_DISABLE_PIP_VERSION_CHECK="1", GIT_CONFIG_GLOBAL=str(home / ".gitconfig"), GIT_CONFIG_NOSYSTEM="1",
               GIT_TERMINAL_PROMPT="0", SDSETUP_MACHINE_FACTS=str(facts), PYTHONPATH=str(ROOT))
    return env


def sdsetup(env, *args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sdsetup", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def envelope(result) -> dict:
    assert result.stdout.strip(), result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundle-world")
    with serve_git(root / "git") as git:
        world = fixture.build_world(root, git)
        with FileServer(world.files) as files:
            files.rule("/hf/*", headers={"X-Repo-Commit": fixture.TOKENIZER_COMMIT})
            home = root / "home"
            config = fixture.write_config(root / "config.toml", files.url("/"), git.prefix_base)
            yield {"world": world, "git": git, "files": files, "root": root, "env": clean_env(home, config)}


@pytest.fixture(scope="module")
def windows_bundle(servers):
    out = servers["root"] / "win-bundle"
    result = sdsetup(servers["env"], "bundle", "create", str(out), "--manifest", str(servers["world"].manifest), "--backend", "cpu",
                     "--platform", "windows", "--python-version", "3.10", "--mirror", "world", "--json", "--quiet")
    assert result.returncode == 0, result.stderr[-4000:]
    return out, envelope(result)


def tree(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and ".sdsetup-bundle" not in p.parts}


def test_a_windows_bundle_holds_what_pip_picks_for_windows(windows_bundle, servers):
    out, doc = windows_bundle
    files = tree(out)
    # the platform wheels for Windows and Python 3.10, never this machine's
    assert "pypi/packages/beta-1.0-cp310-cp310-win_amd64.whl" in files
    assert not any("manylinux" in f or "linux_x86_64" in f for f in files)
    assert "torch/cpu/torch-2.1.2+cpu-cp310-cp310-win_amd64.whl" in files
    assert "torch/cpu/torchvision-0.16.2+cpu-py3-none-any.whl" in files
    assert "pypi/packages/torch-2.1.2-py3-none-any.whl" not in files  # the torch index's build won, as in the install
    # the sdist-only requirement, its dependency, and what an isolated build of the archive needs
    assert {"pypi/packages/srconly-1.0.tar.gz", "pypi/packages/gamma-1.0-py3-none-any.whl",
            "pypi/packages/buildhelper-1.0-py3-none-any.whl", "pypi/packages/alpha-1.0-py3-none-any.whl"} <= files
    page = (out / "pypi/simple/srconly/index.html").read_text()
    assert "../../packages/srconly-1.0.tar.gz#sha256=" in page
    assert (out / "torch/cpu/torch/index.html").is_file() and (out / "pypi/simple/beta/index.html").is_file()
    # the archive, the repositories (dumb HTTP), the model and the Hub files in the resolve layout
    assert f"git/sdbundle/CLIPX/archive/{fixture.CLIPX_REF}.zip" in files
    for repo in ("git/sdbundle/webui.git", "git/sdbundle/extra.git"):
        assert {f"{repo}/info/refs", f"{repo}/objects/info/packs", f"{repo}/HEAD"} <= files
    assert "hf/sdbundle/model/resolve/main/model.bin" in files
    assert {f"hf/sdbundle/tokenizer/resolve/{fixture.TOKENIZER_COMMIT}/{n}" for n in fixture.TOKENIZER_FILES} <= files
    revision = json.loads((out / "hf/api/models/sdbundle/tokenizer/revision/main").read_text())
    assert revision["sha"] == fixture.TOKENIZER_COMMIT
    # the lock names every file with its hash; the outcome says what the bundle is for
    lock = json.loads((out / "bundle.lock.json").read_text())
    assert {f["path"] for f in lock["files"]} == files - {"bundle.lock.json"}
    model = next(f for f in lock["files"] if f["path"] == "hf/sdbundle/model/resolve/main/model.bin")
    assert (model["sha256"], model["kind"]) == (servers["world"].model_sha256, "model")
    assert {(r["path"], r["commit"]) for r in lock["repos"]} == {("git/sdbundle/webui.git", servers["world"].webui_commit),
                                                                  ("git/sdbundle/extra.git", servers["world"].extra_commit)}
    data = doc["data"]
    assert data["target"]["platforms"] == ["win_amd64"] and data["target"]["python_version"] == "3.10"
    assert data["files"] == len(lock["files"]) and data["bytes"] == sum(f["size"] for f in lock["files"])
    assert not (out / ".sdsetup-bundle" / "venv").exists()  # the scratch venv is gone once the bundle is done


def test_a_bare_repository_in_the_bundle_clones_at_its_pin(windows_bundle, servers, tmp_path):
    out, _doc = windows_bundle
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", (out / "git/sdbundle/webui.git").as_uri(), str(clone)], check=True, env=servers["env"])
    head = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], capture_output=True, text=True, env=servers["env"]).stdout.strip()
    assert head == servers["world"].webui_commit


def test_verify_passes_a_whole_bundle(windows_bundle, servers):
    out, _doc = windows_bundle
    result = sdsetup(servers["env"], "bundle", "verify", str(out), "--json")
    assert result.returncode == 0, result.stderr
    data = envelope(result)["data"]
    assert data["ok"] and data["problems"] == [] and data["repos_checked"] == 2


def test_verify_names_a_corrupted_and_a_missing_file(windows_bundle, servers, tmp_path):
    out, _doc = windows_bundle
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    wheel = copy / "pypi/packages/beta-1.0-cp310-cp310-win_amd64.whl"
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    wheel.write_bytes(bytes(data))
    (copy / "hf/sdbundle/model/resolve/main/model.bin").unlink()
    lock = {f["path"]: f for f in json.loads((copy / "bundle.lock.json").read_text())["files"]}

    result = sdsetup(servers["env"], "bundle", "verify", str(copy), "--json")
    assert result.returncode == 4
    problems = {p["path"]: p for p in envelope(result)["data"]["problems"]}
    assert set(problems) == {"pypi/packages/beta-1.0-cp310-cp310-win_amd64.whl", "hf/sdbundle/model/resolve/main/model.bin"}
    corrupted = problems["pypi/packages/beta-1.0-cp310-cp310-win_amd64.whl"]
    assert corrupted["problem"] == "sha256"
    assert corrupted["expected_sha256"] == lock[corrupted["path"]]["sha256"]
    assert corrupted["actual_sha256"] == __import__("hashlib").sha256(bytes(data)).hexdigest()
    assert corrupted["actual_size"] == corrupted["expected_size"] == len(data)
    missing = problems["hf/sdbundle/model/resolve/main/model.bin"]
    assert (missing["problem"], missing["actual_size"], missing["expected_size"]) == ("missing", None, fixture.MODEL_BYTES)

    people = sdsetup(servers["env"], "bundle", "verify", str(copy))
    assert people.returncode == 4
    assert "beta-1.0-cp310-cp310-win_amd64.whl" in people.stdout and "sha256 differs" in people.stdout
    assert "model.bin" in people.stdout and "missing" in people.stdout
    assert "2 problem(s)" in people.stdout


def test_verify_does_not_follow_a_linked_folder_out_of_the_bundle(windows_bundle, servers, tmp_path):
    """A top-level folder replaced by a link to a copy elsewhere: the files there match the lock, but they
    are not in the bundle (a copy of the folder, or a served one, would lack them)."""
    out, _doc = windows_bundle
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    elsewhere = tmp_path / "elsewhere"
    (copy / "pypi").rename(elsewhere)
    (copy / "pypi").symlink_to(elsewhere, target_is_directory=True)

    result = sdsetup(servers["env"], "bundle", "verify", str(copy), "--json")
    assert result.returncode == 4, result.stdout
    problems = envelope(result)["data"]["problems"]
    assert problems and {p["problem"] for p in problems} == {"link"}
    assert all(p["path"].startswith("pypi/") for p in problems)
    people = sdsetup(servers["env"], "bundle", "verify", str(copy))
    assert people.returncode == 4 and "symbolic link" in people.stdout and "OK" not in people.stdout.splitlines()[-1]


def test_verify_refuses_a_folder_that_is_not_a_bundle(servers, tmp_path):
    result = sdsetup(servers["env"], "bundle", "verify", str(tmp_path))
    assert result.returncode == 2
    assert "bundle.lock.json" in result.stderr and "Traceback" not in result.stderr


def test_a_rerun_of_a_finished_bundle_needs_no_network(windows_bundle, servers, tmp_path):
    out, first = windows_bundle
    dead = tmp_path / "dead.toml"
    fixture.write_config(dead, "http://127.0.0.1:9/", "http://127.0.0.1:9/")  # nothing listens on port 9
    env = dict(servers["env"], SDSETUP_CONFIG=str(dead))
    result = sdsetup(env, "bundle", "create", str(out), "--manifest", str(servers["world"].manifest), "--backend", "cpu",
                     "--platform", "windows", "--python-version", "3.10", "--mirror", "world", "--json", "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    data = envelope(result)["data"]
    assert data["downloaded_bytes"] == 0
    assert data["files"] == first["data"]["files"]


def test_a_rerun_fetches_only_what_is_missing(windows_bundle, servers):
    out, _doc = windows_bundle
    files = servers["files"]
    victim = "pypi/packages/alpha-1.0-py3-none-any.whl"
    (out / victim).unlink()
    files.reset_log()
    result = sdsetup(servers["env"], "bundle", "create", str(out), "--manifest", str(servers["world"].manifest), "--backend", "cpu",
                     "--platform", "windows", "--python-version", "3.10", "--mirror", "world", "--json", "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / victim).is_file()
    paths = {r.path for r in files.requests()}
    assert paths == {"/" + victim}  # pip asked nothing, nothing else was fetched
    assert sdsetup(servers["env"], "bundle", "verify", str(out)).returncode == 0


def test_create_refuses_a_folder_that_holds_something_else(servers, tmp_path):
    mine = tmp_path / "my-files"
    mine.mkdir()
    (mine / "thesis.docx").write_text("precious")
    result = sdsetup(servers["env"], "bundle", "create", str(mine), "--manifest", str(servers["world"].manifest), "--backend", "cpu",
                     "--mirror", "world")
    assert result.returncode == 2
    assert "not empty" in result.stderr
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.docx"]


def test_create_refuses_to_mix_two_targets_in_one_folder(windows_bundle, servers):
    out, _doc = windows_bundle
    result = sdsetup(servers["env"], "bundle", "create", str(out), "--manifest", str(servers["world"].manifest), "--backend", "cpu",
                     "--platform", "linux", "--mirror", "world")
    assert result.returncode == 2
    assert "holds a bundle for" in result.stderr and "windows" in result.stderr


def test_an_interrupted_bundle_resumes_its_download(servers, tmp_path):
    """Killed in the middle of the model (this machine's platform and Python): the rerun continues
    from the partial file, and the bundle is complete."""
    files = servers["files"]
    model = "/hf/sdbundle/model/resolve/main/model.bin"
    files.rule(model, rate=400_000)
    out = tmp_path / "native"
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    args = ["bundle", "create", str(out), "--manifest", str(servers["world"].manifest), "--backend", "cpu", "--python-version", python,
            "--mirror", "world", "--quiet", "--connections", "1"]
    try:
        files.reset_log()
        proc = subprocess.Popen([sys.executable, "-m", "sdsetup", *args], env=servers["env"], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 240
        while files.bytes_sent(model) < 1_200_000:  # three seconds in: the engine has recorded its progress
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the model download never started"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        files.rule(model, rate=None)
    assert not (out / "bundle.lock.json").exists()
    files.reset_log()
    result = sdsetup(servers["env"], *args, "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    again = files.bytes_sent(model)
    assert 0 < again <= fixture.MODEL_BYTES - 400_000  # continued from the partial file, not started over
    assert not any(r.path.startswith("/pypi/simple") for r in files.requests())  # pip's answers were kept
    data = envelope(result)["data"]
    assert data["target"]["native"] is True
    built = tree(out)
    # this machine's wheels now: Python 3.x on Linux
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    assert any(f.startswith("pypi/packages/beta-1.0-") and tag in f for f in built) or sys.platform != "linux"
    assert sdsetup(servers["env"], "bundle", "verify", str(out)).returncode == 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on 127.0.0.1:{port}"
            time.sleep(0.05)


def test_the_install_learns_a_branch_revision_from_a_static_bundle(windows_bundle, servers):
    """A static server sends no X-Repo-Commit header: the install reads the bundle's Hub API answer,
    over HTTP and from the folder itself."""
    from sdsetup.install.steps.hub import resolve_commit
    from sdsetup.manifest import load_manifest
    from sdsetup.net.mirrors import MirrorPlan
    from sdsetup.net.session import build_session
    from sdsetup.settings import Settings

    out, _doc = windows_bundle
    spec = load_manifest(str(servers["world"].manifest)).hub[0]
    assert spec.revision == "main"

    settings = Settings(timeout=5)  # a plain function of session, settings and mirrors: no install context
    session = build_session(settings)

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(out)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port)
        served = MirrorPlan.single_base(f"http://127.0.0.1:{port}/")
        assert resolve_commit(session, settings, served, spec) == fixture.TOKENIZER_COMMIT
    finally:
        server.terminate()
        server.wait(timeout=10)
    local = MirrorPlan.single_base(out.as_uri())
    assert resolve_commit(session, settings, local, spec) == fixture.TOKENIZER_COMMIT



def test_bundle_create_fakes_no_install_context():
    """Issue 12 item 6: bundle/ resolves hub commits through a plain function, not a faked install context."""
    import sdsetup.bundle.create as create

    assert not hasattr(create, "_Shim")
