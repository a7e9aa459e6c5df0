"""The dashboard's errors as HTML pages for people, problem+json for everyone else.

A person who follows a stale link, sends a bad filter, submits a form whose CSRF token has
expired or goes over the rate limit should see a page that says so and leads back, not a JSON
document. Every error is still made one way, as problem+json (``service.web.errors``); this
after-request hook, run for every answer including routing's 404 and the error handlers',
renders that problem as a small page in the dashboard's layout when both hold:

- the path is a person's page: not the API, its docs and spec, nor the health and metrics
  endpoints (``MACHINE_PATHS``), so an unknown path a browser opens at the site root is a
  page too;
- the request prefers ``text/html`` to ``application/problem+json`` (a browser's navigation
  does; a client sending no Accept, or ``*/*``, gets the problem+json).

The status code and headers (``Retry-After``, the rate-limit headers, ``Allow``) stay; the
page's title and detail are the problem's. Both answers ``Vary`` on Accept.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response, render_template, request

from service.web.auth import API_PREFIX
from service.web.errors import PROBLEM_JSON

MACHINE_PATHS = (API_PREFIX, "/docs", "/openapi.json", "/healthz", "/readyz", "/metrics")
HTML = "text/html"
# Where an error page leads back to: the page its path is part of.
_BACK = (("/connectors", "the connector report"), ("/insights", "the insights"),
         ("/tls", "Message protected in transit"))  # fmt: skip


def is_page_path(path: str) -> bool:
    return not any(path == p or path.startswith(p + "/") for p in MACHINE_PATHS)


def prefers_html() -> bool:
    return request.accept_mimetypes.best_match([PROBLEM_JSON, HTML]) == HTML


def back_link(path: str) -> tuple[str, str]:
    for prefix, label in _BACK:
        if path == prefix or path.startswith(prefix + "/"):
            return prefix, label
    return "/", "the mail flow dashboard"


def as_html(response: Response, content_security_policy: str) -> Response:
    """A problem+json answer to a person's page, rendered as HTML when the request prefers
    it; any other answer as it is."""
    if not is_page_path(request.path) or response.mimetype != PROBLEM_JSON:
        return response
    response.vary.add("Accept")
    if not prefers_html():
        return response
    problem: dict[str, Any] = orjson.loads(response.get_data())
    html = render_template("error.html", problem=problem, tenant=None, etag=None,
                           page_class="page-error", back=back_link(request.path),
                           retry_after=response.headers.get("Retry-After"))  # fmt: skip
    response.set_data(html)
    response.mimetype = HTML
    response.headers["Content-Security-Policy"] = content_security_policy
    response.headers.setdefault("Cache-Control", "no-store")  # an error is not kept as the page
    response.vary.add("Cookie")
    return response
