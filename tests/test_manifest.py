"""Manifests: the built-in ones carry the 2026 facts; a broken one is refused naming file, key, problem."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.manifest import builtin_names, load_manifest, parse_manifest, resolve_manifest_path
from sdsetup.tomlcompat import loads_toml

GITHUB = "https://github.com/"


def test_builtin_manifests_are_the_install_manifests():
    assert set(builtin_names()) == {"a1111", "a1111-dev", "forge", "comfyui"}  # mirrors.toml / known_errors.toml are not manifests


def test_a1111_carries_every_pin_and_the_2026_fixes():
    m = load_manifest("a1111")
    assert m.webui.commit == "82a973c04367123ae98bd9abdf80d9eda9b910e2" and m.webui.ref == "v1.10.1"
    repos = {r.name: r for r in m.repositories}
    assert [r.name for r in m.repositories] == ["assets", "Stable Diffusion", "Stable Diffusion XL", "K-diffusion", "BLIP"]
    assert {r.name: r.commit for r in m.repositories} == {
        "assets": "6f7db241d2f8ba7457bac5ca9753331f0c266917",
        "Stable Diffusion": "cf1d67a6fd5ea1aa600c4df58e5b47da45f6bdbf",
        "Stable Diffusion XL": "45c443b316737a4ab6e40413d7794a7f5657c19f",
        "K-diffusion": "ab527a9a6d347f364e3d185ba6d714e22d80cb3c",
        "BLIP": "48211a1594f1321b00f14c9f7a5b4813144b2fb9",
    }
    sd = repos["Stable Diffusion"]
    assert sd.url == "https://github.com/w-e-w/stablediffusion.git" and sd.url_env == "STABLE_DIFFUSION_REPO"
    assert sd.path == "repositories/stable-diffusion-stability-ai"
    assert m.torch["cuda"].packages == ("torch==2.1.2", "torchvision==0.16.2") and m.torch["cuda"].tags[0] == "cu121"
    assert [s.name for s in m.pip] == ["build-tools", "clip", "open_clip", "requirements"]
    assert m.pip[0].packages == ("setuptools==69.5.1", "wheel")
    assert all(s.no_build_isolation for s in m.pip[1:])
    model = m.models[0]
    assert model.sha256 == "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa" and model.size == 4265146304
    assert model.url.startswith("https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5/")
    assert model.path == "models/Stable-diffusion/v1-5-pruned-emaonly.safetensors"
    hub = m.hub[0]
    assert hub.repo_id == "openai/clip-vit-large-patch14"
    assert set(hub.files) == {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json", "config.json"}
    assert "--no-download-sd-model" in m.launch.args and m.launch.hf_offline


def test_a1111_dev_is_torch_2_7_with_cuda_12_8():
    m = load_manifest("a1111-dev")
    assert m.webui.commit == "fd68e0c3846b07c637c3d57b0c38f06c8485a753"
    assert m.torch["cuda"].packages == ("torch==2.7.0", "torchvision==0.22.0") and m.torch["cuda"].tags[0] == "cu128"


def test_every_url_in_the_builtin_manifests_is_canonical_upstream():
    for name in builtin_names():
        text = resolve_manifest_path(name).read_text("utf-8")
        alternates = {u for m in load_manifest(name).models for u in m.alternates}  # other upstreams, pinned by sha256
        for url in re.findall(r'"(https?://[^"]+)"', text):
            assert url in alternates or url.startswith((GITHUB, "https://huggingface.co/", "https://download.pytorch.org/whl/")), url


VALID = """
schema = 1
name = "t"
[webui]
url = "https://github.com/o/webui.git"
commit = "0123456789abcdef0123456789abcdef01234567"
[torch.cpu]
packages = ["torch==2.1.2"]
index = "https://download.pytorch.org/whl/{tag}"
tags = ["cpu"]
[[repositories]]
name = "r"
path = "repositories/r"
url = "https://github.com/o/r.git"
commit = "0123456789abcdef0123456789abcdef01234567"
[[models]]
name = "m"
path = "models/m.bin"
url = "https://huggingface.co/o/m/resolve/main/m.bin"
sha256 = "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa"
"""


def _parse(text: str):
    return parse_manifest(loads_toml(text, "test"), "my.toml")


def test_a_minimal_manifest_parses():
    m = _parse(VALID)
    assert m.name == "t" and m.repositories[0].path == "repositories/r" and m.python.pip_minimum == "25.1"


def _refused(manifest: str, change: tuple[str, str], key: str, problem: str) -> SdsetupError:
    """Apply one (old, new) edit to a valid manifest; return the usage error, which names key and problem."""
    old, new = change
    assert old in manifest
    with pytest.raises(SdsetupError) as info:
        _parse(manifest.replace(old, new, 1))
    error = info.value
    assert error.exit_code == ExitCode.USAGE
    assert f"'{key}'" in error.message and problem in error.message, error.message
    return error


@pytest.mark.parametrize(
    "change, key, problem",
    [
        (('commit = "0123456789abcdef0123456789abcdef01234567"\n[torch', 'commit = "abc"\n[torch'), "webui.commit", "40-character"),
        (("schema = 1", "schema = 2"), "schema", "not supported"),
        (('name = "r"', 'name = "r"\ncomit = "x"'), "repositories[0].comit", "unknown key"),
        (('path = "models/m.bin"', 'path = "../../etc/m.bin"'), "models[0].path", "escapes the install directory"),
        (('path = "models/m.bin"', 'path = "/etc/m.bin"'), "models[0].path", "must be relative"),
        (('path = "repositories/r"', 'path = "C:/r"'), "repositories[0].path", "must be relative"),
        (('sha256 = "6ce0', 'sha256 = "XYZ'), "models[0].sha256", "sha256"),
        (('url = "https://huggingface.co/o/m', 'url = "https://user:pw@huggingface.co/o/m'), "models[0].url", "credentials"),
        (('url = "https://github.com/o/r.git"', 'url = "ftp://github.com/o/r.git"'), "repositories[0].url", "http(s)://"),
        (('packages = ["torch==2.1.2"]', 'packages = ["numpy"]'), "torch.cpu.packages", "does not name torch"),
        (('tags = ["cpu"]', 'tags = ["cuda12"]'), "torch.cpu.tags[0]", "wheel tag"),
        (("[torch.cpu]", "[torch.vulkan]"), "torch.vulkan", "unknown key"),
        (('name = "t"\n', ""), "name", "missing"),
        (('name = "m"', 'name = 5'), "models[0].name", "expected a string"),
    ],
)
def test_broken_manifests_name_the_file_key_and_problem(change, key, problem):
    error = _refused(VALID, change, key, problem)
    assert "my.toml" in error.message and error.hint


def test_duplicate_paths_are_refused():
    twice = VALID + VALID[VALID.index("[[repositories]]"):VALID.index("[[models]]")]
    with pytest.raises(SdsetupError, match=r"repositories\[1\]\.path.*appears twice"):
        _parse(twice)


def test_manifest_by_name_or_path(tmp_path):
    assert resolve_manifest_path("a1111").name == "a1111.toml"
    assert resolve_manifest_path(None).name == "a1111.toml"
    own = tmp_path / "mine.toml"
    own.write_text(VALID, "utf-8")
    assert load_manifest(str(own)).name == "t"
    with pytest.raises(SdsetupError, match="unknown manifest 'a1112'") as info:
        resolve_manifest_path("a1112")
    assert "a1111-dev" in info.value.hint and info.value.exit_code == ExitCode.USAGE
    with pytest.raises(SdsetupError, match="manifest file not found"):
        resolve_manifest_path(str(tmp_path / "missing.toml"))


def test_a_toml_syntax_error_is_a_usage_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("schema = \n", "utf-8")
    with pytest.raises(SdsetupError) as info:
        load_manifest(str(bad))
    assert info.value.exit_code == ExitCode.USAGE and str(bad) in info.value.message


def test_cli_reports_a_broken_manifest_without_traceback(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.toml"
    bad.write_text(VALID.replace('sha256 = "6ce0', 'sha256 = "XYZ'), "utf-8")
    result = subprocess.run([sys.executable, "-m", "sdsetup", "install", str(tmp_path / "d"), "--manifest", str(bad), "--dry-run"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "models[0].sha256" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "d").exists()


# Issue 11 item 2: a path, revision or package that would act on the wrong thing is refused at load time.
@pytest.mark.parametrize(
    "change, key, problem",
    [
        (('path = "repositories/r"', 'path = "."'), "repositories[0].path", "names the install directory itself"),
        (('path = "repositories/r"', 'path = "./"'), "repositories[0].path", "names the install directory itself"),
        (('path = "repositories/r"', 'path = "repositories/./.."'), "repositories[0].path", "escapes the install directory"),
        (('path = "repositories/r"', 'path = ""'), "repositories[0].path", "is empty"),
        (('path = "repositories/r"', 'path = "\\\\\\\\server\\\\share"'), "repositories[0].path", "must be relative"),
        (('path = "repositories/r"', 'path = ".git"'), "repositories[0].path", "inside .git"),
        (('path = "repositories/r"', 'path = ".GIT/modules/r"'), "repositories[0].path", "inside .git"),
        (('path = "models/m.bin"', 'path = "repositories/r/.git/hooks/post-checkout"'), "models[0].path", "inside .git"),
        (('path = "models/m.bin"', 'path = ".sdsetup/install.json"'), "models[0].path", "inside .sdsetup"),
        (('path = "models/m.bin"', 'path = "models/\\u0000m.bin"'), "models[0].path", "control character"),
        (('packages = ["torch==2.1.2"]', 'packages = ["torch==2.1.2", "--index-url=http://evil/"]'), "torch.cpu.packages[1]", "starts with '-'"),
    ],
)
def test_paths_packages_that_would_act_on_the_wrong_thing_are_refused(change, key, problem):
    assert _refused(VALID, change, key, problem).hint


HUB = VALID + """
[[hub]]
repo_id = "openai/clip-vit-large-patch14"
revision = "main"
files = ["config.json"]
[[pip]]
name = "deps"
packages = ["numpy==1.26.2"]
[smoke]
packages = ["pytest"]
"""


@pytest.mark.parametrize(
    "change, key, problem",
    [
        (('revision = "main"', 'revision = "main/../../x"'), "hub[0].revision", "plain branch/tag name or commit"),
        (('revision = "main"', 'revision = "refs/heads/.hidden"'), "hub[0].revision", "plain branch/tag name or commit"),
        (('revision = "main"', 'revision = "main.lock"'), "hub[0].revision", "plain branch/tag name or commit"),
        (('revision = "main"', 'revision = "v1/"'), "hub[0].revision", "plain branch/tag name or commit"),
        (('revision = "main"', 'revision = "a//b"'), "hub[0].revision", "plain branch/tag name or commit"),
        (('revision = "main"', 'revision = "a@{1}"'), "hub[0].revision", "plain branch/tag name or commit"),
        (('files = ["config.json"]', 'files = ["."]'), "hub[0].files[0]", "names the install directory itself"),
        (('files = ["config.json"]', 'files = ["../x.json"]'), "hub[0].files[0]", "escapes"),
        (('packages = ["numpy==1.26.2"]', 'packages = ["-e", "git+https://x/y"]'), "pip[0].packages[0]", "starts with '-'"),
        (('packages = ["pytest"]', 'packages = [" --pre"]'), "smoke.packages[0]", "starts with '-'"),
    ],
)
def test_hub_revisions_files_and_pip_packages_are_checked(change, key, problem):
    _refused(HUB, change, key, problem)


def test_plain_refs_and_commits_are_accepted():
    for revision in ("main", "v1.0", "refs/pr/12", "release/2.x", "0123456789abcdef0123456789abcdef01234567"):
        m = _parse(HUB.replace('revision = "main"', f'revision = "{revision}"'))
        assert m.hub[0].revision == revision


def test_cli_refuses_a_repository_over_the_webui_before_any_download(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.toml"
    bad.write_text(VALID.replace('path = "repositories/r"', 'path = "."'), "utf-8")
    target = tmp_path / "d"
    result = subprocess.run([sys.executable, "-m", "sdsetup", "install", str(target), "--manifest", str(bad), "--yes"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "repositories[0].path" in result.stderr and "hint:" in result.stderr and "Traceback" not in result.stderr
    assert not target.exists()


def test_xformers_tags_must_be_among_the_backends_tags():
    text = VALID.replace('tags = ["cpu"]', 'tags = ["cpu"]\nxformers = "xformers==0.0.23"\nxformers_tags = ["cu121"]')
    with pytest.raises(SdsetupError, match=r"torch\.cpu\.xformers_tags\[0\]"):
        _parse(text)
    ok = _parse(text.replace('xformers_tags = ["cu121"]', 'xformers_tags = ["cpu"]'))
    assert ok.torch["cpu"].xformers_tags == ("cpu",) and ok.torch["cpu"].index == "https://download.pytorch.org/whl/{tag}"


# Issue 13 item 4: alternate upstreams per file, safe because every source is checked against one sha256.
def test_a1111_lists_modelscope_as_an_alternate_and_pins_the_clip_tokenizer():
    m = load_manifest("a1111")
    model = m.models[0]
    assert "https://modelscope.cn/models/licyks/sd-model/resolve/master/sd_1.5/v1-5-pruned-emaonly.safetensors" in model.alternates
    hub = m.hub[0]
    assert hub.revision == "32bd64288804d66eefd0ccbe215aa642df71cc41"  # a commit, not main (issue 20)
    # The Hub's compact vocab.json, not Forge's sorted, indented copy (e089ad92…, 1,059,962 B).
    assert hub.sha256_of("vocab.json") == "3f0c4f7d2086b61b38487075278ea9ed04edb53a03cbb045b86c27190fa8fb69"
    assert hub.size_of("vocab.json") == 961143
    assert hub.sha256_of("merges.txt") == "9fd691f7c8039210e0fced15865466c65820d09b63988b0174bfe25de299051a"
    assert hub.size_of("merges.txt") == 524619
    assert hub.sha256_of("special_tokens_map.json") == "f8c0d6c39aee3f8431078ef6646567b0aba7f2246e9c54b8b99d55c22b707cbf"
    assert hub.size_of("special_tokens_map.json") == 389
    assert all(hub.sha256_of(name) for name in hub.files)  # tests/test_pins_hub.py proves each one
    assert hub.files[:2] == ("vocab.json", "merges.txt")


@pytest.mark.parametrize("old, new, key, words", [
    ('files = ["config.json"]', 'files = [{ name = "config.json", sha256 = "ABC" }]', "hub[0].files[0].sha256", "sha256"),
    ('files = ["config.json"]', 'files = [{ name = "config.json", sha = "0" }]', "hub[0].files[0]", "sha"),
    ('files = ["config.json"]', 'files = [{ sha256 = "' + "0" * 64 + '" }]', "hub[0].files[0].name", "missing"),
    ('files = ["config.json"]', 'files = [{ name = "../x", sha256 = "' + "0" * 64 + '" }]', "hub[0].files[0]", "escapes"),
])
def test_bad_hub_file_pins_are_refused(tmp_path, old, new, key, words):
    with pytest.raises(SdsetupError) as info:
        _parse(HUB.replace(old, new, 1))
    assert key in info.value.message and words in (info.value.message + (info.value.hint or ""))


def test_hub_files_take_names_or_pinned_tables():
    text = HUB.replace('files = ["config.json"]',
                                        'files = ["config.json", { name = "vocab.json", sha256 = "' + "a" * 64 + '" }]')
    hub = _parse(text).hub[0]
    assert hub.files == ("config.json", "vocab.json") and hub.sha256_of("vocab.json") == "a" * 64


def test_model_alternates_must_be_urls():
    text = HUB + '\n[[models]]\nname = "m"\npath = "models/m.bin"\nurl = "https://huggingface.co/o/r/resolve/main/m.bin"\n' \
        'sha256 = "' + "b" * 64 + '"\nalternates = ["ftp://x/m.bin"]\n'
    with pytest.raises(SdsetupError) as info:
        _parse(text)
    assert ".alternates[0]" in info.value.message and "http(s)" in info.value.message
