"""Offline bundles, the pure parts: where things go, which target pip is asked about, the generated
index pages and profile, the lock comparison, and how install flags become settings. Tables."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path
from urllib.parse import unquote

import pytest
from typer.testing import CliRunner

from sdsetup import cli
from sdsetup.bundle import layout
from sdsetup.bundle.lockfile import BundleLock, LockedFile, compare, extra_files
from sdsetup.bundle.pages import IndexEntry, index_pages, profile_text
from sdsetup.bundle.resolve import Resolved, build_requirements, source_only_requirement, stub_metadata
from sdsetup.bundle.target import PLATFORM_ALIASES, choose_target
from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.net.mirrors import MirrorPlan, load_catalog, select_mirrors
from sdsetup.settings import Settings

HF = "https://huggingface.co"


@pytest.mark.parametrize("url, rel", [
    (f"{HF}/stable-diffusion-v1-5/stable-diffusion-v1-5/resolve/main/v1-5-pruned-emaonly.safetensors",
     "hf/stable-diffusion-v1-5/stable-diffusion-v1-5/resolve/main/v1-5-pruned-emaonly.safetensors"),
    (f"{HF}/openai/clip-vit-large-patch14/resolve/{'a' * 40}/vocab.json", f"hf/openai/clip-vit-large-patch14/resolve/{'a' * 40}/vocab.json"),
    (f"{HF}/api/models/openai/clip-vit-large-patch14/revision/main", "hf/api/models/openai/clip-vit-large-patch14/revision/main"),
    ("https://github.com/openai/CLIP/archive/d50d76daa670286dd6cacf3bcd80b5e4823fc8e1.zip",
     "git/openai/CLIP/archive/d50d76daa670286dd6cacf3bcd80b5e4823fc8e1.zip"),
    ("https://codeload.github.com/o/r/zip/abc", "git/o/r/archive/abc.zip"),
    ("https://github.com/o/r/releases/download/v1/x.pth", "git/o/r/releases/download/v1/x.pth"),
    ("https://raw.githubusercontent.com/o/r/main/a/b.yaml", "raw/o/r/main/a/b.yaml"),
    ("https://download.pytorch.org/whl/cu121/torch-2.1.2%2Bcu121-cp310-cp310-linux_x86_64.whl",
     "torch/cu121/torch-2.1.2+cu121-cp310-cp310-linux_x86_64.whl"),
    ("https://files.pythonhosted.org/packages/aa/bb/cc/six-1.16.0-py2.py3-none-any.whl", "pypi/packages/aa/bb/cc/six-1.16.0-py2.py3-none-any.whl"),
    # no channel serves these: the bundle cannot hold them
    ("https://civitai.com/api/download/models/4384", None),
    ("https://example.com/model.safetensors", None),
    (f"{HF}/o/r/resolve/main/x.bin?download=true", None),
    (f"{HF}/o/r/resolve/main/../../../etc/passwd", None),
])
def test_a_canonical_url_lands_where_the_single_base_plan_looks(url, rel):
    assert layout.file_rel(url) == rel
    if rel is not None:  # the install, pointed at BASE, asks for exactly that path
        assert unquote(MirrorPlan.single_base("http://lan:8000/b").file_urls(url)[0]) == f"http://lan:8000/b/{rel}"


@pytest.mark.parametrize("url, rel", [
    ("https://github.com/AUTOMATIC1111/stable-diffusion-webui.git", "git/AUTOMATIC1111/stable-diffusion-webui.git"),
    ("https://github.com/w-e-w/stablediffusion", "git/w-e-w/stablediffusion"),
    ("https://gitlab.com/o/r.git", None),
])
def test_a_clone_url_lands_where_git_is_sent(url, rel):
    assert layout.repo_rel(url) == rel
    if rel is not None:
        assert MirrorPlan.single_base("file:///srv/b").git_urls(url)[0] == f"file:///srv/b/{rel}"


@pytest.mark.parametrize("url, filename, channel, tag, rel", [
    ("https://files.pythonhosted.org/packages/aa/bb/h/numpy-1.26.4-cp310-cp310-win_amd64.whl", "numpy-1.26.4-cp310-cp310-win_amd64.whl",
     "pypi", None, "pypi/packages/aa/bb/h/numpy-1.26.4-cp310-cp310-win_amd64.whl"),
    ("https://pypi.tuna.tsinghua.edu.cn/packages/aa/bb/h/six-1.16.0-py2.py3-none-any.whl", "six-1.16.0-py2.py3-none-any.whl",
     "pypi", None, "pypi/packages/aa/bb/h/six-1.16.0-py2.py3-none-any.whl"),
    ("http://127.0.0.1:5/simple/x/x-1.0.tar.gz", "x-1.0.tar.gz", "pypi", None, "pypi/packages/x-1.0.tar.gz"),
    ("https://download.pytorch.org/whl/cu121/torch-2.1.2%2Bcu121-cp310-cp310-win_amd64.whl",
     "torch-2.1.2+cu121-cp310-cp310-win_amd64.whl", "torch", "cu121", "torch/cu121/torch-2.1.2+cu121-cp310-cp310-win_amd64.whl"),
    ("https://evil.example/packages/../../x-1.0-py3-none-any.whl", "x-1.0-py3-none-any.whl", "pypi", None, "pypi/packages/x-1.0-py3-none-any.whl"),
])
def test_where_a_picked_file_is_stored(url, filename, channel, tag, rel):
    assert layout.wheel_rel(url, filename, channel=channel, tag=tag) == rel


@pytest.mark.parametrize("profile, url, channel", [
    ("official", "https://download.pytorch.org/whl/cu121/torch-2.1.2%2Bcu121-cp310-cp310-linux_x86_64.whl", "torch"),
    ("official", "https://download.pytorch.org/whl/filelock-3.13.1-py3-none-any.whl", "torch"),
    ("official", "https://files.pythonhosted.org/packages/a/b/c/filelock-3.13.1-py3-none-any.whl", "pypi"),
    ("cn", "https://mirrors.aliyun.com/pytorch-wheels/cu121/torch-2.1.2+cu121-cp310-cp310-win_amd64.whl", "torch"),
    ("cn", "https://pypi.tuna.tsinghua.edu.cn/packages/a/b/c/numpy-1.26.4-cp310-cp310-win_amd64.whl", "pypi"),
])
def test_torch_step_files_are_told_apart_by_the_index_that_served_them(profile, url, channel):
    catalog = load_catalog(Settings())
    plan = MirrorPlan(profile=profile, channels=dict(catalog.profile(profile).channels))
    assert layout.channel_of_pick(url, layout.torch_prefixes(plan)) == channel


@pytest.mark.parametrize("platforms, python, running, native, pairs", [
    ((), None, "3.10", True, []),
    ((), "3.11", "3.11", True, []),
    ((), "3.11", "3.10", False, [("--python-version", "3.11"), ("--implementation", "cp")]),
    (("windows",), None, "3.10", False, [("--platform", "win_amd64"), ("--python-version", "3.10")]),
    (("linux",), None, "3.10", False, [("--platform", "manylinux_2_28_x86_64"), ("--platform", "manylinux_2_17_x86_64"),
                                       ("--platform", "manylinux2014_x86_64"), ("--platform", "linux_x86_64")]),
    (("macos",), None, "3.10", False, [("--platform", "macosx_14_0_arm64")]),
    (("win_amd64", "windows"), None, "3.10", False, [("--platform", "win_amd64")]),
])
def test_the_target_becomes_pip_download_style_arguments(platforms, python, running, native, pairs):
    target = choose_target(platforms, python, supported=("3.10", "3.11"), recommended="3.10", running=running)
    assert target.native is native
    args = target.pip_args()
    if native:
        assert args == []  # resolved exactly as the install resolves
        return
    assert args[0] == "--only-binary=:all:"  # pip refuses platform options otherwise
    present = list(zip(args, args[1:]))
    for pair in pairs:
        assert pair in present
    assert args.count("win_amd64") <= 1  # an alias and its tag are not repeated


@pytest.mark.parametrize("platforms, python, problem", [
    (("plan9",), None, "not a platform"),
    (("Win AMD64",), None, "not a platform"),
    ((), "3.9", "supports Python 3.10, 3.11"),
    ((), "three", "not a Python version"),
])
def test_a_bad_target_is_a_usage_error_naming_the_flag(platforms, python, problem):
    with pytest.raises(SdsetupError) as caught:
        choose_target(platforms, python, supported=("3.10", "3.11"), recommended="3.10", running="3.11")
    assert caught.value.exit_code == ExitCode.USAGE
    assert problem in caught.value.message


def test_linux_alias_covers_old_and_new_manylinux_and_plain_linux_wheels():
    tags = PLATFORM_ALIASES["linux"]
    assert {"manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "linux_x86_64"} <= set(tags)


def test_index_pages_link_relative_files_with_their_sha256():
    entries = [
        IndexEntry("pypi/simple", "Fixture_A", "pypi/packages/aa/bb/fixture_a-1.0-py3-none-any.whl", "1" * 64, ">=3.8"),
        IndexEntry("pypi/simple", "fixture-a", "pypi/packages/fixture_a-2.0-py3-none-any.whl", "2" * 64),
        IndexEntry("torch/cu121", "torch", "torch/cu121/torch-2.1.2+cu121-cp310-cp310-win_amd64.whl", "3" * 64),
    ]
    pages = index_pages(entries)
    assert set(pages) == {"pypi/simple/index.html", "pypi/simple/fixture-a/index.html", "torch/cu121/index.html",
                          "torch/cu121/torch/index.html"}
    project = pages["pypi/simple/fixture-a/index.html"]
    assert f'href="../../packages/aa/bb/fixture_a-1.0-py3-none-any.whl#sha256={"1" * 64}" data-requires-python="&gt;=3.8"' in project
    assert f'href="../../packages/fixture_a-2.0-py3-none-any.whl#sha256={"2" * 64}"' in project
    assert 'href="fixture-a/"' in pages["pypi/simple/index.html"]
    assert f'href="../torch-2.1.2%2Bcu121-cp310-cp310-win_amd64.whl#sha256={"3" * 64}"' in pages["torch/cu121/torch/index.html"]
    assert index_pages(reversed(entries)) == pages  # same bundle, same bytes


@pytest.mark.parametrize("base", ["http://192.168.1.5:8000/sd/", "file:///srv/bundles/a1111", "https://mirror.lab.example"])
def test_the_profile_file_sends_every_channel_where_mirror_url_does(tmp_path, base):
    from sdsetup.settings import load_settings

    config = tmp_path / "sdsetup-mirror.toml"
    config.write_text(profile_text(base, "test bundle"), "utf-8")
    via_profile = select_mirrors(load_settings({"config": str(config)}, env={}), env={})
    via_url = MirrorPlan.single_base(base)
    assert via_profile.profile == layout.PROFILE
    samples = [f"{HF}/o/r/resolve/main/m.safetensors", "https://github.com/o/r/archive/abc.zip",
               "https://raw.githubusercontent.com/o/r/main/x.txt", "https://files.pythonhosted.org/packages/a/b/x.whl"]
    for url in samples:
        assert via_profile.file_urls(url)[0] == via_url.file_urls(url)[0]
    assert via_profile.git_urls("https://github.com/o/r.git")[0] == via_url.git_urls("https://github.com/o/r.git")[0]
    assert via_profile.pip_index_args() == via_url.pip_index_args()
    assert via_profile.torch_index_args("cu121") == via_url.torch_index_args("cu121")
    assert via_profile.hf_endpoint == via_url.hf_endpoint


def _lock_files():
    return [LockedFile("pypi/packages/a.whl", "a" * 64, 10, "package"), LockedFile("hf/o/r/resolve/main/m.bin", "b" * 64, 20, "model"),
            LockedFile("pypi/simple/index.html", "c" * 64, 30, "index")]


@pytest.mark.parametrize("observed, expected", [
    ({"pypi/packages/a.whl": (10, "a" * 64), "hf/o/r/resolve/main/m.bin": (20, "b" * 64), "pypi/simple/index.html": (30, "c" * 64)}, []),
    ({"pypi/packages/a.whl": (10, "a" * 64), "hf/o/r/resolve/main/m.bin": None, "pypi/simple/index.html": (30, "c" * 64)},
     [("hf/o/r/resolve/main/m.bin", "missing", None, None)]),
    ({"pypi/packages/a.whl": (10, "d" * 64), "hf/o/r/resolve/main/m.bin": (19, "e" * 64), "pypi/simple/index.html": (30, "c" * 64)},
     [("pypi/packages/a.whl", "sha256", 10, "d" * 64), ("hf/o/r/resolve/main/m.bin", "size", 19, "e" * 64)]),
])
def test_compare_names_each_bad_file_with_expected_and_actual(observed, expected):
    findings = compare(_lock_files(), observed)
    assert [(f["path"], f["problem"], f["actual_size"], f["actual_sha256"]) for f in findings] == expected
    for finding in findings:
        locked = next(f for f in _lock_files() if f.path == finding["path"])
        assert (finding["expected_size"], finding["expected_sha256"]) == (locked.size, locked.sha256)


def test_extra_files_are_listed_apart():
    assert extra_files(_lock_files(), ["pypi/packages/a.whl", "pypi/packages/evil.whl", "notes.txt"]) == ["notes.txt", "pypi/packages/evil.whl"]


def test_a_lock_round_trips_and_refuses_paths_that_escape():
    lock = BundleLock(manifest={"name": "a1111"}, target={"label": "linux"}, backend="cuda", torch_tag="cu121",
                      files=tuple(_lock_files()), repos=())
    assert BundleLock.from_json(json.loads(json.dumps(lock.to_json())), "x").to_json() == lock.to_json()
    bad = lock.to_json()
    bad["files"][0]["path"] = "../../etc/passwd"
    with pytest.raises(SdsetupError) as caught:
        BundleLock.from_json(bad, "bundle.lock.json")
    assert caught.value.exit_code == ExitCode.INTEGRITY and "../../etc/passwd" in caught.value.message


@pytest.mark.parametrize("message, requirement", [
    ("resolving requirements failed (exit 1): ERROR: Could not find a version that satisfies the requirement jsonmerge==1.8.0 "
     "(from versions: none) | ERROR: No matching distribution found for jsonmerge==1.8.0", "jsonmerge==1.8.0"),
    ("ERROR: No matching distribution found for srconly (from -r req.txt (line 2))", "srconly"),
    ("ERROR: Cannot install a==1 and b==2 because these package versions have conflicting dependencies.", None),
])
def test_pip_saying_no_wheel_names_the_requirement(message, requirement):
    assert source_only_requirement(message) == requirement


def test_a_stub_carries_what_the_resolver_reads():
    pick = Resolved("Jsonmerge", "1.8.0", "u", None, "jsonmerge-1.8.0.tar.gz", None, True,
                    requires_dist=("jsonschema>2.4.0",), requires_python=">=3.6", provides_extra=("x",))
    text = stub_metadata(pick)
    assert text.splitlines() == ["Metadata-Version: 2.1", "Name: Jsonmerge", "Version: 1.8.0", "Requires-Python: >=3.6",
                                 "Provides-Extra: x", "Requires-Dist: jsonschema>2.4.0"]


def _zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def _tar(path: Path, files: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_build_requirements_of_an_isolated_sdist(tmp_path):
    modern = _tar(tmp_path / "m-1.0.tar.gz", {"m-1.0/pyproject.toml": '[build-system]\nrequires = ["hatchling>=1.18"]\n',
                                               "m-1.0/sub/pyproject.toml": '[build-system]\nrequires = ["nope"]\n'})
    legacy = _zip(tmp_path / "CLIP-abc.zip", {"CLIP-abc/setup.py": "from setuptools import setup\n"})
    assert build_requirements(modern) == ("hatchling>=1.18",)
    assert build_requirements(legacy) == ("setuptools>=40.8.0", "wheel")
    broken = tmp_path / "broken-1.0.tar.gz"
    broken.write_bytes(b"not a tarball")
    with pytest.raises(SdsetupError) as caught:
        build_requirements(broken)
    assert "broken-1.0.tar.gz" in caught.value.message


def test_install_flags_become_the_single_base_mirror(tmp_path):
    from sdsetup.install.inputs import install_settings

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    with pytest.raises(SdsetupError, match="not a finished bundle"):
        install_settings(Settings(), mirror_url=None, offline=bundle)
    (bundle / layout.LOCK_NAME).write_text('{"schema": 1, "files": [], "repos": []}')
    offline = install_settings(Settings(), mirror_url=None, offline=bundle)
    assert offline.mirror == bundle.as_uri() + "/"
    assert select_mirrors(offline, env={}).pip_index_args()[:2] == ["--index-url", bundle.as_uri() + "/pypi/simple/"]
    served = install_settings(Settings(), mirror_url="http://192.168.1.5:8000/sd", offline=None)
    assert served.mirror == "http://192.168.1.5:8000/sd/"
    assert select_mirrors(served, env={}).git_urls("https://github.com/o/r.git")[0] == "http://192.168.1.5:8000/sd/git/o/r.git"
    assert install_settings(Settings(mirror="cn"), mirror_url=None, offline=None).mirror == "cn"
    for kwargs, problem in [({"mirror_url": "http://a/", "offline": bundle}, "both given"),
                            ({"mirror_url": "ftp://a/", "offline": None}, "ftp://a/")]:
        with pytest.raises(SdsetupError, match=problem) as caught:
            install_settings(Settings(), **kwargs)
        assert caught.value.exit_code == ExitCode.USAGE
    with pytest.raises(SdsetupError) as caught:
        install_settings(Settings(mirror="cn"), mirror_url="http://a/", offline=None)
    assert "drop --mirror" in caught.value.hint


def test_the_resume_state_never_keeps_a_mirror_credential():
    pick = Resolved("six", "1.16.0", "https://user:s3cret@art.corp.example:8443/pypi/packages/six-1.16.0-py2.py3-none-any.whl",
                    "a" * 64, "six-1.16.0-py2.py3-none-any.whl", None, True)
    stored = json.dumps(pick.to_json())
    assert "s3cret" not in stored and "user" not in stored
    assert Resolved.from_json(json.loads(stored)).url == "https://art.corp.example:8443/pypi/packages/six-1.16.0-py2.py3-none-any.whl"


def test_a_base_url_with_credentials_is_refused(tmp_path):
    from sdsetup.commands.bundle import create

    with pytest.raises(SdsetupError) as caught:
        create(Settings(), tmp_path / "out", base_url="http://lab:pw@192.168.1.5:8000/")
    assert caught.value.exit_code == ExitCode.USAGE and "pw" not in caught.value.message
    assert not (tmp_path / "out").exists()


def test_a_bundle_folder_inside_a_file_is_a_usage_error(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(cli.app, ["bundle", "create", str(tmp_path / "notes.txt" / "bundle"), "--backend", "cpu",
                                          "--mirror", "http://127.0.0.1:1/", "--json"])
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "usage" and f"{tmp_path / 'notes.txt'} is a file" in error["message"]
    assert (tmp_path / "notes.txt").read_text() == "mine"


# -- the pip jobs come from the install's plan ---------------------------------------------------------

def _plan_steps(backend="cuda", gpus=()):
    from sdsetup.detect.machine import MachineFacts
    from sdsetup.install.plan import InstallOptions, build_plan, decide
    from sdsetup.manifest import load_manifest

    facts = MachineFacts.from_json({"os": {"system": "Linux", "release": "6.1", "version": "#1", "machine": "x86_64", "bits": 64,
                                           "wsl": False}, "gpus": list(gpus), "ram_total_bytes": 16 << 30,
                                    "ram_available_bytes": 12 << 30})
    manifest = load_manifest("a1111")
    plan = build_plan(manifest, facts, MirrorPlan.single_base("http://bundle.invalid"), InstallOptions(backend=backend), Path("x"))
    return manifest, plan, decide(manifest, facts, backend)


def test_the_pip_jobs_are_the_plans_pip_steps_in_order():
    from sdsetup.bundle.create import pip_jobs

    manifest, plan, decisions = _plan_steps()
    jobs = pip_jobs(plan.steps, decisions)
    assert [j.name for j in jobs] == ["pip", "torch", *(s.name for s in manifest.pip), "smoke"]
    assert jobs[0].requirements == (f"pip>={manifest.python.pip_minimum}",) and jobs[0].native
    torch_step = next(s for s in plan.steps if s.id == "torch")
    assert set(torch_step.requirements) <= set(jobs[1].requirements)
    # a CUDA bundle built on a machine without a GPU still carries xformers for the machines that use it
    assert manifest.torch["cuda"].xformers in jobs[1].requirements
    assert jobs[-1].requirements == tuple(manifest.smoke.packages)


def test_a_step_bundle_create_does_not_know_stops_it():
    """A new kind of install step (one that might run pip) is not silently left out of bundles."""
    from sdsetup.bundle.create import pip_jobs

    _manifest, plan, decisions = _plan_steps()

    class NewStep:
        id = "new-pip-thing"

        def describe(self):
            return {"id": self.id, "title": "installs something"}

    with pytest.raises(SdsetupError) as caught:
        pip_jobs([*plan.steps, NewStep()], decisions)
    assert "new-pip-thing" in str(caught.value) and caught.value.exit_code == ExitCode.INTERNAL


@pytest.mark.parametrize("content, code, words", [
    (b"\xff\xfe" + '{"schema": 1}'.encode("utf-16-le"), ExitCode.USAGE, "UTF-16"),
    (bytes(range(256)), ExitCode.USAGE, "not UTF-8 text"),
    (b"[" * 100_000 + b"]" * 100_000, ExitCode.USAGE, "too deeply"),
    (b'{"schema": 1, "files": [], "repos": [], "hub": [1]}', ExitCode.INTEGRITY, "'hub'"),
    (b'{"schema": 1, "files": [], "repos": [], "target": [["a", "b", "c"]]}', ExitCode.INTEGRITY, "'target'"),
])
def test_a_lock_that_cannot_be_read_names_itself(tmp_path, content, code, words):
    """Exit 70 before (UnicodeDecodeError, RecursionError, TypeError), for verify and install --offline alike."""
    from sdsetup.bundle.lockfile import load_lock

    (tmp_path / layout.LOCK_NAME).write_bytes(content)
    with pytest.raises(SdsetupError) as caught:
        load_lock(tmp_path)
    assert caught.value.exit_code == code and str(tmp_path / layout.LOCK_NAME) in caught.value.message
    assert words in caught.value.message and caught.value.hint


@pytest.mark.parametrize("extra", ["", ', "hub": []', ', "hub": null', ', "hub": [{"repo_id": "o/r", "revision": "main", "commit": "a"}]'])
def test_a_lock_with_or_without_hub_files_loads(tmp_path, extra):
    from sdsetup.bundle.lockfile import load_lock

    (tmp_path / layout.LOCK_NAME).write_text('{"schema": 1, "files": [], "repos": []' + extra + "}")
    assert load_lock(tmp_path).files == ()
