"""Malformed input through the real command line (`python -m sdsetup …` in a separate process): manifests,
config files, URLs, paths, bundles, logs and flags. Each case asserts what a user is promised (README,
"Exit codes"): the documented exit code, exactly one `error:` line naming the problem plus a `hint:` line,
no traceback, and nothing of the user's changed (their folder is snapshot before and after).

Each case runs in a folder of the user's own (`{u}`, also the working directory) with files the case
writes there first; sdsetup's config, cache and machine facts live in a separate home. Any attempt to
reach the network goes to a closed local port (the proxy variables), so no case can wait on it.
Cases whose fix belongs to another branch are in a separate table at the end, marked xfail(strict).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
A1111 = (ROOT / "manifests" / "a1111.toml").read_text("utf-8")
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens, a connection is refused at once

USAGE, FAILED, NETWORK, INTEGRITY = 2, 1, 3, 4


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    code: int = USAGE
    files: dict[str, bytes | str | None] = field(default_factory=dict)  # rel -> content; None makes a folder
    words: tuple[str, ...] = ()  # each must be in the error line ({u} is the user's folder)
    env: dict[str, str] = field(default_factory=dict)


def case(id: str, *argv: str, code: int = USAGE, files=None, words=(), env=None) -> Case:
    return Case(id, tuple(argv), code, dict(files or {}), tuple(words), dict(env or {}))


# -- inputs ------------------------------------------------------------------------------------------

def utf16(text: str) -> bytes:
    return text.encode("utf-16")  # with its BOM, as Windows Notepad saves "Unicode"


BINARY = bytes(range(256)) * 8
DEEP_TOML = b"x = " + b"[" * 50_000 + b"]" * 50_000 + b"\n"
DEEP_TABLE = b"x = " + b"{a = " * 3000 + b"1" + b"}" * 3000 + b"\n"
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000


def manifest(old: str, new: str) -> str:
    assert old in A1111, old
    return A1111.replace(old, new, 1)


def install_with(text: str | bytes, *words: str, code: int = USAGE, name: str = "m.toml") -> tuple:
    return dict(files={name: text}, argv=("install", "{u}/webui", "--dry-run", "--manifest", f"{{u}}/{name}"),
                code=code, words=words)


def m(id: str, text: str | bytes, *words: str, code: int = USAGE) -> Case:
    spec = install_with(text, *words, code=code)
    return case(f"manifest-{id}", *spec["argv"], code=spec["code"], files=spec["files"], words=spec["words"] or ("m.toml",))


MANIFESTS = [
    m("empty", ""),
    m("utf16", utf16(A1111), "UTF-16"),
    m("utf16-no-bom", A1111.encode("utf-16-le"), "UTF-16"),
    m("binary", BINARY, "UTF-8"),
    m("deep-array", DEEP_TOML, "deeply"),
    m("deep-table", DEEP_TABLE, "deeply"),
    m("syntax", A1111 + "\n[webui\n", "TOML"),
    m("nul-byte", A1111.replace("[webui]", "[webui]\x00"), "UTF-8"),
    # the whole [webui] table, whatever lines (evidence, ref) it holds
    m("no-webui", manifest(A1111[A1111.index("[webui]\n"):A1111.index("\n[", A1111.index("[webui]\n")) + 1], "")),
    m("schema-2", manifest("schema = 1", "schema = 2")),
    m("schema-string", manifest("schema = 1", 'schema = "one"')),
    m("unknown-key", manifest("schema = 1", "schema = 1\nfrobnicate = true")),
    m("webui-commit-short", manifest('commit = "82a973c04367123ae98bd9abdf80d9eda9b910e2"', 'commit = "82a973c"')),
    m("webui-commit-not-hex", manifest('commit = "82a973c04367123ae98bd9abdf80d9eda9b910e2"', 'commit = "' + "z" * 40 + '"')),
    m("webui-url-not-url", manifest('url = "https://github.com/AUTOMATIC1111/stable-diffusion-webui.git"', 'url = "not a url"')),
    m("webui-url-number", manifest('url = "https://github.com/AUTOMATIC1111/stable-diffusion-webui.git"', "url = 5")),
    m("python-recommended-unsupported", manifest('recommended = "3.10"', 'recommended = "2.7"')),
    m("python-pip-minimum-not-version", manifest('pip_minimum = "25.1"', 'pip_minimum = "newest"')),
    m("torch-packages-not-list", manifest('packages = ["torch==2.1.2", "torchvision==0.16.2"]\nindex = "https://download.pytorch.org/whl/{tag}"\ntags = ["cu121", "cu118"]',
                                          'packages = "torch"\nindex = "https://download.pytorch.org/whl/{tag}"\ntags = ["cu121", "cu118"]')),
    m("torch-unknown-backend", manifest("[torch.cpu]", "[torch.tpu]")),
    m("torch-bytes-negative", manifest("download_bytes = 250_000_000", "download_bytes = -1")),
    m("pip-step-no-name", manifest('name = "build-tools"\n', "")),
    m("pip-step-unknown-key", manifest('name = "build-tools"', 'name = "build-tools"\nsudo = true')),
    m("pip-archive-not-url", manifest('archives = ["https://github.com/openai/CLIP/archive/d50d76daa670286dd6cacf3bcd80b5e4823fc8e1.zip"]',
                                      'archives = ["CLIP.zip"]')),
    m("repo-commit-bad", manifest('commit = "6f7db241d2f8ba7457bac5ca9753331f0c266917"', 'commit = "main"')),
    m("repo-path-dotdot", manifest('path = "repositories/stable-diffusion-webui-assets"', 'path = "../outside"')),
    m("repo-path-absolute", manifest('path = "repositories/stable-diffusion-webui-assets"', 'path = "/tmp/elsewhere"')),
    m("repo-path-empty", manifest('path = "repositories/stable-diffusion-webui-assets"', 'path = ""')),
    m("model-path-absolute", manifest('path = "models/Stable-diffusion/v1-5-pruned-emaonly.safetensors"', 'path = "/tmp/v1-5.safetensors"')),
    m("repo-path-dot", manifest('path = "repositories/stable-diffusion-webui-assets"', 'path = "."')),
    m("repo-path-in-git", manifest('path = "repositories/stable-diffusion-webui-assets"', 'path = ".git/assets"')),
    m("repo-path-in-state", manifest('path = "repositories/stable-diffusion-webui-assets"', 'path = ".sdsetup/assets"')),
    m("pip-package-option", manifest('packages = ["setuptools==69.5.1", "wheel"]', 'packages = ["--index-url=http://a.example/", "wheel"]')),
    m("hub-revision-option", manifest('revision = "32bd64288804d66eefd0ccbe215aa642df71cc41"', 'revision = "--upload-pack=touch x"')),
    m("repo-no-url", manifest('url = "https://github.com/AUTOMATIC1111/stable-diffusion-webui-assets.git"\n', "")),
    m("model-sha-short", manifest('sha256 = "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa"', 'sha256 = "6ce0"')),
    m("model-sha-not-hex", manifest('sha256 = "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa"', 'sha256 = "' + "g" * 64 + '"')),
    m("model-size-negative", manifest("size = 4265146304", "size = -1")),
    m("model-size-string", manifest("size = 4265146304", 'size = "4 GB"')),
    m("model-url-ftp", manifest('url = "https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5/resolve/main/v1-5-pruned-emaonly.safetensors"',
                                'url = "ftp://example.com/v1-5.safetensors"')),
    m("model-path-escapes", manifest('path = "models/Stable-diffusion/v1-5-pruned-emaonly.safetensors"', 'path = "../../v1-5.safetensors"')),
    m("hub-files-empty", manifest(A1111[A1111.index("files = [\n    { name"):A1111.index("]\n", A1111.index("files = [\n    { name")) + 2], "files = []\n")),
    m("launch-args-string", manifest('args = ["--no-download-sd-model"]', 'args = "--no-download-sd-model"')),
    m("disk-negative", manifest("tmp_bytes = 1_000_000_000", "tmp_bytes = -5")),
    case("manifest-folder", "install", "{u}/webui", "--dry-run", "--manifest", "{u}/mdir", files={"mdir": None}, words=("mdir",)),
    case("manifest-missing", "install", "{u}/webui", "--dry-run", "--manifest", "{u}/nope.toml", words=("nope.toml",)),
    case("manifest-unknown-name", "install", "{u}/webui", "--dry-run", "--manifest", "a1112", words=("a1112",)),
    case("manifest-for-bundle-utf16", "bundle", "create", "{u}/b", "--manifest", "{u}/m.toml", files={"m.toml": utf16(A1111)},
         words=("UTF-16",)),
]


def c(id: str, text: str | bytes, *words: str, code: int = USAGE) -> Case:
    return case(f"config-{id}", "mirrors", "list", files={"c.toml": text}, env={"SDSETUP_CONFIG": "{u}/c.toml"}, code=code,
                words=words or ("c.toml",))


CONFIGS = [
    c("utf16", utf16('proxy = "http://a:1"\n'), "UTF-16"),
    c("binary", BINARY, "UTF-8"),
    c("deep", DEEP_TOML, "deeply"),
    c("deep-table", DEEP_TABLE, "deeply"),
    c("syntax", "proxy = \n", "TOML"),
    c("unknown-key", 'proxie = "http://a:1"\n', "proxie"),
    c("proxy-ftp", 'proxy = "ftp://a:1"\n', "proxy"),
    c("proxy-no-host", 'proxy = "http://"\n', "proxy"),
    c("proxy-bad-port", 'proxy = "http://a:99999"\n', "proxy"),
    c("proxy-number", "proxy = 8080\n"),
    c("connections-string", 'connections = "many"\n', "connections"),
    c("connections-zero", "connections = 0\n", "connections"),
    c("connections-huge", "connections = 100000\n", "connections"),
    c("timeout-negative", "timeout = -1\n", "timeout"),
    c("timeout-string", 'timeout = "soon"\n', "timeout"),
    # issue 23 item 20: nan and inf are numbers to TOML and float(), never a timeout
    c("timeout-nan", "timeout = nan\n", "timeout"),
    c("timeout-inf", "timeout = inf\n", "timeout"),
    case("config-env-timeout-nan", "mirrors", "list", env={"SDSETUP_TIMEOUT": "nan"}, words=("SDSETUP_TIMEOUT",)),
    case("config-env-timeout-inf", "check", env={"SDSETUP_TIMEOUT": "Infinity"}, words=("SDSETUP_TIMEOUT",)),
    case("flag-timeout-nan", "fetch", "http://127.0.0.1:9/x", "-o", "{u}/x", "--timeout", "nan", words=("timeout",)),
    c("mirror-number", "mirror = 5\n"),
    c("mirror-unknown", 'mirror = "nope"\n', "nope"),
    c("mirror-bad-channel", 'mirror = "bogus=https://x.example/"\n', "bogus"),
    c("cache-dir-number", "cache_dir = 5\n", "cache_dir"),
    c("rewrite-not-table", 'rewrite = "x"\n', "rewrite"),
    c("rewrite-missing-replace", '[[rewrite]]\nprefix = "https://github.com/"\n', "rewrite"),
    c("profiles-not-table", 'profiles = "x"\n', "profiles"),
    case("config-env-missing", "mirrors", "list", env={"SDSETUP_CONFIG": "{u}/missing.toml"}, words=("missing.toml",)),
    case("config-env-folder", "mirrors", "list", files={"cdir": None}, env={"SDSETUP_CONFIG": "{u}/cdir"}, words=("cdir", "folder")),
    case("config-flag-missing", "mirrors", "list", "--config", "{u}/missing.toml", words=("missing.toml",)),
    case("config-flag-folder", "mirrors", "list", "--config", "{u}/cdir", files={"cdir": None}, words=("cdir", "folder")),
    case("config-flag-utf16", "check", "--config", "{u}/c.toml", files={"c.toml": utf16("connections = 3\n")}, words=("UTF-16",)),
]


def url(id: str, address: str, *words: str, code: int = USAGE) -> Case:
    return case(f"url-{id}", "fetch", address, "-o", "{u}/out.bin", code=code, words=words)


URLS = [
    url("no-scheme", "example.com/model.bin"),
    url("ftp", "ftp://example.com/model.bin", "ftp"),
    url("empty", ""),
    url("scheme-only", "http://"),
    url("no-host", "http:///model.bin"),
    url("port-out-of-range", "http://127.0.0.1:99999/model.bin"),
    url("bracket-unclosed", "http://[::1/model.bin"),
    url("javascript", "javascript:alert(1)"),
    url("data", "data:,hello"),
    case("url-mirror-url-ftp", "install", "{u}/webui", "--dry-run", "--mirror-url", "ftp://a.example/", words=("--mirror-url",)),
    # issue 11 item 16: a failed fetch must not leave an empty DEST.lock in the user's folder
    url("file-missing", "file://{u}/nope.bin", "nope.bin", code=NETWORK),
    case("url-file-folder", "fetch", "file://{u}/dir", "-o", "{u}/out.bin", files={"dir": None}, words=("dir",)),
    # issue 11 item 15
    case("url-mirror-url-spaces", "install", "{u}/webui", "--dry-run", "--mirror-url", "http://a.example/my bundle/",
         words=("--mirror-url",)),
    case("url-mirror-url-query", "install", "{u}/webui", "--dry-run", "--mirror-url", "http://a.example/b/?token=x",
         words=("--mirror-url",)),
    case("url-mirror-base-query", "install", "{u}/webui", "--dry-run", "--mirror", "http://a.example/b/?x=1", words=("query",)),
    case("url-mirror-url-words", "install", "{u}/webui", "--dry-run", "--mirror-url", "not a url", words=("--mirror-url",)),
    case("url-mirror-channel-not-url", "mirrors", "list", "--mirror", "pypi=notaurl", words=("pypi",)),
    case("url-mirror-channel-ftp", "mirrors", "list", "--mirror", "pypi=ftp://a.example/simple/", words=("pypi",)),
    case("url-mirror-unknown-channel", "mirrors", "list", "--mirror", "bogus=https://a.example/", words=("bogus",)),
    case("url-mirror-unknown-profile", "mirrors", "list", "--mirror", "nope", words=("nope",)),
    case("url-mirror-env-not-url", "mirrors", "list", env={"SDSETUP_MIRROR_PYPI": "notaurl"}, words=("SDSETUP_MIRROR_PYPI",)),
    case("url-proxy-ftp", "mirrors", "probe", "--proxy", "ftp://a.example:1", words=("proxy",)),
    case("url-proxy-bad-port", "mirrors", "probe", "--proxy", "http://a.example:99999", words=("proxy",)),
    case("url-proxy-no-host", "fetch", "http://127.0.0.1:9/x", "-o", "{u}/x", "--proxy", "http://", words=("proxy",)),
    case("url-proxy-env", "mirrors", "probe", env={"SDSETUP_PROXY": "socks9://a.example:1"}, words=("SDSETUP_PROXY",)),
    case("url-base-url-ftp", "bundle", "create", "{u}/b", "--base-url", "ftp://a.example/", words=("--base-url",)),
    case("url-base-url-credentials", "bundle", "create", "{u}/b", "--base-url", "http://u:secret@a.example/", words=("--base-url",)),
]


PATHS = [
    case("path-install-dir-is-file", "install", "{u}/f", "--dry-run", files={"f": "mine\n"}, words=("f",)),
    case("path-install-dir-under-file", "install", "{u}/f/webui", "--dry-run", files={"f": "mine\n"}),
    case("path-install-python-missing", "install", "{u}/webui", "--dry-run", "--python", "{u}/no-python", words=("no-python",)),
    case("path-verify-no-install", "verify", "{u}/webui", files={"webui": None}),
    case("path-verify-missing", "verify", "{u}/nothing"),
    case("path-doctor-log-missing", "doctor", "--log", "{u}/nope.log", words=("nope.log",)),
    case("path-doctor-log-folder", "doctor", "--log", "{u}/logs", files={"logs": None}, words=("logs",)),
    case("path-bundle-verify-missing", "bundle", "verify", "{u}/nope", words=("nope",)),
    case("path-bundle-verify-file", "bundle", "verify", "{u}/f", files={"f": "mine\n"}, words=("f",)),
    case("path-bundle-verify-no-lock", "bundle", "verify", "{u}", files={"notes.txt": "mine\n"}, words=("bundle.lock.json",)),
    case("path-bundle-create-into-file", "bundle", "create", "{u}/f", files={"f": "mine\n"}),
    case("path-bundle-create-foreign-folder", "bundle", "create", "{u}", files={"notes.txt": "mine\n"}),
    case("path-offline-not-bundle", "install", "{u}/webui", "--dry-run", "--offline", "{u}", files={"notes.txt": "mine\n"},
         words=("bundle.lock.json",)),
    case("path-offline-file", "install", "{u}/webui", "--dry-run", "--offline", "{u}/f", files={"f": "mine\n"}),
    case("path-offline-missing", "install", "{u}/webui", "--dry-run", "--offline", "{u}/nope"),
    # issue 11 items 1 and 14: a device node is never replaced; a too-long name is a usage error
    case("path-fetch-out-device", "fetch", "file://{u}/src.bin", "-o", "/dev/full", files={"src.bin": "data"}),
    case("path-fetch-out-long-name", "fetch", "file://{u}/src.bin", "-o", "{u}/" + "a" * 300, files={"src.bin": "data"}),
    case("path-fetch-out-under-file", "fetch", "file://{u}/src.bin", "-o", "{u}/f/out.bin", files={"f": "mine\n", "src.bin": "data"}),
    # issue 23 item 2: every output path gets fetch -o's destination check (a FIFO, a device node or a
    # link is never replaced by a regular file; a FIFO is never opened either: it would block)
    case("path-verify-report-fifo", "verify", "{u}/webui", "--report", "{u}/r.html", files={"r.html": "|fifo"}, words=("r.html",)),
    case("path-verify-report-device", "verify", "{u}/webui", "--report", "{u}/null", files={"null": "|chr"}, words=("null",)),
    case("path-verify-report-link", "verify", "{u}/webui", "--report", "{u}/r.html", files={"mine.txt": "mine\n", "r.html": "->mine.txt"},
         words=("r.html",)),
    case("path-verify-report-dangling-link", "verify", "{u}/webui", "--report", "{u}/r.html", files={"r.html": "->gone.html"},
         words=("r.html",)),
    case("path-verify-report-proc", "verify", "{u}/webui", "--report", "/proc/self/comm", words=("/proc",)),
    case("path-verify-out-fifo", "verify", "{u}/webui", "--out", "{u}/s.png", files={"s.png": "|fifo"}, words=("s.png",)),
    case("path-verify-out-link", "verify", "{u}/webui", "--out", "{u}/s.png", files={"mine.png": "mine\n", "s.png": "->mine.png"},
         words=("s.png",)),
    case("path-verify-smoke-out-device", "verify", "--smoke", "--out", "{u}/null", files={"null": "|chr"}, words=("null",)),
    case("path-doctor-bundle-dangling-link", "doctor", "--bundle", "{u}/r.zip", files={"r.zip": "->gone.zip"}, words=("r.zip",)),
    case("path-doctor-bundle-fifo", "doctor", "--bundle", "{u}/r.zip", files={"r.zip": "|fifo"}, words=("r.zip",)),
    case("path-bundle-create-fifo", "bundle", "create", "{u}/b", files={"b": "|fifo"}, words=("b",)),
]


def lock(id: str, content: bytes | str, *words: str, code: int) -> list[Case]:
    """The same damaged lock through `bundle verify` and `install --offline`."""
    files = {"b/bundle.lock.json": content}
    return [case(f"bundle-{id}-verify", "bundle", "verify", "{u}/b", code=code, files=files, words=words or ("bundle.lock.json",)),
            case(f"bundle-{id}-offline", "install", "{u}/webui", "--offline", "{u}/b", "--dry-run", code=code, files=files,
                 words=words or ("bundle.lock.json",))]


def _lock_json(files=(), **extra) -> str:
    return json.dumps({"schema": 1, "files": list(files), "repos": [], **extra})


WHEEL = "pypi/packages/six-1.16.0-py2.py3-none-any.whl"
GOOD = b"the real wheel"
GOOD_SHA = __import__("hashlib").sha256(GOOD).hexdigest()
LOCK_ONE = _lock_json([{"path": WHEEL, "sha256": GOOD_SHA, "size": len(GOOD), "kind": "package"}])

BUNDLES = [
    *lock("utf16", utf16(_lock_json()), "UTF-16", code=USAGE),
    *lock("binary", BINARY, "UTF-8", code=USAGE),
    *lock("deep", DEEP_JSON, "deeply", code=USAGE),
    *lock("not-json", "{schema: 1", "JSON", code=USAGE),
    *lock("not-object", "[]", "object", code=INTEGRITY),
    *lock("schema-2", json.dumps({"schema": 2, "files": [], "repos": []}), "schema", code=INTEGRITY),
    *lock("file-without-sha", _lock_json([{"path": "a.whl", "size": 1}]), code=INTEGRITY),
    *lock("path-escapes", _lock_json([{"path": "../outside.whl", "sha256": "0" * 64, "size": 1}]), "../outside.whl", code=INTEGRITY),
    *lock("path-absolute", _lock_json([{"path": "/etc/passwd", "sha256": "0" * 64, "size": 1}]), "/etc/passwd", code=INTEGRITY),
    *lock("hub-not-objects", _lock_json(hub=[1, 2]), "hub", code=INTEGRITY),
    *lock("target-not-object", _lock_json(target=[["a", "b", "c"]]), "target", code=INTEGRITY),
    case("bundle-offline-corrupt-file", "install", "{u}/webui", "--offline", "{u}/b", "--dry-run", code=INTEGRITY,
         files={"b/bundle.lock.json": LOCK_ONE, f"b/{WHEEL}": b"the fake wheel"}, words=("six-1.16.0", "sha256")),
    case("bundle-offline-missing-file", "install", "{u}/webui", "--offline", "{u}/b", "--dry-run", code=INTEGRITY,
         files={"b/bundle.lock.json": LOCK_ONE}, words=("six-1.16.0", "missing")),
    case("bundle-offline-linked-folder", "install", "{u}/webui", "--offline", "{u}/b", "--dry-run", code=INTEGRITY,
         files={"b/bundle.lock.json": LOCK_ONE, f"elsewhere/{WHEEL}": GOOD, "b/pypi": "->elsewhere/pypi"}, words=("link",)),
]


LOGS = [
    case("log-missing", "doctor", "--log", "{u}/webui.log", words=("webui.log",)),
    case("log-folder", "doctor", "--log", "{u}/logs", files={"logs": None}, words=("logs",)),
    case("log-under-file", "doctor", "--log", "{u}/f/webui.log", files={"f": "mine\n"}),
    case("log-second-missing", "doctor", "--log", "{u}/a.log", "--log", "{u}/b.log", files={"a.log": "Traceback\n"}, words=("b.log",)),
]


FLAGS = [
    case("flag-unknown-command", "frobnicate"),
    case("flag-unknown-option", "check", "--frobnicate", words=("--frobnicate",)),
    case("flag-unknown-option-json", "check", "--json", "--frobnicate", words=("--frobnicate",)),
    case("flag-missing-argument", "fetch", words=("urls",)),
    case("flag-missing-value", "fetch", "http://127.0.0.1:9/x", "--output", words=("--output",)),
    case("flag-connections-zero", "fetch", "http://127.0.0.1:9/x", "-o", "{u}/x", "--connections", "0", words=("connections",)),
    case("flag-connections-word", "fetch", "http://127.0.0.1:9/x", "-o", "{u}/x", "--connections", "many", words=("connections",)),
    case("flag-timeout-negative", "fetch", "http://127.0.0.1:9/x", "-o", "{u}/x", "--timeout", "-1", words=("timeout",)),
    case("flag-size-negative", "fetch", "http://127.0.0.1:9/x", "-o", "{u}/x", "--size", "-5", words=("size",)),
    case("flag-sha256-short", "fetch", "http://127.0.0.1:9/x", "-o", "{u}/x", "--sha256", "abc", words=("sha256",)),
    case("flag-sha256-not-hex", "fetch", "http://127.0.0.1:9/x", "-o", "{u}/x", "--sha256", "z" * 64, words=("sha256",)),
    case("flag-lock-timeout-negative", "fetch", "http://127.0.0.1:9/x", "-o", "{u}/x", "--lock-timeout", "-1", words=("lock-timeout",)),
    case("flag-install-backend", "install", "{u}/webui", "--dry-run", "--backend", "tpu", words=("tpu",)),
    case("flag-check-backend", "check", "--backend", "tpu", words=("tpu",)),
    case("flag-bundle-platform", "bundle", "create", "{u}/b", "--platform", "amiga", words=("amiga",)),
    case("flag-bundle-python-version", "bundle", "create", "{u}/b", "--python-version", "2.7", words=("2.7",)),
    case("flag-bundle-python-version-word", "bundle", "create", "{u}/b", "--python-version", "latest", words=("latest",)),
    case("flag-bundle-torch-tag", "bundle", "create", "{u}/b", "--backend", "cuda", "--torch-tag", "cu999", words=("cu999",)),
    case("flag-probe-channel", "mirrors", "probe", "--channel", "ftp", words=("ftp",)),
    case("flag-mirror-url-and-offline", "install", "{u}/webui", "--dry-run", "--mirror-url", "http://a.example/", "--offline", "{u}",
         words=("--offline",)),
    case("flag-mirror-and-mirror-url", "install", "{u}/webui", "--dry-run", "--mirror", "cn", "--mirror-url", "http://a.example/",
         words=("--mirror",)),
]

def facts(id: str, text: str | bytes, *words: str) -> list[Case]:
    """A malformed SDSETUP_MACHINE_FACTS through check and install (issue 23 item 22: exit 70 before)."""
    env = {"SDSETUP_MACHINE_FACTS": "{u}/facts.json"}
    return [case(f"facts-{id}-check", "check", files={"facts.json": text}, env=env, words=words or ("facts.json",)),
            case(f"facts-{id}-install", "install", "{u}/webui", "--dry-run", files={"facts.json": text}, env=env,
                 words=words or ("facts.json",))]


FACTS = [
    *facts("bits-infinite", '{"os": {"system": "Linux", "bits": 1e400}, "gpus": []}'),
    *facts("ram-infinite", '{"os": {"system": "Linux"}, "gpus": [], "ram_total_bytes": 1e400}'),
    *facts("gpu-not-object", '{"os": {"system": "Linux"}, "gpus": ["RTX 3060"]}'),
    *facts("system-number", '{"os": {"system": 5}, "gpus": []}'),
    *facts("deep", DEEP_JSON, "deeply"),
]

CASES = FACTS + MANIFESTS + CONFIGS + URLS + PATHS + BUNDLES + LOGS + FLAGS + [
    # an explicitly empty python.supported list accepts no Python at all
    m("python-supported-empty", manifest('supported = ["3.10", "3.11"]', "supported = []")),
]



# -- the run -----------------------------------------------------------------------------------------

def _write(user: Path, files: dict) -> None:
    for rel, content in files.items():
        path = user / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir(exist_ok=True)
        elif content == "|fifo":
            os.mkfifo(path)
        elif content == "|chr":  # a real character device (1, 3 is /dev/null's): only root may make one
            if not hasattr(os, "geteuid") or os.geteuid() != 0:
                pytest.skip("making a device node needs root")
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        elif isinstance(content, str) and content.startswith("->"):
            path.symlink_to(user / content[2:], target_is_directory=True)
        else:
            path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))


def snapshot(user: Path) -> dict[str, tuple]:
    """Every entry under the user's folder: kind, mode and bytes (links by their target, not followed)."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(user):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            info = path.lstat()
            rel = path.relative_to(user).as_posix()
            if stat.S_ISLNK(info.st_mode):
                seen[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                seen[rel] = ("dir", stat.S_IMODE(info.st_mode))
            elif not stat.S_ISREG(info.st_mode):  # a FIFO or device: its kind, never its bytes (reading would block)
                seen[rel] = ("special", stat.S_IFMT(info.st_mode), info.st_rdev)
            else:
                seen[rel] = ("file", stat.S_IMODE(info.st_mode), path.read_bytes())
    return seen


@pytest.fixture()
def home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("")
    (home / "machine.json").write_text(json.dumps({
        "os": {"system": "Linux", "release": "6.1", "version": "#1", "machine": "x86_64", "bits": 64, "wsl": False},
        "gpus": [], "ram_total_bytes": 16 << 30, "ram_available_bytes": 12 << 30}))
    return home


def run_case(item: Case, tmp_path: Path, home: Path) -> None:
    user = tmp_path / "user"
    user.mkdir()
    _write(user, item.files)
    fill = lambda text: text.replace("{u}", str(user))  # noqa: E731
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
        "SDSETUP_CONFIG": str(home / "config.toml"), "SDSETUP_CACHE_DIR": str(home / "cache"),
        "SDSETUP_MACHINE_FACTS": str(home / "machine.json"), "PIP_CONFIG_FILE": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"), "GIT_TERMINAL_PROMPT": "0",
        "HTTP_PROXY": CLOSED, "HTTPS_PROXY": CLOSED, "http_proxy": CLOSED, "https_proxy": CLOSED, "ALL_PROXY": CLOSED,
        "COLUMNS": "100",
    }
    env.update({k: fill(v) for k, v in item.env.items()})
    before = snapshot(user)
    result = subprocess.run([sys.executable, "-m", "sdsetup", *(fill(a) for a in item.argv)], cwd=user, env=env,
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    shown = f"exit {result.returncode}\n--- stderr\n{result.stderr[-3000:]}\n--- stdout\n{result.stdout[-1500:]}"
    assert result.returncode == item.code, shown
    assert "Traceback" not in result.stderr + result.stdout, shown
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, shown
    assert any(line.startswith("hint:") and len(line) > len("hint: ") + 5 for line in result.stderr.splitlines()), shown
    assert "internal error" not in errors[0], shown
    for word in item.words:
        assert fill(word) in errors[0], f"{word!r} not named\n{shown}"
    assert snapshot(user) == before, "the user's folder changed"


@pytest.mark.parametrize("item", [pytest.param(c, id=c.id) for c in CASES])
def test_malformed_input(item, tmp_path, home):
    run_case(item, tmp_path, home)



def test_the_table_is_large_and_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) >= 100 and len(set(ids)) == len(ids)
