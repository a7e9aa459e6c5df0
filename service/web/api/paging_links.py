"""OpenAPI links from a page to the next, so a client generator (and a stateful test) knows
where a cursor comes from: the same query, with `cursor` = the page's `next_cursor`."""

from __future__ import annotations

from typing import Any

# path -> the query parameters carried over. The insight feed only: its cursor is bound to
# `state` (and `updated_after`, which a poller drops after its first call); the connector
# report's is bound to ten parameters, most of them usually absent, which a link cannot carry
# over when absent.
PAGED = {"/api/v1/insights": ("state",)}


def document(spec: Any) -> None:
    """Called once every blueprint is registered."""
    for path, parameters in PAGED.items():
        operation = spec._paths[path]["get"]  # apispec keeps no public view of the paths
        reference = "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/get"
        operation["responses"]["200"].setdefault("links", {})["NextPage"] = {
            "operationRef": reference,
            "parameters": {"cursor": "$response.body#/next_cursor",
                           **{name: f"$request.query.{name}" for name in parameters}},
            "description": "The next page: the same query, with `cursor` = `next_cursor`",
        }  # fmt: skip
