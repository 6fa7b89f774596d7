"""`sdsetup models add/list` end to end on 127.0.0.1: a Hugging Face-shaped server (and a mirror that
serves wrong bytes), a Civitai-shaped API whose downloads redirect to a storage host, a ModelScope-shaped
file listing; two installs side by side (A1111 and ComfyUI) that must both get the file, once on disk.

What a user notices: the model is in the right folder of every UI and verified; a file whose bytes do not
match leaves nothing behind (exit 4); a download killed half way continues; the Civitai token never
reaches the storage host; a URL nothing vouches for needs --sha256."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sdsetup.models.listing import hash_state
from sdsetup.models.source import parse_source
from sdsetup.models.token import is_civitai_host

COMMIT = "0123456789abcdef0123456789abcdef01234567"
TOKEN = "civitai-secret-token-7f3a"


def _bytes(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _record(launcher: str) -> dict:
    return {"manifest": "fixture", "webui": {"name": "webui", "path": ".", "url": "https://github.com/x/y.git", "commit": "a" * 40},
            "python": "venv/bin/python", "backend": "cpu", "finished": True, "launcher": launcher}


def _installs(tmp_path: Path) -> tuple[Path, Path]:
    webui, comfy = tmp_path / "webui", tmp_path / "ComfyUI"
    for root, launcher in ((webui, "a1111"), (comfy, "comfyui")):
        (root / ".sdsetup").mkdir(parents=True)
        (root / ".sdsetup" / "install.json").write_text(json.dumps(_record(launcher)), "utf-8")
    return webui, comfy


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from tests.servers.civitai import serve_civitai
    from tests.servers.fileserver import Fault, FileServer

    root = tmp_path_factory.mktemp("models-world")
    model = _bytes(1, 3 * 1024 * 1024 + 17)
    lora = _bytes(2, 700_000)
    ms_model = _bytes(3, 300_000)
    good, bad, cdn = root / "good", root / "bad", root / "cdn"
    for rev in ("main", COMMIT):
        for tree in (good, bad):
            path = tree / "hf/sdfix/sd15/resolve" / rev / "unet/model.safetensors"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(model)
    (cdn / "files").mkdir(parents=True)
    (cdn / "files/detail.safetensors").write_bytes(lora)
    ms = good / "ms"
    (ms / "models/msowner/msrepo/resolve/master").mkdir(parents=True)
    (ms / "models/msowner/msrepo/resolve/master/ms.safetensors").write_bytes(ms_model)
    (ms / "api/v1/models/msowner/msrepo/repo").mkdir(parents=True)
    (ms / "api/v1/models/msowner/msrepo/repo/files").write_text(json.dumps({"Code": 200, "Data": {"Files": [
        {"Path": "README.md", "Size": 10, "Sha256": "0" * 64, "Type": "blob"},
        {"Path": "ms.safetensors", "Size": len(ms_model), "Sha256": hashlib.sha256(ms_model).hexdigest(), "Type": "blob"}]}}))
    hub_headers = {"X-Linked-Etag": f'"{hashlib.sha256(model).hexdigest()}"', "X-Linked-Size": str(len(model)), "X-Repo-Commit": COMMIT}
    with FileServer(good) as good_fs, FileServer(bad) as bad_fs, FileServer(cdn) as cdn_fs, serve_civitai() as api:
        for fs in (good_fs, bad_fs):
            fs.rule("/hf/sdfix/sd15/resolve/*", headers=hub_headers)
        bad_fs.always(f"/hf/sdfix/sd15/resolve/{COMMIT}/unet/model.safetensors", Fault.corrupt(fraction=0.5))
        api.add_version(123, model_id=7, model_type="LORA", name="detail.safetensors", sha256=hashlib.sha256(lora).hexdigest(),
                        size=len(lora), download_to=cdn_fs.url("/files/detail.safetensors"))
        api.add_version(124, model_id=8, model_type="Checkpoint", name="detail.safetensors", sha256=hashlib.sha256(b"other").hexdigest(),
                        size=len(lora), download_to=cdn_fs.url("/files/detail.safetensors"))
        config = root / "config.toml"
        config.write_text(
            "[profiles.models]\n"
            f'huggingface = [{{ name = "wrong-bytes", url = "{bad_fs.url("/hf")}" }}, {{ name = "local-hf", url = "{good_fs.url("/hf")}" }}]\n'
            "[profiles.plain]\n"
            f'huggingface = [{{ name = "local-hf", url = "{good_fs.url("/hf")}" }}]\n'
            "[[rewrite]]\n"
            'prefix = "https://civitai.com/"\n'
            f'replace = "{api.url("/")}"\n'
            "[[rewrite]]\n"
            'prefix = "https://modelscope.cn/"\n'
            f'replace = "{good_fs.url("/ms/")}"\n', "utf-8")
        yield {"good": good_fs, "bad": bad_fs, "cdn": cdn_fs, "api": api, "config": config, "model": model, "lora": lora,
               "ms_model": ms_model}


def _env(world, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"SDSETUP_CONFIG": str(world["config"]), "SDSETUP_TIMEOUT": "5", "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def _argv(*args: str, mirror: str = "models") -> list[str]:
    return [sys.executable, "-m", "sdsetup", "models", *args, "--mirror", mirror, "--json"] if args[0] == "add" else \
        [sys.executable, "-m", "sdsetup", "models", *args, "--json"]


def _run(world, *args: str, mirror: str = "models", **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(_argv(*args, mirror=mirror), env=_env(world, **env), capture_output=True, text=True, timeout=120)


def test_a_hub_file_lands_verified_in_every_ui_once_despite_a_mirror_with_wrong_bytes(world, tmp_path):
    webui, comfy = _installs(tmp_path)
    result = _run(world, "add", "hf:sdfix/sd15/unet/model.safetensors", "--dir", str(webui))
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads(result.stdout)["data"]
    assert doc["type"] == "checkpoint" and doc["revision"] == COMMIT  # pinned to the commit the Hub resolved main to
    a1111 = webui / "models/Stable-diffusion/model.safetensors"
    comfy_file = comfy / "models/checkpoints/model.safetensors"
    assert a1111.read_bytes() == world["model"]
    assert comfy_file.samefile(a1111)  # one copy on disk
    assert {i["how"] for i in doc["installs"]} == {"downloaded", "linked"}
    assert not list(webui.rglob("*.part*"))
    assert world["bad"].requests(f"/hf/sdfix/sd15/resolve/{COMMIT}/unet/model.safetensors", "GET")  # the wrong bytes were offered
    listed = json.loads(_run(world, "list", str(comfy)).stdout)["data"]["models"]
    assert [(m["type"], m["path"], m["state"]) for m in listed] == [("checkpoint", "models/checkpoints/model.safetensors", "verified")]

    again = _run(world, "add", "hf:sdfix/sd15/unet/model.safetensors", "--dir", str(comfy))
    assert again.returncode == 0, again.stderr[-2000:]
    assert {i["how"] for i in json.loads(again.stdout)["data"]["installs"]} == {"present"}


def test_a_civitai_version_goes_where_its_type_says_and_the_token_only_to_civitai(world, tmp_path):
    webui, comfy = _installs(tmp_path)
    world["api"].clear()
    world["cdn"].reset_log()
    world["api"].require_token(TOKEN)
    try:
        denied = _run(world, "add", "civitai:123", "--dir", str(webui))
        assert denied.returncode == 3 and "CIVITAI_API_TOKEN" in json.loads(denied.stdout)["error"]["hint"]
        result = _run(world, "add", "https://civitai.com/models/7/detail-tweaker?modelVersionId=123", "--dir", str(webui),
                      CIVITAI_API_TOKEN=TOKEN)
    finally:
        world["api"].require_token(None)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (webui / "models/Lora/detail.safetensors").read_bytes() == world["lora"]
    assert (comfy / "models/loras/detail.safetensors").samefile(webui / "models/Lora/detail.safetensors")
    assert [r["authorization"] for r in world["api"].requests][-2:] == [f"Bearer {TOKEN}"] * 2
    cdn_requests = world["cdn"].requests("/files/detail.safetensors")
    assert cdn_requests and all(r.authorization is None for r in cdn_requests)
    logs = "".join(p.read_text("utf-8", "replace") for p in Path(os.environ["HOME"]).rglob("*.log"))
    assert TOKEN not in result.stdout + result.stderr + logs


def test_a_file_that_does_not_match_its_sha256_leaves_nothing_behind(world, tmp_path):
    webui, comfy = _installs(tmp_path)
    result = _run(world, "add", "civitai:124", "--dir", str(webui))
    assert result.returncode == 4, result.stderr[-3000:]
    assert json.loads(result.stdout)["error"]["kind"] == "integrity"
    leftovers = [p for p in list(webui.rglob("*")) + list(comfy.rglob("*")) if "models" in p.parts and p.is_file()]
    assert leftovers == []
    assert not (webui / ".sdsetup/models-added.json").exists()


def test_a_download_killed_half_way_continues_where_it_stopped(world, tmp_path):
    webui, _comfy = _installs(tmp_path)
    good = world["good"]
    path = f"/hf/sdfix/sd15/resolve/{COMMIT}/unet/model.safetensors"
    good.reset_log()
    good.rule(path, rate=400_000)
    proc = subprocess.Popen(_argv("add", "hf:sdfix/sd15/unet/model.safetensors", "--dir", str(webui), "--connections", "2", mirror="plain"),
                            env=_env(world), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while good.bytes_sent(path) < 1_200_000 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(1.2)  # the sidecar records progress at least every MiB per connection
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    dest = webui / "models/Stable-diffusion/model.safetensors"
    assert not dest.exists() and dest.with_name(dest.name + ".part").exists()
    sent_before = good.bytes_sent(path)
    good.rule(path, rate=None)
    result = _run(world, "add", "hf:sdfix/sd15/unet/model.safetensors", "--dir", str(webui), mirror="plain")
    assert result.returncode == 0, result.stderr[-3000:]
    assert dest.read_bytes() == world["model"]
    assert json.loads(result.stdout)["data"]["resumed"] is True
    assert good.bytes_sent(path) - sent_before < len(world["model"]) - 900_000  # the second run fetched only the rest


def test_modelscope_files_and_plain_urls_need_a_hash_from_somewhere(world, tmp_path):
    webui, comfy = _installs(tmp_path)
    result = _run(world, "add", "https://modelscope.cn/models/msowner/msrepo/resolve/master/ms.safetensors", "--dir", str(webui),
                  "--type", "vae")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (comfy / "models/vae/ms.safetensors").read_bytes() == world["ms_model"]
    url = world["cdn"].url("/files/detail.safetensors")
    plain = _run(world, "add", url, "--dir", str(webui))
    assert plain.returncode == 2 and "--sha256" in json.loads(plain.stdout)["error"]["hint"]
    ok = _run(world, "add", url, "--dir", str(webui), "--type", "embedding", "--sha256", hashlib.sha256(world["lora"]).hexdigest())
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert (webui / "embeddings/detail.safetensors").is_file() and (comfy / "models/embeddings/detail.safetensors").is_file()
    (webui / "models/Lora").mkdir(parents=True)
    (webui / "models/Lora/detail.safetensors").write_bytes(b"the user's own file")
    theirs = _run(world, "add", url, "--dir", str(webui), "--type", "lora", "--sha256", hashlib.sha256(world["lora"]).hexdigest())
    assert theirs.returncode == 4 and (webui / "models/Lora/detail.safetensors").read_bytes() == b"the user's own file"
    assert not (comfy / "models/loras/detail.safetensors").exists()  # refused before anything moved


@pytest.mark.parametrize("text, kind, repo, rev, path, version", [
    ("hf:owner/repo/a/b.safetensors", "hf", "owner/repo", "main", "a/b.safetensors", None),
    ("hf:owner/repo/b.safetensors@v1.0", "hf", "owner/repo", "v1.0", "b.safetensors", None),
    ("https://huggingface.co/owner/repo/blob/main/x/b.ckpt?download=true", "hf", "owner/repo", "main", "x/b.ckpt", None),
    ("https://hf-mirror.com/owner/repo/resolve/abc123/b.ckpt", "hf", "owner/repo", "abc123", "b.ckpt", None),
    ("civitai:4201", "civitai", None, None, None, 4201),
    ("https://civitai.com/models/7/name?modelVersionId=99", "civitai", None, None, None, 99),
    ("https://civitai.com/api/download/models/99", "civitai", None, None, None, 99),
    ("https://www.modelscope.cn/models/o/r/file/view/master/sd/m.safetensors", "modelscope", "o/r", "master", "sd/m.safetensors", None),
    ("https://example.org/m.safetensors", "url", None, None, None, None),
])
def test_sources_are_read_from_their_text(text, kind, repo, rev, path, version):
    source = parse_source(text)
    assert (source.kind, source.repo, source.revision, source.path, source.version_id) == (kind, repo, rev, path, version)


@pytest.mark.parametrize("text", ["", "hf:owner/b.safetensors", "hf:owner/repo/../x", "civitai:abc", "civitai:0",
                                  "https://huggingface.co/owner/repo", "ftp://example.org/x", "https://civitai.com/images/5"])
def test_sources_that_name_no_file_are_usage_errors(text):
    from sdsetup.errors import SdsetupError

    with pytest.raises(SdsetupError) as caught:
        parse_source(text)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("url, extra, allowed", [
    ("https://civitai.com/api/v1/models/1", (), True),
    ("https://api.civitai.com/x", (), True),
    ("http://civitai.com/api", (), False),  # never in clear text
    ("https://civitai.com.evil.org/x", (), False),
    ("https://b2.civitai-cdn.example/x", (), False),
    ("http://127.0.0.1:8000/api", (("127.0.0.1", 8000),), True),
    ("http://127.0.0.1:8001/files/x", (("127.0.0.1", 8000),), False),
])
def test_the_civitai_token_goes_to_civitai_hosts_only(url, extra, allowed):
    assert is_civitai_host(url, extra) is allowed


def test_hash_state_comes_from_the_cache_without_hashing(tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"x")
    stat = path.stat()
    assert hash_state(None, None, stat) == "unrecorded"
    assert hash_state("a" * 64, None, stat) == "unchecked"
    from sdsetup.hashing import fingerprint

    assert hash_state("a" * 64, [*fingerprint(stat), "a" * 64], stat) == "verified"
    assert hash_state("a" * 64, [*fingerprint(stat), "b" * 64], stat) == "differs"
    changed = fingerprint(stat)
    changed[2] += 1  # the ctime moved (bytes rewritten and the mtime put back): not trusted
    assert hash_state("a" * 64, [*changed, "a" * 64], stat) == "unchecked"
    # an entry in the older shape (size, mtime only) is not trusted either
    assert hash_state("a" * 64, [stat.st_size, stat.st_mtime_ns, "a" * 64], stat) == "unchecked"
