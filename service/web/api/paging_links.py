"""OpenAPI links from a page to the next, so a client generator (and a stateful test) knows
where a cursor comes from: the same query, with `cursor` = the page's `next_cursor`.

An apispec plugin (``Api(spec_kwargs={"extra_plugins": [...]})``): apispec hands it each
operation as its blueprint is registered.
"""

from __future__ import annotations

from typing import Any

from apispec import BasePlugin

# path -> the query parameters carried over. The insight feed only: its cursor is bound to
# `state` (and `updated_after`, which a poller drops after its first call); the connector
# report's is bound to ten parameters, most of them usually absent, which a link cannot carry
# over when absent.
PAGED = {"/api/v1/insights": ("state",)}


class PagingLinks(BasePlugin):
    """A ``NextPage`` link on the 200 response of every paged GET."""

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        parameters = PAGED.get(path or "")
        operation = (operations or {}).get("get")
        if parameters is None or operation is None or path is None:
            return
        success = next(r for code, r in operation["responses"].items() if str(code) == "200")
        reference = "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/get"
        success.setdefault("links", {})["NextPage"] = {
            "operationRef": reference,
            "parameters": {"cursor": "$response.body#/next_cursor",
                           **{name: f"$request.query.{name}" for name in parameters}},
            "description": "The next page: the same query, with `cursor` = `next_cursor`",
        }  # fmt: skip
