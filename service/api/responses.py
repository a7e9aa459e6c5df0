"""Sending cached report bytes with their ETag, and answering If-None-Match with 304."""

from __future__ import annotations

from flask import Response, request

from service.store.views import CachedView


def cached_json(view: CachedView) -> Response:
    headers = {"ETag": view.etag, "Cache-Control": "private, no-cache"}
    if "If-None-Match" in request.headers and (
        view.etag in request.if_none_match.as_set(include_weak=True) or _matches_raw(view.etag)
    ):
        return Response(status=304, headers=headers)
    return Response(view.body, status=200, mimetype="application/json", headers=headers)


def _matches_raw(etag: str) -> bool:
    # Werkzeug parses the header into bare tags; accept a client echoing it verbatim too.
    raw = request.headers.get("If-None-Match", "")
    return raw.strip() == "*" or etag in (part.strip() for part in raw.split(","))
