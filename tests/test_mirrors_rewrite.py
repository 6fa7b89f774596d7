"""URL rewriting and the git/pip/web UI arguments a MirrorPlan produces: tables over pure functions."""

from __future__ import annotations

import json

import pytest

from sdsetup.net.mirrors import Mirror, MirrorPlan, RewriteRule, load_catalog, parse_candidate, rewrite_github
from sdsetup.settings import Settings

CATALOG = load_catalog(Settings())
OFFICIAL = dict(CATALOG.profile("official").channels)
CN = dict(CATALOG.profile("cn").channels)

PREFIX = Mirror("github", "p", "https://ghfast.top/", style="prefix")
HOST = Mirror("github", "kk", "https://kkgithub.com/", style="host", raw="https://raw.kkgithub.com/")
HOST_NO_RAW = Mirror("github", "h", "https://gh.example/", style="host")
GIT_ONLY = Mirror("github", "gc", "https://gitclone.com/github.com/", style="host", serves=("git",))


@pytest.mark.parametrize(
    "url, mirror, expected",
    [
        # clone URLs, with and without .git, smart-HTTP paths
        ("https://github.com/AUTOMATIC1111/stable-diffusion-webui.git", PREFIX,
         "https://ghfast.top/https://github.com/AUTOMATIC1111/stable-diffusion-webui.git"),
        ("https://github.com/o/r", HOST, "https://kkgithub.com/o/r"),
        ("https://github.com/o/r.git/info/refs?service=git-upload-pack", PREFIX,
         "https://ghfast.top/https://github.com/o/r.git/info/refs?service=git-upload-pack"),
        ("https://github.com/o/r.git", GIT_ONLY, "https://gitclone.com/github.com/o/r.git"),
        ("http://github.com/o/r.git", HOST, "https://kkgithub.com/o/r.git"),
        # archive zips: github.com form and codeload form (prefix proxies only accept github.com/…/archive)
        ("https://github.com/openai/CLIP/archive/d50d76d.zip", PREFIX,
         "https://ghfast.top/https://github.com/openai/CLIP/archive/d50d76d.zip"),
        ("https://codeload.github.com/openai/CLIP/zip/refs/heads/main", PREFIX,
         "https://ghfast.top/https://github.com/openai/CLIP/archive/refs/heads/main.zip"),
        ("https://codeload.github.com/o/r/tar.gz/v1.0", HOST, "https://kkgithub.com/o/r/archive/v1.0.tar.gz"),
        ("https://github.com/openai/CLIP/archive/d50d76d.zip", GIT_ONLY, None),
        # release assets
        ("https://github.com/o/r/releases/download/v1/model.pth", PREFIX,
         "https://ghfast.top/https://github.com/o/r/releases/download/v1/model.pth"),
        ("https://github.com/o/r/releases/download/v1/model.pth", HOST, "https://kkgithub.com/o/r/releases/download/v1/model.pth"),
        # raw files: both the raw host and github.com/…/raw/…
        ("https://raw.githubusercontent.com/o/r/main/dir/file.txt", PREFIX,
         "https://ghfast.top/https://raw.githubusercontent.com/o/r/main/dir/file.txt"),
        ("https://raw.githubusercontent.com/o/r/main/dir/file.txt", HOST, "https://raw.kkgithub.com/o/r/main/dir/file.txt"),
        ("https://raw.githubusercontent.com/o/r/main/dir/file.txt", HOST_NO_RAW, "https://gh.example/o/r/raw/main/dir/file.txt"),
        ("https://github.com/o/r/raw/main/file.txt", PREFIX, "https://ghfast.top/https://github.com/o/r/raw/main/file.txt"),
        ("https://raw.githubusercontent.com/o/r/main/file.txt", GIT_ONLY, None),
        # other GitHub pages: only a full host-style mirror serves them
        ("https://github.com/o/r/blob/main/README.md", PREFIX, None),
        ("https://github.com/o/r/blob/main/README.md", HOST, "https://kkgithub.com/o/r/blob/main/README.md"),
        # not GitHub, or not a repository URL
        ("https://gitlab.com/o/r.git", PREFIX, None),
        ("https://github.com/", PREFIX, None),
        ("https://objects.githubusercontent.com/github-production-release-asset/1?sig=x", PREFIX, None),
        ("https://user:tok@github.com/o/r.git", PREFIX, None),
    ],
)
def test_github_rewriting(url, mirror, expected):
    assert rewrite_github(url, mirror) == expected


