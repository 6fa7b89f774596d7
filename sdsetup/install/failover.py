"""The order in which install tries the sources of one thing (pure)."""

from __future__ import annotations


def failover_order(url_lists: list[tuple[str, ...]]) -> tuple[str, ...]:
    """Mirror URLs of every source first, then the canonical URLs (the last of each list), deduplicated.

    A commit id names the content, so a mirror of a fork is as good as the original, and mirrors are
    what the user asked for; the canonical hosts are the last resort (pure; table-tested)."""
    mirrors = [url for urls in url_lists for url in urls[:-1]]
    canonical = [urls[-1] for urls in url_lists if urls]
    return tuple(dict.fromkeys([*mirrors, *canonical]))
