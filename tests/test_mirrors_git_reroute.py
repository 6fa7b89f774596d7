"""Git re-routes mid-flight (issue 21 item 3): a clone source that crawls while another is left is stopped
and the next one continues, in one line; a slow source that is the only one that serves is still used."""

from __future__ import annotations

import os
import time

from bench.slowlink import SlowLink
from sdsetup.gitops import GitRunner, checkout_pinned
from tests.servers.gitserver import serve_git


def _slow_url(git, link: SlowLink, repo: str) -> str:
    port = git.url("").split(":")[2].split("/")[0]
    return git.url(repo).replace(f":{port}/", f":{link.port}/")


def test_a_crawling_git_source_is_left_for_the_next_one_with_one_line(tmp_path):
    with serve_git(tmp_path / "git") as git:
        sha = git.create_repo("o/r", {"big.bin": os.urandom(400_000).hex()})  # ~400 KB of pack
        port = int(git.url("").split(":")[2].split("/")[0])
        with SlowLink(("127.0.0.1", port), rate=20_000) as link:
            said: list[str] = []
            started = time.monotonic()
            result = checkout_pinned(tmp_path / "r", [_slow_url(git, link, "o/r.git"), git.url("o/r.git")], sha,
                                     runner=GitRunner(), name="r", say=said.append, slow_floor=(64 * 1024, 2))
            seconds = time.monotonic() - started
    assert result.url == git.url("o/r.git") and result.commit == sha
    assert (tmp_path / "r" / "big.bin").is_file()
    assert seconds < 20, seconds  # kept on the crawling source, 800 KB at 20 KB/s would take 40 s
    assert len(said) == 1 and said[0].startswith(f"127.0.0.1:{link.port} under ") and f"→ 127.0.0.1:{port}" in said[0]
    assert [a.get("kind") for a in result.attempts if not a["ok"]] == ["slow"]


def test_a_slow_source_that_alone_serves_the_commit_is_used_patiently(tmp_path):
    with serve_git(tmp_path / "git") as git:
        sha = git.create_repo("o/r", {"big.bin": os.urandom(60_000).hex()})
        port = int(git.url("").split(":")[2].split("/")[0])
        with SlowLink(("127.0.0.1", port), rate=30_000) as link:
            said: list[str] = []
            result = checkout_pinned(tmp_path / "r", [_slow_url(git, link, "o/r.git"), git.url("gone/r.git")], sha,
                                     runner=GitRunner(), name="r", say=said.append, slow_floor=(64 * 1024, 1), backoff=0.01)
    assert result.commit == sha and result.url.endswith("/o/r.git") and f":{link.port}/" in result.url
    assert len(said) == 1
