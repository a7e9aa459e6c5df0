"""Pages of the insight feed as cached views, the default first page kept in each process.

A dashboard's first call, and a SIEM's first poll, ask for the first page with the default
parameters. Each API process keeps that page in its near cache under the name of the
tenant's insights hash; the script that applies an evaluation publishes that name whenever
it ran, so the copy is dropped the moment any insight changes. Every other page (a cursor,
``updated_after``, another state or limit) is read from Redis.
"""

from __future__ import annotations

from typing import Any

import redis

from service.core.paging import decode_cursor, encode_cursor, query_digest, state_int
from service.reports.view_cache import serialise
from service.store import insights_store, keys, near_cache
from service.store.cursor_secret import CursorSecret
from service.store.views import CachedView

DEFAULT_STATE = "active"
DEFAULT_LIMIT = 100
FIELDS = ("id", "rule", "title", "severity", "state", "direction", "connector", "window",
          "measured", "threshold", "first_detected_at", "last_detected_at", "resolved_at",
          "updated_at", "sequence", "recommendation", "links", "subject")  # fmt: skip


# Documented fields only some insights have: a TLS-RPT insight's policy domain and result type.
OPTIONAL_FIELDS = ("tlsrpt",)


def public(document: dict[str, Any]) -> dict[str, Any]:
    """What clients see of an insight: the documented fields, nothing internal."""
    shown = {name: document.get(name) for name in FIELDS}
    shown.update({name: document[name] for name in OPTIONAL_FIELDS if name in document})
    if shown["subject"] is None and shown["connector"] is not None:  # a connector rule's
        shown["subject"] = {"kind": "connector", "name": shown["connector"]["name"]}
    return shown


def digest(state: str, updated_after_ms: int | None) -> str:
    """What a cursor is bound to: the parameters that define the feed it walks."""
    return query_digest({"state": state, "updated_after": updated_after_ms})


def after_sequence_of(
    client: redis.Redis,
    tenant: str,
    cursor_secret: CursorSecret,
    cursor: str,
    state: str,
    updated_after_ms: int | None,
) -> int:
    """The feed sequence a cursor continues after; CursorError unless this service issued the
    cursor to ``tenant`` for this state and ``updated_after``."""
    query = digest(state, updated_after_ms)
    position = cursor_secret.verified(
        client, lambda secret: decode_cursor(secret, tenant, cursor, query)
    )
    return state_int(position, "s", 0)


def feed_page(
    client: redis.Redis,
    tenant: str,
    cursor_secret: CursorSecret,
    state: str,
    limit: int,
    after_sequence: int = 0,
    updated_after_ms: int | None = None,
) -> CachedView:
    """The page of insights after ``after_sequence`` (0: the first page)."""

    def load() -> CachedView:
        page = insights_store.read_feed(client, tenant, after_sequence, limit,
                                        None if state == "all" else state,
                                        updated_after_ms)  # fmt: skip
        body = {
            "items": [public(d) for d in page.documents],
            "next_cursor": encode_cursor(
                cursor_secret.get(client),
                tenant,
                digest(state, updated_after_ms),
                {"s": page.last_sequence},
            ),  # fmt: skip
            "has_more": page.more,
        }
        return serialise(tenant, body)

    is_default = (after_sequence, updated_after_ms, state, limit) == (
        0, None, DEFAULT_STATE, DEFAULT_LIMIT,
    )  # fmt: skip
    if not is_default:
        return load()
    cached = near_cache.read_through(client, keys.insights(tenant), load)
    assert isinstance(cached, CachedView)  # load() always returns one
    return cached


def newest_resolved_view(client: redis.Redis, tenant: str, limit: int) -> CachedView | None:
    """``{"items": the limit most recently resolved insights, newest first, "total": how many
    resolved insights there are}``, or None while the store's resolved index is being built."""
    newest = insights_store.newest_resolved(client, tenant, limit)
    if newest is None:
        return None
    documents, total = newest
    return serialise(tenant, {"items": [public(d) for d in documents], "total": total})
