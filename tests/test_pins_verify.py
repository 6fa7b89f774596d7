"""scripts/verify_pins.py against local worlds: a real git server (github.com), a Hub stand-in answering
with X-Linked-Etag / X-Repo-Commit (huggingface.co), a PEP 503 index (pypi.org) and a torch index. Every
kind of pin checks out when right, and a planted wrong pin of each kind is caught."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.hub import clip_l14
from tests.servers.gitserver import _git, serve_git
from tests.servers.hubserver import serve_hub
from tests.servers.pypi_index import model_like_bytes, serve_tree

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "verify_pins.py"
MODEL_COMMIT, TOK_COMMIT = "a" * 40, "b" * 40


def _load_script():
    spec = importlib.util.spec_from_file_location("verify_pins", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["verify_pins"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _page(directory: Path, *filenames: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    links = "".join(f'<a href="../../files/{name.replace("+", "%2B")}#sha256={"0" * 64}">{name}</a>\n' for name in filenames)
    (directory / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("pins-world")
    model = model_like_bytes(300_000, b"verify pins model")
    weights = model_like_bytes(70_000, b"verify pins weights")
    config = clip_l14.hub_bytes("config.json")
    tree = root / "tree"
    _page(tree / "simple" / "setuptools", "setuptools-69.5.1-py3-none-any.whl", "setuptools-69.5.0.tar.gz")
    _page(tree / "simple" / "diffusers", "diffusers-0.30.3-py3-none-any.whl")
    _page(tree / "whl" / "cpu" / "torch", "torch-2.1.2+cpu-cp310-cp310-linux_x86_64.whl", "torch-2.1.1+cpu-cp310-cp310-linux_x86_64.whl")
    _page(tree / "whl" / "cpu" / "torchvision", "torchvision-0.16.2+cpu-cp310-cp310-linux_x86_64.whl")
    (tree / "ms").mkdir()
    (tree / "ms" / "model.bin").write_bytes(model)  # ModelScope's copy: checked by size
    hub_files = {("sdpins/model", MODEL_COMMIT, "model.bin"): (model, True),
                 ("sdpins/tok", TOK_COMMIT, "config.json"): (config, False),
                 ("sdpins/tok", TOK_COMMIT, "weights.bin"): (weights, True)}
    with serve_git(root / "git") as git, serve_hub(hub_files, {"main": MODEL_COMMIT}) as hub, serve_tree(tree) as files:
        old = git.create_repo("sdpins/webui", {"launch.py": "print('v0.9')\n"})
        work, bare = root / "git" / ".work" / "sdpins" / "webui", root / "git" / "sdpins" / "webui.git"
        (work / "launch.py").write_text("print('v1.0')\n")
        _git("commit", "-q", "-am", "v1.0", cwd=work)
        new = _git("rev-parse", "HEAD", cwd=work)
        _git("push", "-q", str(bare), "main", cwd=work)
        _git("tag", "v0.9", old, cwd=bare)
        _git("tag", "-a", "-m", "release", "v1.0", new, cwd=bare)  # annotated: ls-remote shows v1.0^{}
        values = {
            "webui": new, "old": old, "extra": git.create_repo("sdpins/extra", {"x.py": ""}),
            "clipx": git.create_repo("sdpins/CLIPX", {"setup.py": ""}),
            "model_sha": hashlib.sha256(model).hexdigest(), "model_size": len(model), "ms": files.url("/ms/model.bin"),
            "config_sha": hashlib.sha256(config).hexdigest(), "config_size": len(config),
            "weights_sha": hashlib.sha256(weights).hexdigest(), "weights_size": len(weights),
        }
        hosts = ["--github", git.base, "--hub", hub.base_url, "--pypi", files.url("/simple/"), "--torch", files.url("/whl/")]
        yield {"root": root, "values": values, "hosts": hosts}


MANIFEST = """\
schema = 1
name = "pins-world"
[webui]
url = "https://github.com/sdpins/webui.git"
commit = "{webui}"
ref = "v1.0"
[torch.cpu]
packages = ["torch==2.1.2", "torchvision==0.16.2"]
index = "https://download.pytorch.org/whl/{{tag}}"
tags = ["cpu"]
[[pip]]
name = "build-tools"
packages = ["setuptools==69.5.1", "wheel"]
[[pip]]
name = "clipx"
archives = ["https://github.com/sdpins/CLIPX/archive/{clipx}.zip"]
[[repositories]]
name = "extra"
path = "repositories/extra"
url = "https://github.com/sdpins/extra.git"
commit = "{extra}"
[[models]]
name = "m"
path = "models/Stable-diffusion/model.bin"
url = "https://huggingface.co/sdpins/model/resolve/main/model.bin"
sha256 = "{model_sha}"
size = {model_size}
alternates = ["{ms}"]
[[hub]]
repo_id = "sdpins/tok"
revision = "{tok}"
files = [{{ name = "config.json", sha256 = "{config_sha}", size = {config_size} }},
         {{ name = "weights.bin", sha256 = "{weights_sha}", size = {weights_size} }}]
