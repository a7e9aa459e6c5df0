"""marshmallow schemas of the webhook endpoints (service.web.api.webhooks)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from service.core.insight_rules import RULES, SEVERITIES
from service.core.traces import MAX_CONNECTOR
from service.core.webhook_payloads import FORMATS, INSIGHT_EVENTS
from service.core.webhook_targets import MAX_URL
from service.web.api.schemas import JsonBoolean, StrictSchema, Text, _JsonInteger

MAX_FILTER_VALUES = 50


class WebhookFilterSchema(StrictSchema):
    rules = fields.List(fields.String(validate=validate.OneOf(sorted(RULES))),
                        validate=validate.Length(0, MAX_FILTER_VALUES),
                        metadata={"description": "Only these rules (empty or absent: all)"})  # fmt: skip
    severities = fields.List(fields.String(validate=validate.OneOf(SEVERITIES)),
                             validate=validate.Length(0, len(SEVERITIES)))  # fmt: skip
    connectors = fields.List(Text(trimmed=True, validate=validate.Length(1, MAX_CONNECTOR)),
                             validate=validate.Length(0, MAX_FILTER_VALUES),
                             metadata={"description": "Only insights about these connectors "
                                                      "(by name)"})  # fmt: skip


_URL_DOC = {
    "description": "https:// (http:// only where allowed); it may not resolve to a loopback, "
    "private, link-local, multicast or metadata address unless "
    "MAILFLOW_WEBHOOK_ALLOW_NETWORKS allows it. Redirects are not followed.",
    "example": "https://hooks.example.com/mailflow",
}
_FORMAT_DOC = {
    "description": "standard (the insight as the feed returns it), slack (Block Kit), teams "
    "(an Adaptive Card for a Teams Workflows webhook) or alertmanager (webhook payload v4)",
}
_EVENT = fields.String(validate=validate.OneOf(INSIGHT_EVENTS))
_EVENTS_LENGTH = validate.Length(1, len(INSIGHT_EVENTS))


class WebhookCreateSchema(StrictSchema):
    url = fields.String(required=True, validate=validate.Length(1, MAX_URL), metadata=_URL_DOC)
    events = fields.List(_EVENT, load_default=lambda: list(INSIGHT_EVENTS),
                         validate=_EVENTS_LENGTH)  # fmt: skip
    filter = fields.Nested(WebhookFilterSchema, load_default=dict)
    format = fields.String(load_default="standard", validate=validate.OneOf(FORMATS),
                           metadata=_FORMAT_DOC)  # fmt: skip
    enabled = JsonBoolean(load_default=True)
    description = Text(load_default=None, allow_none=True, validate=validate.Length(0, 256))


class WebhookPatchSchema(StrictSchema):
    url = fields.String(validate=validate.Length(1, MAX_URL), metadata=_URL_DOC)
    events = fields.List(_EVENT, validate=_EVENTS_LENGTH)
    filter = fields.Nested(WebhookFilterSchema)
    format = fields.String(validate=validate.OneOf(FORMATS), metadata=_FORMAT_DOC)
    enabled = JsonBoolean()
    description = Text(allow_none=True, validate=validate.Length(0, 256))


class WebhookFilterOutSchema(Schema):
    rules = fields.List(fields.String())
    severities = fields.List(fields.String())
    connectors = fields.List(fields.String())


class WebhookSchema(Schema):
    id = fields.String()
    url = fields.String()
    events = fields.List(fields.String())
    filter = fields.Nested(WebhookFilterOutSchema)
    format = fields.String()
    enabled = fields.Boolean()
    description = fields.String(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String()
    disabled_reason = fields.String(allow_none=True, metadata={
        "description": "Why mailflow disabled it (410 Gone, deliveries failing for "
        "MAILFLOW_WEBHOOK_RETRY_DAYS); null if enabled or disabled by an admin"})  # fmt: skip
    previous_secret_valid_until = fields.String(allow_none=True, metadata={
        "description": "While a rotated-out secret still signs deliveries (beside the new one)"
    })  # fmt: skip


class WebhookWithSecretSchema(WebhookSchema):
    secret = fields.String(metadata={
        "description": "The signing secret (Standard Webhooks, `whsec_...`): shown only now",
    })  # fmt: skip


class WebhookListSchema(Schema):
    items = fields.List(fields.Nested(WebhookSchema))
    limit = fields.Integer(metadata={"description": "The most subscriptions a tenant may have"})


class RotateSchema(StrictSchema):
    grace_hours = _JsonInteger(load_default=24, validate=validate.Range(0, 168), metadata={
        "description": "How long the old secret still signs deliveries, beside the new one"})  # fmt: skip


class DeliveryArgsSchema(StrictSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class AttemptSchema(Schema):
    at = fields.String()
    status_code = fields.Integer(allow_none=True, metadata={"description": "null: no answer"})
    latency_ms = fields.Integer()
    error = fields.String(allow_none=True)


class DeliverySchema(Schema):
    id = fields.String(metadata={"description": "The webhook-id header: the same on every retry"})
    subscription_id = fields.String()
    event = fields.String()
    status = fields.String(metadata={"description": "pending | delivered | failed"})
    created_at = fields.String()
    attempt_count = fields.Integer()
    attempts = fields.List(fields.Nested(AttemptSchema), metadata={
        "description": "The latest attempts (at most 20)"})  # fmt: skip
    last_status_code = fields.Integer(allow_none=True)
    latency_ms = fields.Integer(allow_none=True, metadata={"description": "Of the last attempt"})
    next_attempt_at = fields.String(allow_none=True)
    payload = fields.Dict(metadata={"description": "The event, in the standard format"})


class DeliveryListSchema(Schema):
    items = fields.List(fields.Nested(DeliverySchema))
