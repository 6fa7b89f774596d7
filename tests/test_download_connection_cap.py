"""A mirror that caps connections (university PyPI mirrors: at most 2, `connections` in mirrors.toml,
`MirrorPlan.connection_cap`) gets no more from the engine, however many --connections asks for."""

from __future__ import annotations

import hashlib
import os

import pytest

from sdsetup.net.download import download
from sdsetup.net.filespec import FileSpec
from sdsetup.net.mirror_profiles import Mirror
from sdsetup.net.mirrors import MirrorPlan
from sdsetup.net.retry import RetryPolicy
from sdsetup.net.session import build_session
from sdsetup.settings import Settings
from tests.servers.fileserver import FileServer

MiB = 1024 * 1024


def _connections_used(tmp_path, cap):
    root = tmp_path / "www"
    root.mkdir()
    data = os.urandom(24 * MiB)
    (root / "torch.whl").write_bytes(data)
    settings = Settings(cache_dir=tmp_path / "cache", connections=8, timeout=30.0, quiet=True)
    with FileServer(root, rate=12 * MiB) as fs:
        spec = FileSpec((fs.url("torch.whl"),), tmp_path / "out" / "torch.whl", sha256=hashlib.sha256(data).hexdigest(),
                        max_connections=cap)
        result = download(spec, build_session(settings), settings, progress=False, policy=RetryPolicy(tries=4, base=0.05, cap=0.5))
        assert result.path.read_bytes() == data
        return len({r.client for r in fs.requests("/torch.whl", method="GET")})


def test_a_capped_source_gets_at_most_its_cap_of_connections(tmp_path):
    assert _connections_used(tmp_path, 2) <= 2


def test_without_a_cap_the_same_file_uses_more_connections(tmp_path):
    assert _connections_used(tmp_path, None) > 2  # the cap above is what holds the count down


def test_the_plan_gives_the_tightest_cap_among_a_files_sources():
    pypi = (Mirror("pypi", "tuna", "https://pypi.tuna.example/simple/", files="https://pypi.tuna.example/packages/", connections=2),
            Mirror("pypi", "pypi.org", "https://pypi.org/simple/", files="https://files.pythonhosted.org/packages/"))
    plan = MirrorPlan(profile="t", channels={"pypi": pypi, "torch": (), "github": (), "huggingface": ()})
    assert plan.connection_cap_for(("https://pypi.tuna.example/packages/a/b/torch.whl", "https://files.pythonhosted.org/packages/a/b/torch.whl")) == 2
    assert plan.connection_cap_for(("https://files.pythonhosted.org/packages/a/b/torch.whl",)) is None
