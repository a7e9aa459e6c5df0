"""Per-key rate limits: fixed one-minute windows counted in Redis, shared by every worker.

The count itself is kept in Redis by service.store.rate_counters (taken in small leases); this
module holds the window arithmetic and the headers, so it needs neither Flask nor Redis.
A fixed window lets a client send up to twice the limit across a window boundary; for a
per-minute budget protecting a cached API that is an acceptable price for its cheapness.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Window:
    index: int  # which minute since the epoch
    reset_seconds: int  # whole seconds until the window ends (1..60)
    ttl_seconds: int  # how long the counter must live


def window_at(moment: datetime) -> Window:
    epoch = moment.timestamp()
    index = int(epoch // WINDOW_SECONDS)
    ends = (index + 1) * WINDOW_SECONDS
    reset = max(1, int(-(-(ends - epoch) // 1)))  # ceil, at least 1
    return Window(index=index, reset_seconds=reset, ttl_seconds=WINDOW_SECONDS + 5)


def headers(limit: int, remaining: int, reset_seconds: int, allowed: bool) -> dict[str, str]:
    result = {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": str(reset_seconds),
    }
    if not allowed:
        result["Retry-After"] = str(reset_seconds)
    return result


def limit_for(kind: str, per_minute: int, ingest_per_minute: int) -> int:
    """Ingest calls (up to a whole batch each) have their own, smaller budget."""
    # A TLS-RPT intake token posts reports as an ingest key posts batches.
    return ingest_per_minute if kind in ("ingest", "tlsrpt-intake") else per_minute