STALL = ["-c", "http.lowSpeedLimit=1000", "-c", "http.lowSpeedTime=60"]


def _plan(profile="cn", **kw):
    channels = {"official": OFFICIAL, "cn": CN}[profile]
    return MirrorPlan(profile=profile, channels=channels, **kw)


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://huggingface.co/openai/clip-vit-large-patch14/resolve/main/config.json",
         ("https://hf-mirror.com/openai/clip-vit-large-patch14/resolve/main/config.json",
          "https://huggingface.co/openai/clip-vit-large-patch14/resolve/main/config.json")),
        ("https://hf.co/datasets/x/y/resolve/abc123/a%20b.bin",
         ("https://hf-mirror.com/datasets/x/y/resolve/abc123/a%20b.bin", "https://hf.co/datasets/x/y/resolve/abc123/a%20b.bin")),
        ("https://download.pytorch.org/whl/cu121/torch-2.1.2%2Bcu121-cp310-cp310-linux_x86_64.whl",
         ("https://mirror.nju.edu.cn/pytorch/whl/cu121/torch-2.1.2%2Bcu121-cp310-cp310-linux_x86_64.whl",
          "https://mirrors.aliyun.com/pytorch-wheels/cu121/torch-2.1.2%2Bcu121-cp310-cp310-linux_x86_64.whl",
          "https://download.pytorch.org/whl/cu121/torch-2.1.2%2Bcu121-cp310-cp310-linux_x86_64.whl")),
        ("https://files.pythonhosted.org/packages/ab/cd/six-1.16.0-py2.py3-none-any.whl",
         ("https://mirrors.aliyun.com/pypi/packages/ab/cd/six-1.16.0-py2.py3-none-any.whl",
          "https://mirrors.tuna.tsinghua.edu.cn/pypi/web/packages/ab/cd/six-1.16.0-py2.py3-none-any.whl",
          "https://files.pythonhosted.org/packages/ab/cd/six-1.16.0-py2.py3-none-any.whl")),
        ("https://github.com/o/r/releases/download/v1/x.pth",
         ("https://ghfast.top/https://github.com/o/r/releases/download/v1/x.pth",
          "https://gh-proxy.org/https://github.com/o/r/releases/download/v1/x.pth",
          "https://hk.gh-proxy.org/https://github.com/o/r/releases/download/v1/x.pth",
          "https://wget.la/https://github.com/o/r/releases/download/v1/x.pth",
          "https://ghproxy.net/https://github.com/o/r/releases/download/v1/x.pth",  # release files only
          "https://github.com/o/r/releases/download/v1/x.pth")),
        # a torch URL without a tag directory and an unknown host: nothing to rewrite
        ("https://download.pytorch.org/whl/torch_stable.html", ("https://download.pytorch.org/whl/torch_stable.html",)),
        ("https://civitai.com/api/download/models/1", ("https://civitai.com/api/download/models/1",)),
    ],
)
def test_file_urls_cn_mirrors_first_canonical_last(url, expected):
    assert _plan("cn").file_urls(url) == expected


def test_official_profile_leaves_every_url_alone():
    plan = _plan("official")
    for url in ("https://github.com/o/r.git", "https://huggingface.co/a/b/resolve/main/c",
                "https://download.pytorch.org/whl/cpu/torch-2.1.0.whl", "https://raw.githubusercontent.com/o/r/main/f"):
        assert plan.file_urls(url) == (url,)
    assert plan.git_config_args() == STALL and plan.webui_env() == {} and plan.mirrored_channels == []


def test_canonical_url_stays_last_even_when_a_profile_lists_the_official_host_first():
    channels = dict(CN, github=(OFFICIAL["github"][0], PREFIX))
    plan = MirrorPlan("mixed", channels)
    assert plan.file_urls("https://github.com/o/r/archive/x.zip") == (
        "https://ghfast.top/https://github.com/o/r/archive/x.zip", "https://github.com/o/r/archive/x.zip")


def test_user_rewrite_rules_apply_first_to_any_host():
    plan = _plan("cn", rewrites=(RewriteRule("https://civitai.com/api/", "https://civitai-mirror.example/api/"),
                                 RewriteRule("https://huggingface.co/", "https://corp.example/hf/")))
    assert plan.file_urls("https://civitai.com/api/download/models/1") == (
        "https://civitai-mirror.example/api/download/models/1", "https://civitai.com/api/download/models/1")
    assert plan.file_urls("https://huggingface.co/a/b/resolve/main/c")[:2] == (
        "https://corp.example/hf/a/b/resolve/main/c", "https://hf-mirror.com/a/b/resolve/main/c")