[smoke]
packages = ["diffusers==0.30.3"]
"""


def _verify(world, tmp_path, **changes):
    values = {**world["values"], "tok": TOK_COMMIT, **changes}
    manifest = tmp_path / "m.toml"
    manifest.write_text(MANIFEST.format(**values), "utf-8")
    code = _load_script().main(["--manifest", str(manifest), "--json", "--timeout", "10", *world["hosts"]])
    return code


def _rows(capsys):
    return json.loads(capsys.readouterr().out)


def test_every_kind_of_pin_checks_out_against_the_worlds(world, tmp_path, capsys):
    code = _verify(world, tmp_path)
    rows = _rows(capsys)
    assert code == 0, [r for r in rows if r["status"] != "ok"]
    assert {r["kind"] for r in rows} == {"commit", "archive", "lfs", "file", "size", "version"}
    webui = next(r for r in rows if r["item"] == "webui")
    assert "tag v1.0 = pin" in webui["detail"] and "commit fetched" in webui["detail"]
    config = next(r for r in rows if r["item"].endswith("/config.json"))
    assert config["kind"] == "file"  # a small Hub file: its whole bytes were hashed
    assert next(r for r in rows if r["item"].endswith("/weights.bin"))["kind"] == "lfs"  # X-Linked-Etag, no download
    assert any(r["pin"] == "torch==2.1.2 [cpu]" and "2.1.2+cpu" in r["detail"] for r in rows)


@pytest.mark.parametrize("changes, item, words", [
    ({"extra": "f" * 40}, "repositories/extra", "commit not found"),                       # a commit that does not exist
    ("tag", "webui", "tag v1.0 points at"),                                                  # a tag that names another commit
    ({"clipx": "e" * 40}, "pip/clipx", "commit not found"),                                # an archive URL's commit
    ({"model_sha": "0" * 64}, "model model.bin @ huggingface.co/sdpins/model", "upstream sha256"),  # an LFS sha256
    ({"weights_size": 1}, "hub sdpins/tok/weights.bin", "upstream size"),                  # an LFS size
    ({"config_sha": "1" * 64}, "hub sdpins/tok/config.json", "upstream sha256"),           # a small file's sha256
    ({"tok": "c" * 40}, "hub sdpins/tok/config.json", "HTTP 404"),                          # a Hub revision
    ("setuptools", "pip/build-tools", "no setuptools 69.5.2"),                              # a PyPI version
    ("torch", "torch.cpu", "no torch 2.1.3"),                                                # a torch index version
    ("fallback", "repositories/extra @ sdpins/CLIPX.git", "commit not found"),             # a fork that lacks the commit
])
def test_a_planted_wrong_pin_of_each_kind_is_caught(world, tmp_path, capsys, changes, item, words):
    values = dict(world["values"])
    if changes == "tag":
        changes = {"webui": values["old"]}  # exists upstream, but v1.0 is the newer commit
    elif changes in ("setuptools", "torch", "fallback"):
        text = {"setuptools": MANIFEST.replace("setuptools==69.5.1", "setuptools==69.5.2"),
                "torch": MANIFEST.replace('"torch==2.1.2"', '"torch==2.1.3"'),
                "fallback": MANIFEST.replace('url = "https://github.com/sdpins/extra.git"',
                                             'url = "https://github.com/sdpins/extra.git"\nfallback_urls = ["https://github.com/sdpins/CLIPX.git"]')}[changes]
        manifest = tmp_path / "m.toml"
        manifest.write_text(text.format(**values, tok=TOK_COMMIT), "utf-8")
        code = _load_script().main(["--manifest", str(manifest), "--json", "--timeout", "10", *world["hosts"]])
        rows = _rows(capsys)
        bad = [r for r in rows if r["status"] != "ok"]
        assert code == 1 and len(bad) == 1 and bad[0]["item"] == item and words in bad[0]["detail"], bad
        return
    code = _verify(world, tmp_path, **changes)
    rows = _rows(capsys)
    bad = [r for r in rows if r["status"] != "ok"]
    assert code == 1 and bad and all(r["status"] == "WRONG" for r in bad), bad
    assert any(r["item"] == item and words in r["detail"] for r in bad), bad
    assert len(bad) <= 2  # the planted pin alone (a wrong checkpoint sha256 or size shows at every source of it)


def test_the_table_and_exit_status_for_a_person(world, tmp_path):
    manifest = tmp_path / "m.toml"
    manifest.write_text(MANIFEST.format(**{**world["values"], "extra": "f" * 40}, tok=TOK_COMMIT), "utf-8")
    result = subprocess.run([sys.executable, str(SCRIPT), "--manifest", str(manifest), "--timeout", "10", *world["hosts"]],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["manifest", "kind", "item", "pin", "result"]
    assert any("repositories/extra" in line and "WRONG" in line for line in lines)
    assert lines[-1].endswith("1 wrong or unreachable")


def test_an_unreachable_host_is_reported_not_passed(tmp_path, capsys):
    manifest = tmp_path / "m.toml"
    manifest.write_text(MANIFEST.format(webui="1" * 40, extra="2" * 40, clipx="3" * 40, model_sha="4" * 64, model_size=1,
                                        ms="http://127.0.0.1:9/ms/model.bin", tok=TOK_COMMIT, config_sha="5" * 64, config_size=1,
                                        weights_sha="6" * 64, weights_size=1), "utf-8")
    dead = "http://127.0.0.1:9/"
    code = _load_script().main(["--manifest", str(manifest), "--json", "--timeout", "3",
                                "--github", dead, "--hub", dead, "--pypi", dead + "simple/", "--torch", dead + "whl/"])
    rows = _rows(capsys)
    assert code == 1 and rows and all(r["status"] == "UNREACHABLE" for r in rows), [r for r in rows if r["status"] != "UNREACHABLE"]
