"""Sending cached report bytes with their ETag, and answering If-None-Match with 304."""

from __future__ import annotations

from flask import Response, request
from werkzeug.http import parse_etags

from service.store.views import CachedView

CACHE_CONTROL = "private, no-cache"  # revalidate every time: the ETag makes that cheap


def cached_json(view: CachedView) -> Response:
    headers = {"ETag": view.etag, "Cache-Control": CACHE_CONTROL}
    if etag_matches(request.headers.get("If-None-Match"), view.etag):
        return Response(status=304, headers=headers)
    return Response(view.body, status=200, mimetype="application/json", headers=headers)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names ``etag``: weak comparison (RFC 9110), or ``*``."""
    if not if_none_match:
        return False
    named = parse_etags(if_none_match)
    return named.star_tag or named.contains_weak(etag.strip('"'))
