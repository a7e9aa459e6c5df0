"""Reusable error responses documented as problem+json, the body every error really has.

flask-smorest registers a response component per HTTP status and ``DEFAULT_ERROR``, all with
``ERROR_SCHEMA`` under ``DEFAULT_RESPONSE_CONTENT_TYPE`` (application/json, also the type of
the successful responses). This apispec plugin (``Api(spec_kwargs={"extra_plugins": [...]})``)
files every response component's JSON body under problem+json instead: in mailflow a
reusable response is always an error.
"""

from __future__ import annotations

from typing import Any

from apispec import BasePlugin

from service.web.errors import PROBLEM_JSON


class ProblemResponses(BasePlugin):
    def response_helper(self, response: dict[str, Any], **kwargs: Any) -> dict[str, Any] | None:
        content = response.get("content")
        if not content or "application/json" not in content:
            return None
        return {"content": {(PROBLEM_JSON if media_type == "application/json" else media_type): body
                            for media_type, body in content.items()}}  # fmt: skip
