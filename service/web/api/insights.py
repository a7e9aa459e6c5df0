"""Insights a SIEM can poll (GET /api/v1/insights) and the rules behind them."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response
from flask.views import MethodView

from service.core.insight_rules import RULES, effective_rules
from service.core.paging import CursorError
from service.reports.insight_feed import after_sequence_of, feed_page, public
from service.reports.insight_rule_settings import change_rule_settings
from service.reports.view_cache import serialise
from service.store import insights_store
from service.web import context
from service.web.api.blueprint import Blueprint
from service.web.api.schemas import (
    InsightArgsSchema,
    InsightPageSchema,
    InsightRuleListSchema,
    InsightRuleSchema,
    InsightRuleSettingsSchema,
    InsightSchema,
)
from service.web.errors import Problem
from service.web.responses import cached_json

blp = Blueprint("insights", __name__, url_prefix="/api/v1",
                description="Insights: conditions worth acting on, and their rules")  # fmt: skip


@blp.route("/insights")
class Insights(MethodView):
    @blp.arguments(InsightArgsSchema, location="query", as_kwargs=True)
    @blp.response(200, InsightPageSchema)
    @blp.alt_response(304, description="Not modified (If-None-Match)")
    @blp.problem(400, "The cursor is not valid for this query")
    @blp.problem(422, "Bad parameters")
    def get(self, **args: Any) -> Response:
        """Insights

        In the order of their latest transition (detected, resolved). Follow `next_cursor`
        (always present) to receive every later transition exactly once, in order: each
        transition moves its insight after every earlier one.
        """
        updated_after = args.get("updated_after")
        after_ms = int(updated_after.timestamp() * 1000) if updated_after else None
        client, tenant, cursor_secret = context.client(), context.tenant(), context.cursor_secret()
        after = 0
        if args.get("cursor") is not None:
            try:
                after = after_sequence_of(client, tenant, cursor_secret, args["cursor"],
                                          args["state"], after_ms)  # fmt: skip
            except CursorError as error:
                message = str(error)
                raise Problem(
                    400, f"cursor: {message}", slug="invalid-cursor",
                    errors=[{"field": "cursor", "message": message}],
                ) from None  # fmt: skip
        view = feed_page(client, tenant, cursor_secret, args["state"], args["limit"], after,
                         after_ms)  # fmt: skip
        return cached_json(view)


@blp.route("/insights/<insight_id>")
class Insight(MethodView):
    @blp.response(200, InsightSchema)
    @blp.alt_response(304, description="Not modified (If-None-Match)")
    @blp.problem(404, "No such insight")
    def get(self, insight_id: str) -> Response:
        """One insight"""
        document = insights_store.get_insight(context.client(), context.tenant(), insight_id)
        if document is None:
            raise Problem(404, f"no insight {insight_id!r}")
        return cached_json(serialise(context.tenant(), public(document)))


def _rule_document(rule_id: str, overrides: dict[str, dict[str, Any]]) -> dict[str, Any]:
    rule = next(r for r in effective_rules(overrides) if r.id == rule_id)
    return {**rule.describe(), "defaults": RULES[rule_id].settings()}


@blp.route("/insight-rules")
class InsightRules(MethodView):
    @blp.response(200, InsightRuleListSchema)
    def get(self) -> Response:
        """Insight rules

        Every rule with this tenant's current settings and the built-in defaults.
        """
        overrides = insights_store.rule_settings(context.client(), context.tenant())
        body = {"rules": [_rule_document(rule_id, overrides) for rule_id in RULES]}
        return cached_json(serialise(context.tenant(), body))


@blp.route("/insight-rules/<rule_id>", parameters=[
    {"in": "path", "name": "rule_id", "required": True,
     "schema": {"type": "string", "enum": sorted(RULES)}},
])  # fmt: skip
class InsightRule(MethodView):
    @blp.arguments(
        InsightRuleSettingsSchema, example={"enabled": True, "min_percent": 5.0, "min_messages": 10}
    )
    @blp.response(200, InsightRuleSchema)
    @blp.problem(400, "The body cannot be read: not JSON, nested too deeply, a field twice")
    @blp.problem(413, "The body is over 64 KiB")
    @blp.problem(415, "The body is not application/json")
    @blp.problem(404, "No such rule")
    @blp.problem(422, "Bad settings")
    def put(self, settings: dict[str, Any], rule_id: str) -> Response:
        """Set a rule's settings

        `enabled`, `min_percent`, `min_messages`; omitted ones keep their current value.
        Insights follow at the worker's next evaluation (a disabled rule's insights resolve).
        """
        if rule_id not in RULES:
            raise Problem(404, f"no insight rule {rule_id!r}")
        overrides = change_rule_settings(context.client(), context.tenant(), rule_id, settings)
        body = _rule_document(rule_id, overrides)
        return Response(orjson.dumps(body), status=200, mimetype="application/json")
