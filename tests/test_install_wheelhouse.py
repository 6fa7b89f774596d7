"""The dependency steps' resolution (install/wheelhouse.py, install/uv.py) against real local indexes.

What a user would notice: resolving a torch-sized wheel costs a few requests, not hundreds (each one a
round trip on a long link); an index that does not answer is a network failure naming the host (exit
3), not "could not find a version" (exit 5); pip resumes an interrupted download; the "N to download"
line counts only what is not already in the wheelhouse.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.install import uv as uvmod
from sdsetup.install import wheelhouse
from tests.fixtures.install import fixture as fx
from tests.servers.pypi_index import build_wheel, write_simple_index

# ---------------------------------------------------------------------------------------------- pure


def test_pip_index_options_become_uv_options_and_the_proxy_stays_off_argv():
    args, env = uvmod.uv_options(["--index-url", "https://m.example/simple/", "--extra-index-url", "https://t.example/cpu",
                                  "--trusted-host", "m.example", "--proxy", "http://u:secret@p.example:3128"])
    assert args == ["--index-strategy", "unsafe-best-match", "--index-url", "https://m.example/simple/",
                    "--extra-index-url", "https://t.example/cpu", "--allow-insecure-host", "m.example"]
    assert env["HTTPS_PROXY"] == "http://u:secret@p.example:3128"
    assert not any("secret" in a for a in args)
    with pytest.raises(uvmod.UvUnusable):
        uvmod.uv_options(["--only-binary", ":all:"])


def test_requirements_become_a_requirements_file_for_uv():
    text = uvmod.requirements_text(["torch==2.1.2", "/w/CLIP-abc.zip", "-r", "/w/requirements_versions.txt"])
    assert text == "torch==2.1.2\n/w/CLIP-abc.zip\n-r /w/requirements_versions.txt\n"
    with pytest.raises(uvmod.UvUnusable):
        uvmod.requirements_text(["--pre", "torch"])


def test_uv_dry_run_lines_are_read_and_an_unknown_answer_is_not_guessed():
    rows = uvmod.parse_dry_run("Resolved 5 packages in 2s\nWould download 3 packages\nWould install 3 packages\n"
                               " + clip @ file:///w/CLIP-abc.zip\n + fixture-a==1.0\n + torch==2.1.2+cpu\n - fixture-b==1.0\n")
    assert rows == [("clip", None, "file:///w/CLIP-abc.zip"), ("fixture-a", "1.0", None), ("torch", "2.1.2+cpu", None)]
    assert uvmod.parse_dry_run("Checked 3 packages in 1ms\nWould make no changes\n") == []
    assert uvmod.parse_dry_run("something else entirely\n") is None


def test_the_venvs_most_preferred_wheel_is_taken_from_a_lock_with_several():
    doc = {"lock-version": "1.0", "packages": [{"name": "numpy", "version": "2.1.3", "wheels": [
        {"url": "https://f.example/numpy-2.1.3-cp311-cp311-win_amd64.whl", "hashes": {"sha256": "AA"}},
        {"url": "https://f.example/numpy-2.1.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "hashes": {"sha256": "BB"}},
    ]}]}
    tags = ["cp311-cp311-manylinux_2_17_x86_64", "cp311-abi3-manylinux_2_17_x86_64", "py3-none-any"]
    [pick] = uvmod.parse_pylock(doc, base=Path("/"), tags=tags, requested=["numpy"])
    assert pick.filename.endswith("manylinux2014_x86_64.whl") and pick.sha256 == "bb" and pick.requested
    with pytest.raises(uvmod.UvUnusable):
        uvmod.parse_pylock(doc, base=Path("/"), tags=["cp310-cp310-macosx_11_0_arm64"])


def test_the_download_count_leaves_out_what_is_already_at_hand():
    picks = [wheelhouse.Pick("a", "1", "http://x/a.whl", "0" * 64, "a.whl", None, True, True),
             wheelhouse.Pick("b", "1", "http://x/b.whl", "1" * 64, "b.whl", None, True, True),
             wheelhouse.Pick("c", "1", "file:///w/c.zip", None, "c.zip", "/w/c.zip", False, True)]
    assert wheelhouse.download_summary(picks, [True, False, False]).startswith("3 package(s) picked, 1 to download")


PIP_OFFLINE_OUTPUT = (
    "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection broken by "
    "'NewConnectionError('<pip._vendor.urllib3.connection.HTTPConnection object at 0x7f>: Failed to establish a new "
    "connection: [Errno 111] Connection refused')': /simple/torch/\n"
    "ERROR: Could not find a version that satisfies the requirement torch==2.1.2 (from versions: none)\n"
    "ERROR: No matching distribution found for torch==2.1.2\n"
)


def test_pips_could_not_find_a_version_after_connection_errors_is_a_network_failure():
    error = wheelhouse.network_failure(PIP_OFFLINE_OUTPUT, label="torch", proxy=False,
                                       index_args=["--index-url", "https://u:pw@pypi.example.org/simple/"])
    assert error.exit_code == ExitCode.NETWORK
    assert "pypi.example.org" in error.message and "pw" not in error.message
    assert "--mirror" in error.hint and "--proxy" in error.hint
    missing = "ERROR: Could not find a version that satisfies the requirement nosuch (from versions: none)\n"
    assert wheelhouse.network_failure(missing, label="x", proxy=False, index_args=["--index-url", "https://p.example/simple/"]) is None


# ------------------------------------------------------------------------------------ real indexes


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))} | {"PIP_CONFIG_FILE": os.devnull}


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A venv with a real pip >= 25.1 (from build/test-wheels) and nothing else."""
    wheels = fx.real_wheels()
    if not wheels:
        pytest.skip("needs real pip wheels in build/test-wheels: run scripts/test.sh once")
    path = tmp_path_factory.mktemp("wheelhouse-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    # pip runs from its own wheel to install itself (no ensurepip: seconds saved).
    subprocess.run([str(python), str(wheels["pip"]) + "/pip", "install", "-q", "--no-index", str(wheels["pip"])],
                   check=True, env=_clean_env())
    return python


def torch_shaped_wheel(dest: Path, files: int = 6000) -> Path:
    """Like a real torch wheel where it matters to a resolver: thousands of entries, and about a hundred
    files in its .dist-info (torch 2.13 ships 103, mostly third-party licences), each of which pip's
    fast-deps reads with separate small range requests (313 for the real wheel)."""
    path = dest / "torch-2.1.2+cpu-py3-none-any.whl"
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("torch/__init__.py", "BUILD = 'cpu'\n")
        for i in range(files):
            archive.writestr(f"torch/_gen/m{i:05d}.py", f"VALUE = {i}\n")
        archive.writestr("torch-2.1.2+cpu.dist-info/METADATA", "Metadata-Version: 2.1\nName: torch\nVersion: 2.1.2+cpu\nRequires-Dist: filelock\n")
        archive.writestr("torch-2.1.2+cpu.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        for i in range(100):
            archive.writestr(f"torch-2.1.2+cpu.dist-info/licenses/third_party/lib{i:03d}/LICENSE", f"licence {i}\n" * 60)
        archive.writestr("torch-2.1.2+cpu.dist-info/RECORD", "")
    return path


def _ctx(tmp_path: Path, python: Path, index_url: str):
    from sdsetup.install.context import Reporter
    from sdsetup.settings import Settings

    mirrors = SimpleNamespace(pip_env=lambda: {}, pip_index_args=lambda: ["--index-url", index_url])
    settings = Settings(cache_dir=tmp_path / "cache", quiet=True)
    return SimpleNamespace(python=python, state_dir=tmp_path / ".sdsetup", wheelhouse=tmp_path / ".sdsetup" / "wheelhouse",
                           settings=settings, mirrors=mirrors, reporter=Reporter(True))


@pytest.fixture()
def torch_index(tmp_path):
    from tests.servers.fileserver import FileServer

    built = tmp_path / "built"
    wheels = [torch_shaped_wheel(built), build_wheel(built, "filelock", "3.0")]
    write_simple_index(tmp_path / "srv" / "simple", wheels, tmp_path / "srv" / "files")
    with FileServer(tmp_path / "srv") as server:
        yield server


def _wheel_requests(server) -> list:
    return [r for r in server.requests() if r.path.endswith(".whl")]


@pytest.mark.skipif(uvmod.find_uv() is None, reason="uv is not installed with sdsetup here")
def test_resolving_a_torch_sized_wheel_costs_a_few_requests_not_hundreds(venv, torch_index, tmp_path, monkeypatch):
    monkeypatch.setenv("SDSETUP_UV", uvmod.find_uv())
    ctx = _ctx(tmp_path, venv, torch_index.url("/simple/"))
    picks = wheelhouse.resolve(ctx, ["torch==2.1.2"], index_args=["--index-url", torch_index.url("/simple/")], label="torch")
    assert sorted((p.name, p.version) for p in picks) == [("filelock", "3.0"), ("torch", "2.1.2+cpu")]
    assert all(p.sha256 and p.url.startswith(torch_index.url("/files/")) for p in picks)
    # pip's fast-deps read this wheel's metadata with a few hundred range requests.
    assert len(torch_index.requests()) <= 20, [r.range for r in _wheel_requests(torch_index)]


@pytest.mark.parametrize("tool", ["pip", "uv"])
def test_an_index_that_does_not_answer_is_a_network_failure_naming_the_host(venv, tmp_path, monkeypatch, tool):
    import socket

    if tool == "uv" and uvmod.find_uv() is None:
        pytest.skip("uv is not installed with sdsetup here")
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    index = f"http://127.0.0.1:{port}/simple/"
    monkeypatch.setenv("SDSETUP_UV", uvmod.find_uv() if tool == "uv" else "off")
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    ctx = _ctx(tmp_path, venv, index)
    with pytest.raises(SdsetupError) as caught:
        wheelhouse.resolve(ctx, ["torch==2.1.2"], index_args=["--index-url", index], label="torch")
    assert caught.value.exit_code == ExitCode.NETWORK, caught.value.message
    assert "127.0.0.1" in caught.value.message and "--mirror" in caught.value.hint


def test_the_wheelhouse_count_is_what_really_has_to_be_downloaded(venv, torch_index, tmp_path, monkeypatch):
    monkeypatch.setenv("SDSETUP_UV", "off")
    ctx = _ctx(tmp_path, venv, torch_index.url("/simple/"))
    picks = wheelhouse.resolve(ctx, ["torch==2.1.2"], index_args=["--index-url", torch_index.url("/simple/")], label="torch")
    ctx.wheelhouse.mkdir(parents=True)
    torch = next(p for p in picks if p.name == "torch")
    shutil.copyfile(tmp_path / "srv" / "files" / torch.filename, ctx.wheelhouse / torch.filename)
    (ctx.wheelhouse / "filelock-3.0-py3-none-any.whl").write_bytes(b"a torn earlier download")
    have = [wheelhouse.already_in_wheelhouse(ctx, p) for p in picks]
    assert wheelhouse.download_summary(picks, have).startswith("2 package(s) picked, 1 to download")


@pytest.fixture(scope="module")
def pip_25_1_venv(tmp_path_factory):
    """A venv with pip 25.1.x, the one release that has --resume-retries but leaves it off."""
    cache = fx.WHEEL_CACHE
    found = sorted(cache.glob("pip-25.1*.whl")) if cache.is_dir() else []
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(cache), "pip==25.1.1"],
                       capture_output=True, timeout=300)
        found = sorted(cache.glob("pip-25.1*.whl"))
    if not found:
        pytest.skip("needs a pip 25.1 wheel in build/test-wheels (pip download pip==25.1.1)")
    path = tmp_path_factory.mktemp("pip251") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    subprocess.run([str(python), str(found[-1]) + "/pip", "install", "-q", "--no-index", str(found[-1])], check=True, env=_clean_env())
    return python


