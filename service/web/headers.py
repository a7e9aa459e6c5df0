"""Response headers every client gets: CORS for allowed origins, caching rules, nosniff.

- CORS: only origins listed in ``MAILFLOW_CORS_ORIGINS``; a preflight (OPTIONS with
  ``Access-Control-Request-Method``) is answered here, before authentication, and needs no key.
  Any other OPTIONS under ``/api/v1`` is an empty 204 whatever the path, so that a caller
  without a key learns nothing of which routes exist.
  Keys travel in ``Authorization``, not cookies, so credentials are never allowed.
- ``/api/v1`` responses carry tenant data: ``Cache-Control`` always says ``private`` or
  ``no-store``, and ``Vary: Authorization`` keeps any cache from mixing keys.
- ``X-Content-Type-Options: nosniff`` everywhere; ``Referrer-Policy: no-referrer``.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask, Response, g, request

from service.config import Settings
from service.web.auth import is_api_path

ALLOW_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE"
ALLOW_HEADERS = "Authorization, Content-Type, Content-Encoding, If-None-Match"
EXPOSE_HEADERS = ("ETag, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After, "
                  "WWW-Authenticate")  # fmt: skip
PREFLIGHT_MAX_AGE = "600"
EVERY_RESPONSE = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def allowed_origin(origin: str | None, origins: Iterable[str]) -> str | None:
    """``origin`` (an Origin header) if it is one of the allowed ``origins``, else None."""
    return origin if origin is not None and origin.rstrip("/") in origins else None


def _plain_options(path: str) -> Response | None:
    """OPTIONS that is not a CORS preflight. Under /api/v1 it needs no key (like a preflight)
    and so must not map routes: every path, existing or not, gets the same empty 204, with no
    ``Allow`` that would differ between them. Elsewhere (health, docs) Flask answers."""
    if not is_api_path(path):
        return None
    return Response(status=204)


def install(app: Flask, settings: Settings) -> None:
    origins = settings.cors_origin_list

    @app.before_request
    def preflight() -> Response | None:
        if request.method != "OPTIONS":
            return None
        if "Access-Control-Request-Method" not in request.headers:
            return _plain_options(request.path)
        response = Response(status=204)
        origin = allowed_origin(request.headers.get("Origin"), origins)
        if origin is not None:
            response.headers.update({
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": ALLOW_METHODS,
                "Access-Control-Allow-Headers": ALLOW_HEADERS,
                "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
            })  # fmt: skip
        response.vary.add("Origin")
        return response

    @app.after_request
    def finish(response: Response) -> Response:
        headers = response.headers
        headers.update(EVERY_RESPONSE)
        if is_api_path(request.path):
            headers.update(g.get("rate_limit_headers") or {})
            cache_control = headers.get("Cache-Control", "")
            if not cache_control:
                headers["Cache-Control"] = "no-store"
            elif "private" not in cache_control and "no-store" not in cache_control:
                headers["Cache-Control"] = "private, " + cache_control
            response.vary.add("Authorization")
        if origins and request.method != "OPTIONS":
            origin = allowed_origin(request.headers.get("Origin"), origins)
            if origin is not None:
                headers["Access-Control-Allow-Origin"] = origin
                headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
            response.vary.add("Origin")
        return response