def test_git_urls_rewrite_clone_urls_only():
    plan = _plan("cn")
    urls = plan.git_urls("https://github.com/o/r.git")
    assert urls[0] == "https://ghfast.top/https://github.com/o/r.git"
    assert "https://githubfast.com/o/r.git" in urls and "https://gitclone.com/github.com/o/r.git" in urls
    assert not any("ghproxy.net" in u or "kkgithub" in u for u in urls)  # release-only / dropped
    assert urls[-1] == "https://github.com/o/r.git"
    assert plan.git_urls("https://gitlab.com/o/r.git") == ("https://gitlab.com/o/r.git",)


@pytest.mark.parametrize(
    "first, expected",
    [
        (PREFIX, ["-c", "url.https://ghfast.top/https://github.com/.insteadOf=https://github.com/"]),
        (HOST, ["-c", "url.https://kkgithub.com/.insteadOf=https://github.com/"]),
        (GIT_ONLY, ["-c", "url.https://gitclone.com/github.com/.insteadOf=https://github.com/"]),
    ],
)
def test_git_insteadof_uses_the_first_git_capable_candidate(first, expected):
    plan = MirrorPlan("x", dict(CN, github=(first, PREFIX)))
    assert plan.git_config_args() == STALL + expected
    assert plan.git_config_args(insteadof=False) == STALL
    assert plan.git_env()["GIT_TERMINAL_PROMPT"] == "0"


def test_proxy_without_password_goes_on_the_command_line():
    plan = _plan("official", proxy="http://127.0.0.1:7890")
    assert plan.git_config_args() == STALL + ["-c", "http.proxy=http://127.0.0.1:7890"]
    assert plan.pip_index_args() == ["--index-url", "https://pypi.org/simple/", "--proxy", "http://127.0.0.1:7890"]
    assert "GIT_CONFIG_COUNT" not in plan.git_env()


def test_proxy_with_password_stays_off_argv_and_out_of_json():
    proxy = "http://alice:canary-S3cret@10.0.0.1:3128"
    plan = _plan("cn", proxy=proxy)
    argv = plan.git_config_args() + plan.pip_index_args() + plan.torch_index_args("cu121")
    assert not any("canary-S3cret" in arg for arg in argv)
    assert plan.git_env()["GIT_CONFIG_KEY_0"] == "http.proxy" and plan.git_env()["GIT_CONFIG_VALUE_0"] == proxy
    assert plan.pip_env() == {"PIP_PROXY": proxy}
    doc = json.dumps(plan.to_json())
    assert "canary-S3cret" not in doc and "alice:***@10.0.0.1:3128" in doc
    assert all("canary-S3cret" not in w for w in plan.warnings)
    assert plan.proxy_has_credentials


@pytest.mark.parametrize(
    "torch_mirror, tag, expected",
    [
        (Mirror("torch", "nju", "https://mirror.nju.edu.cn/pytorch/whl/{tag}/", layout="simple"), "cu121",
         ["--extra-index-url", "https://mirror.nju.edu.cn/pytorch/whl/cu121/"]),
        (Mirror("torch", "ali", "https://mirrors.aliyun.com/pytorch-wheels/{tag}/", layout="find-links"), "cu128",
         ["--find-links", "https://mirrors.aliyun.com/pytorch-wheels/cu128/"]),
        (Mirror("torch", "corp", "http://pypi.corp:8080/torch/{tag}/", layout="simple"), "rocm6.1",
         ["--extra-index-url", "http://pypi.corp:8080/torch/rocm6.1/", "--trusted-host", "pypi.corp:8080"]),
        (OFFICIAL["torch"][0], "cpu", ["--extra-index-url", "https://download.pytorch.org/whl/cpu/"]),
    ],
)
def test_torch_index_args_follow_the_mirror_layout(torch_mirror, tag, expected):
    assert MirrorPlan("x", dict(CN, torch=(torch_mirror,))).torch_index_args(tag) == expected


def test_torch_tag_is_validated():
    with pytest.raises(Exception, match="not a torch wheel tag"):
        _plan("cn").torch_index_args("../evil")


def test_pip_index_is_the_primary_index_not_an_extra_one():
    args = _plan("cn").pip_index_args()
    assert args == ["--index-url", "https://mirrors.aliyun.com/pypi/simple/"]


