"""When to try again and how long to wait: exponential backoff with jitter, `Retry-After` honoured.

Pure functions; the download engine keeps one failure count per source and resets it whenever bytes
arrive, so a link that drops every minute keeps going while a dead one is given up on.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

# Statuses worth another try on the same source: overloaded, rate-limited, a proxy's hiccup.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524})
# Statuses that say the source does not have (or will not give) this file.
GONE_STATUSES = frozenset({401, 403, 404, 410, 451})


@dataclass(frozen=True)
class RetryPolicy:
    """`tries` failures in a row without a byte arriving give up on a source."""

    tries: int = 8
    base: float = 0.25  # first wait, doubled each time
    cap: float = 15.0  # longest backoff
    max_retry_after: float = 120.0  # a longer Retry-After gives the source up instead of sleeping for it

    def delay(self, failures: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait after the `failures`-th failure in a row (1-based)."""
        return backoff_delay(failures, self, retry_after, rng)


DEFAULT_POLICY = RetryPolicy()


def backoff_delay(
    failures: int, policy: RetryPolicy = DEFAULT_POLICY, retry_after: float | None = None, rng: random.Random | None = None
) -> float:
    """Exponential backoff with "equal jitter" (half fixed, half random), never less than Retry-After."""
    rng = rng or random
    exponent = max(0, failures - 1)
    ceiling = min(policy.cap, policy.base * (2 ** min(exponent, 30)))
    delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.max_retry_after))
    return delay


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def classify_status(status: int) -> str:
    """'ok' (200/206), 'retry' (try the same source again later), 'gone' (this source will not serve
    the file), or 'fail' (anything else: give the source up)."""
    if status in (200, 206):
        return "ok"
    if status in RETRY_STATUSES:
        return "retry"
    if status in GONE_STATUSES:
        return "gone"
    return "fail"
