"""The 2026 mirror facts that change behaviour are in the built-in data (docs/mirrors.md, "2026 facts")."""

from __future__ import annotations

from sdsetup.net.mirror_profiles import builtin_toml, parse_catalog


def _cn(channel):
    return {m.name: m for m in parse_catalog(builtin_toml()).profile("cn").channels[channel]}


def test_tsinghua_is_reached_at_the_path_it_documents():
    tuna = _cn("pypi")["tsinghua"]
    assert tuna.url == "https://mirrors.tuna.tsinghua.edu.cn/pypi/web/simple/"
    assert tuna.files == "https://mirrors.tuna.tsinghua.edu.cn/pypi/web/packages/"
    assert tuna.connections == 2


def test_tsinghua_and_ustc_which_forwards_to_it_stay_behind_the_cloud_vendors():
    names = list(_cn("pypi"))
    assert names.index("tsinghua") > max(names.index("aliyun"), names.index("tencent"))
    assert names.index("ustc") > names.index("tsinghua")
