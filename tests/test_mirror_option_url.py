"""`--mirror URL` is one base URL for every channel, even when the URL's query holds an `=`."""

from __future__ import annotations

import pytest

from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.settings import parse_mirror_option


@pytest.mark.parametrize("url", ["https://h.example/b?x=1", "http://h.example/a=b/", "file:///srv/bundle?k=v"])
def test_a_url_with_an_equals_sign_is_a_base_url_not_channel_equals_url(url):
    assert parse_mirror_option([url]) == (url, ())


def test_channel_equals_url_still_splits():
    assert parse_mirror_option(["pypi=https://p.example/simple/?x=1"]) == (None, (("pypi", "https://p.example/simple/?x=1"),))


def test_a_base_url_with_a_query_is_refused_for_its_query_not_as_an_unknown_channel():
    from sdsetup.net.mirrors import MirrorPlan

    profile, _ = parse_mirror_option(["https://h.example/b?x=1"])
    with pytest.raises(SdsetupError) as info:
        MirrorPlan.single_base(profile)
    assert info.value.exit_code == ExitCode.USAGE
    assert "query" in info.value.message and "channel" not in info.value.message