def test_webui_env_for_cn_and_a_proxy():
    env = _plan("cn", proxy="socks5h://127.0.0.1:1080").webui_env(torch_tag="cu121")
    assert env["HF_ENDPOINT"] == "https://hf-mirror.com" and env["HF_HUB_DISABLE_XET"] == "1"
    assert env["PIP_INDEX_URL"] == "https://mirrors.aliyun.com/pypi/simple/"
    assert env["TORCH_INDEX_URL"] == "https://mirror.nju.edu.cn/pytorch/whl/cu121/"
    assert env["HTTPS_PROXY"] == env["HTTP_PROXY"] == "socks5h://127.0.0.1:1080"
    assert "127.0.0.1" in env["NO_PROXY"]
    assert env["GIT_CONFIG_COUNT"] == "1"
    assert env["GIT_CONFIG_KEY_0"] == "url.https://ghfast.top/https://github.com/.insteadOf"
    assert env["GIT_CONFIG_VALUE_0"] == "https://github.com/"
    flat = MirrorPlan("x", dict(CN, torch=(CN["torch"][1],))).webui_env(torch_tag="cu121")
    assert flat["PIP_FIND_LINKS"] == "https://mirrors.aliyun.com/pytorch-wheels/cu121/" and "TORCH_INDEX_URL" not in flat


def test_hf_mirror_only_sets_endpoint_and_disables_xet():
    plan = MirrorPlan("x", dict(OFFICIAL, huggingface=CN["huggingface"]))
    assert plan.webui_env() == {"HF_ENDPOINT": "https://hf-mirror.com", "HF_HUB_DISABLE_XET": "1"}
    assert plan.hf_endpoint == "https://hf-mirror.com"


def test_warning_when_proxy_and_mirror_are_both_active():
    assert _plan("official", proxy="http://127.0.0.1:1").warnings == []
    assert _plan("cn").warnings == []
    (warning,) = _plan("cn", proxy="http://u:pw-canary@127.0.0.1:1").warnings
    assert "both active" in warning and "pw-canary" not in warning and "--mirror official" in warning
    assert _plan("cn", env_proxy=True).warnings


def test_socks_proxy_flags_pysocks_for_pip():
    assert _plan("official", proxy="socks5h://127.0.0.1:1080").pip_needs_pysocks
    assert not _plan("official", proxy="http://127.0.0.1:3128").pip_needs_pysocks


def test_single_base_layout_for_every_channel():
    plan = MirrorPlan.single_base("http://192.168.1.5:8000/sd/")
    assert plan.pip_index_args() == ["--index-url", "http://192.168.1.5:8000/sd/pypi/simple/", "--trusted-host", "192.168.1.5:8000"]
    assert plan.torch_index_args("cu121")[:2] == ["--extra-index-url", "http://192.168.1.5:8000/sd/torch/cu121/"]
    assert plan.git_urls("https://github.com/o/r.git")[0] == "http://192.168.1.5:8000/sd/git/o/r.git"
    assert plan.file_urls("https://github.com/o/r/archive/abc.zip")[0] == "http://192.168.1.5:8000/sd/git/o/r/archive/abc.zip"
    assert plan.file_urls("https://raw.githubusercontent.com/o/r/abc/f.py")[0] == "http://192.168.1.5:8000/sd/raw/o/r/abc/f.py"
    assert plan.file_urls("https://huggingface.co/a/b/resolve/rev/f.json")[0] == "http://192.168.1.5:8000/sd/hf/a/b/resolve/rev/f.json"
    assert plan.file_urls("https://files.pythonhosted.org/packages/x/y.whl")[0] == "http://192.168.1.5:8000/sd/pypi/packages/x/y.whl"
    assert plan.hf_endpoint == "http://192.168.1.5:8000/sd/hf"
    local = MirrorPlan.single_base("file:///media/usb/bundle")
    assert local.file_urls("https://huggingface.co/a/b/resolve/r/f")[0] == "file:///media/usb/bundle/hf/a/b/resolve/r/f"


def test_string_candidates_take_the_channel_defaults():
    assert parse_candidate("torch", "https://m/whl/{tag}", "x", "k").layout == "simple"
    github = parse_candidate("github", "https://proxy.example", "x", "k")
    assert github.style == "prefix" and github.url == "https://proxy.example/" and github.name == "proxy.example"
