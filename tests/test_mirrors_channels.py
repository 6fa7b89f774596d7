"""Each channel goes where the profile says, through the proxy when one is set: real git, real pip,
real HTTP against local servers (git http-backend, a PEP 503 tree, an HF resolve tree, a forward proxy)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdsetup.net.mirrors import select_mirrors
from sdsetup.net.session import build_session
from sdsetup.settings import load_settings
from tests.servers.gitserver import serve_git
from tests.servers.proxy import serve_proxy
from tests.servers.pypi_index import (
    build_wheel,
    serve_tree,
    sha256_of,
    write_find_links_page,
    write_hf_tree,
    write_simple_index,
)

PASSWORD = "canary-Pw-7731"
HF_COMMIT = "c" * 40


@pytest.fixture(scope="module")
def mirror_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("mirror")
    wheels = tmp_path_factory.mktemp("wheels")
    tiny = build_wheel(wheels, "tinypkg", "1.0")
    torchlike = build_wheel(wheels, "torchlike", "2.0")
    write_simple_index(root / "pypi" / "simple", [tiny], root / "pypi" / "packages")
    write_simple_index(root / "torch" / "cpu", [torchlike], root / "torch" / "cpu")
    write_find_links_page(root / "torch-flat" / "cpu", [torchlike])
    write_hf_tree(root / "hf", "openai/clip-vit-large-patch14", "main", {"config.json": b'{"model_type": "clip"}\n'})
    return root, {"tinypkg": sha256_of(tiny), "torchlike": sha256_of(torchlike)}


@pytest.fixture(scope="module")
def servers(mirror_tree, tmp_path_factory):
    root, hashes = mirror_tree
    with serve_tree(root, repo_commit=HF_COMMIT) as tree, serve_git(tmp_path_factory.mktemp("git")) as git:
        sha = git.create_repo("owner/repo", {"README.md": "hello from the mirror\n"})
        yield {"tree": tree, "git": git, "sha": sha, "hashes": hashes}


def _plan(tmp_path, servers, *, github_style="prefix", torch_layout="simple", proxy=None):
    base = servers["tree"].base_url
    git = servers["git"]
    github_url = git.prefix_base if github_style == "prefix" else git.host_base
    torch_url = f"{base}/torch/{{tag}}/" if torch_layout == "simple" else f"{base}/torch-flat/{{tag}}/"
    config = tmp_path / "config.toml"
    config.write_text(
        "[profiles.local]\n"
        f'pypi = ["{base}/pypi/simple/"]\n'
        f'torch = [{{ url = "{torch_url}", layout = "{torch_layout}" }}]\n'
        f'github = [{{ url = "{github_url}", style = "{github_style}" }}]\n'
        f'huggingface = ["{base}/hf"]\n'
    )
    flags = {"mirror": ["local"], "proxy": proxy}
    return select_mirrors(load_settings(flags, {"SDSETUP_CONFIG": str(config)}), env={})


def _git(plan, *args, cwd=None, extra_env=None):
    env = dict(os.environ, **plan.git_env(), **(extra_env or {}))
    return subprocess.run(["git", *plan.git_config_args(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("style", ["prefix", "host"])
def test_git_clone_of_a_github_url_goes_to_the_mirror(tmp_path, servers, style):
    servers["git"].clear()
    plan = _plan(tmp_path, servers, github_style=style)
    result = _git(plan, "clone", "-q", "https://github.com/owner/repo.git", str(tmp_path / "clone"))
    assert result.returncode == 0, result.stderr
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path / "clone", capture_output=True, text=True).stdout.strip()
    assert head == servers["sha"]
    assert (tmp_path / "clone" / "README.md").read_text() == "hello from the mirror\n"
    assert {r["style"] for r in servers["git"].requests} == {style}


def test_git_clone_through_an_authenticating_proxy(tmp_path, servers):
    servers["git"].clear()
    with serve_proxy("alice", PASSWORD) as proxy:
        plan = _plan(tmp_path, servers, github_style="host", proxy=proxy.url)
        assert not any(PASSWORD in arg for arg in plan.git_config_args())  # the password travels in git_env
        result = _git(plan, "clone", "-q", "https://github.com/owner/repo", str(tmp_path / "clone"))
        assert result.returncode == 0, result.stderr
        seen = proxy.requests
    assert seen and all(r["authorized"] or r["status"] == 407 for r in seen)
    assert any(r["target"].endswith("/kk/owner/repo/info/refs?service=git-upload-pack") and r["status"] == 200 for r in seen)
    assert len(servers["git"].requests) == len([r for r in seen if r["status"] == 200])  # nothing bypassed the proxy
    assert PASSWORD not in result.stdout + result.stderr


def test_git_fails_fast_instead_of_prompting_for_a_missing_repo(tmp_path, servers):
    plan = _plan(tmp_path, servers, github_style="host")
    env_without_prompt_guard = {k: v for k, v in os.environ.items() if k != "GIT_TERMINAL_PROMPT"}
    result = subprocess.run(
        ["git", *plan.git_config_args(), "clone", "-q", "https://github.com/owner/missing.git", str(tmp_path / "x")],
        env={**env_without_prompt_guard, **plan.git_env()}, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )
    assert result.returncode != 0 and not (tmp_path / "x" / ".git").exists()


def test_webui_env_sends_the_web_uis_own_git_to_the_mirror(tmp_path, servers):
    """A1111 clones its repositories itself at launch: the env form of insteadOf must reach that git."""
    servers["git"].clear()
    plan = _plan(tmp_path, servers, github_style="prefix")
    env = dict(os.environ, **plan.webui_env())
    result = subprocess.run(["git", "clone", "-q", "https://github.com/owner/repo.git", str(tmp_path / "c")],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert {r["style"] for r in servers["git"].requests} == {"prefix"}


def _pip_download(args, env_extra, dest):
    env = dict(os.environ, **env_extra)
    return subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "-d", str(dest), *args],
        env=env, capture_output=True, text=True, timeout=120,
    )


def test_pip_downloads_from_the_mirror_index_through_the_proxy(tmp_path, servers):
    with serve_proxy("alice", PASSWORD) as proxy:
        plan = _plan(tmp_path, servers, proxy=proxy.url)
        args = ["tinypkg==1.0", *plan.pip_index_args()]
        assert "--index-url" in args and "--extra-index-url" not in args
        result = _pip_download(args, plan.pip_env(), tmp_path / "dl")
        seen = proxy.requests
    assert result.returncode == 0, result.stdout + result.stderr
    wheel = tmp_path / "dl" / "tinypkg-1.0-py3-none-any.whl"
    assert sha256_of(wheel) == servers["hashes"]["tinypkg"]
    targets = [r["target"] for r in seen if r["status"] == 200]
    assert any(t.endswith("/pypi/simple/tinypkg/") for t in targets)
    assert any(t.endswith("/pypi/packages/tinypkg-1.0-py3-none-any.whl") for t in targets)
    assert PASSWORD not in result.stdout + result.stderr


@pytest.mark.parametrize("layout", ["simple", "find-links"])
def test_pip_finds_torch_wheels_on_both_mirror_layouts(tmp_path, servers, layout):
    with serve_proxy() as proxy:  # a proxy without a password goes on the command line
        plan = _plan(tmp_path, servers, torch_layout=layout, proxy=proxy.url)
        args = ["torchlike==2.0", *plan.pip_index_args(), *plan.torch_index_args("cpu")]
        assert ("--find-links" in args) == (layout == "find-links")
        result = _pip_download(args, {}, tmp_path / "dl")
        seen = proxy.requests
    assert result.returncode == 0, result.stdout + result.stderr
    assert sha256_of(tmp_path / "dl" / "torchlike-2.0-py3-none-any.whl") == servers["hashes"]["torchlike"]
    folder = "/torch/cpu/" if layout == "simple" else "/torch-flat/cpu/"
    assert any(folder in r["target"] and r["target"].endswith(".whl") for r in seen)


def test_hf_resolve_file_goes_to_the_mirror_through_the_proxy(tmp_path, servers):
    canonical = "https://huggingface.co/openai/clip-vit-large-patch14/resolve/main/config.json"
    with serve_proxy("alice", PASSWORD) as proxy:
        plan = _plan(tmp_path, servers, proxy=proxy.url)
        urls = plan.file_urls(canonical)
        assert urls[-1] == canonical and urls[0].startswith(servers["tree"].base_url + "/hf/")
        session = build_session(load_settings({"proxy": proxy.url}, {}))
        response = session.get(urls[0], timeout=10)
        seen = proxy.requests
    assert response.status_code == 200 and response.content == b'{"model_type": "clip"}\n'
    assert response.headers["X-Repo-Commit"] == HF_COMMIT
    assert [r["target"] for r in seen if r["status"] == 200] == [urls[0]]


def test_webui_env_points_huggingface_hub_at_the_mirror(tmp_path, servers):
    plan = _plan(tmp_path, servers)
    env = dict(os.environ, **plan.webui_env(), HF_HOME=str(tmp_path / "hf-home"))
    assert env["HF_HUB_DISABLE_XET"] == "1"
    code = "from huggingface_hub import hf_hub_download; print(hf_hub_download('openai/clip-vit-large-patch14', 'config.json'))"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip().splitlines()[-1])
    assert path.read_bytes() == b'{"model_type": "clip"}\n' and HF_COMMIT in str(path)


def _has_command(name: str) -> bool:
    from sdsetup import cli

    return any((c.name or c.callback.__name__) == name for c in cli.app.registered_commands)


@pytest.mark.skipif(not _has_command("fetch"), reason="the `fetch` command (issue 3) is not in the CLI yet")
def test_fetch_of_a_hugging_face_url_comes_from_the_profile_mirror_through_the_proxy(tmp_path, servers):
    """The user names the canonical URL; the profile's mirror serves it, through the proxy (which only
    reaches 127.0.0.1, so the canonical host is never contacted)."""
    canonical = "https://huggingface.co/openai/clip-vit-large-patch14/resolve/main/config.json"
    _plan(tmp_path, servers)  # writes tmp_path/config.toml with the `local` profile
    out = tmp_path / "out" / "config.json"
    with serve_proxy("alice", PASSWORD) as proxy:
        result = subprocess.run(
            [sys.executable, "-m", "sdsetup", "fetch", canonical, "-o", str(out), "--mirror", "local",
             "--config", str(tmp_path / "config.toml"), "--proxy", proxy.url, "--json"],
            capture_output=True, text=True, timeout=120,
        )
        seen = proxy.requests
    assert result.returncode == 0, result.stdout + result.stderr
    assert out.read_bytes() == b'{"model_type": "clip"}\n'
    mirrored = servers["tree"].url("/hf/openai/clip-vit-large-patch14/resolve/main/config.json")
    assert {r["target"] for r in seen if r["status"] in (200, 206)} == {mirrored}
    assert PASSWORD not in result.stdout + result.stderr