def test_pip_resumes_a_wheel_download_cut_off_midway(pip_25_1_venv, tmp_path, monkeypatch):
    from tests.servers.fileserver import Fault, FileServer

    monkeypatch.setenv("SDSETUP_UV", "off")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    built = tmp_path / "built"
    big = build_wheel(built, "bigdep", "1.0", body="DATA = %r\n" % os.urandom(3 * 1024 * 1024).hex())
    write_simple_index(tmp_path / "srv" / "simple", [big], tmp_path / "srv" / "files")
    path = f"/files/{big.name}"
    size = big.stat().st_size
    with FileServer(tmp_path / "srv") as server:
        # fast-deps meets a server that ignores a range (pip 25.1 then reads the tail once more and falls
        # back to the whole file), and the whole file stalls at 60 % (pip 25.1 resumes after a read timeout).
        server.script(path, Fault.ignore_range(), None, Fault.stall(after=int(size * 0.6), seconds=8))
        ctx = _ctx(tmp_path, pip_25_1_venv, server.url("/simple/"))
        picks = wheelhouse.resolve(ctx, ["bigdep"], index_args=["--index-url", server.url("/simple/")], label="deps")
        assert [p.name for p in picks] == ["bigdep"]
        gets = [r for r in server.requests(path) if r.method == "GET"]
    # pip asked for the rest (an open range from where it broke off) instead of starting again.
    assert any(r.range and r.range.endswith("-") and not r.range.startswith("bytes=0-") for r in gets), [(r.range, r.status, r.sent) for r in gets]


@pytest.mark.skipif(uvmod.find_uv() is None, reason="uv is not installed with sdsetup here")
def test_uv_puts_a_current_pip_into_a_venv_made_without_one(tmp_path):
    from sdsetup.install.pip_run import probe_venv
    from tests.servers.fileserver import FileServer

    wheels = fx.real_wheels()
    if not wheels:
        pytest.skip("needs real pip wheels in build/test-wheels: run scripts/test.sh once")
    write_simple_index(tmp_path / "srv" / "simple", [wheels["pip"]], tmp_path / "srv" / "files")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    with FileServer(tmp_path / "srv") as server:
        ctx = _ctx(tmp_path, venv / "bin" / "python", server.url("/simple/"))
        uvmod.install_pip(ctx, uvmod.find_uv(), "pip>=25.1", index_args=["--index-url", server.url("/simple/")],
                          env=dict(os.environ), secrets=())
    pip = (probe_venv(venv / "bin" / "python") or {}).get("packages", {}).get("pip")
    assert pip and int(pip.split(".")[0]) >= 25
    assert not (ctx.state_dir / "uv-cache").exists()
