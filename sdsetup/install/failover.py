"""The order in which install tries the sources of one thing (pure)."""

from __future__ import annotations


def failover_order(url_lists: list[tuple[str, ...]]) -> tuple[str, ...]:
    """Mirror URLs of every source first, then the canonical URLs (the last of each list), deduplicated.

    A commit id names the content, so a mirror of a fork is as good as the original, and mirrors are
    what the user asked for; the canonical hosts are the last resort (pure; table-tested)."""
    mirrors = [url for urls in url_lists for url in urls[:-1]]
    canonical = [urls[-1] for urls in url_lists if urls]
    return tuple(dict.fromkeys([*mirrors, *canonical]))


def model_sources(url_lists: list[tuple[str, ...]], alternates: tuple[str, ...]) -> tuple[str, ...]:
    """A pinned file's sources: `failover_order`, with the alternate upstreams (same sha256) after the
    mirrors. When a mirror stands in front of the canonical host, routing found that host unreachable
    (or the user chose so): the alternates go before it; otherwise right after it (pure; table-tested)."""
    ordered = failover_order(url_lists)
    mirrored = any(len(urls) > 1 for urls in url_lists)
    if mirrored:
        canonical = {urls[-1] for urls in url_lists if urls}
        head = [u for u in ordered if u not in canonical]
        tail = [u for u in ordered if u in canonical]
        return tuple(dict.fromkeys([*head, *alternates, *tail]))
    return tuple(dict.fromkeys([*ordered, *alternates]))
