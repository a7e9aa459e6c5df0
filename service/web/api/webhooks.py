"""Webhook subscriptions (scope admin, reads too): /api/v1/webhooks, their deliveries, a retry
and a test ping. The notifier (service.worker.notifier) sends what is queued here."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from flask import Response, current_app
from flask.views import MethodView

from service.core import webhook_payloads as payloads
from service.core import webhook_signing
from service.core.timestamps import ms_to_rfc3339, rfc3339
from service.core.webhook_delivery import new_delivery
from service.core.webhook_targets import (
    Resolver,
    TargetPolicy,
    TargetRefused,
    resolve_target,
    system_resolver,
)
from service.store import webhooks_store
from service.web import context
from service.web.api.blueprint import Blueprint
from service.web.api.webhook_schemas import (
    DeliveryArgsSchema,
    DeliveryListSchema,
    DeliverySchema,
    RotateSchema,
    WebhookCreateSchema,
    WebhookListSchema,
    WebhookPatchSchema,
    WebhookSchema,
    WebhookWithSecretSchema,
)
from service.web.errors import Problem

blp = Blueprint("webhooks", __name__, url_prefix="/api/v1/webhooks",
                description="Webhooks: insights pushed to a receiver, signed (Standard Webhooks), "
                "delivered at least once")  # fmt: skip

# create_app(overrides={"RESOLVER": ...}) puts a resolver here: tests answer DNS themselves.
RESOLVER_EXTENSION = "mailflow.webhook_resolver"
MAX_QUEUED_FOR_PING = 10
PUBLIC_FIELDS = ("id", "url", "events", "filter", "format", "enabled", "description",
                 "created_at", "updated_at", "disabled_reason")  # fmt: skip


def resolver() -> Resolver:
    found = current_app.extensions.get(RESOLVER_EXTENSION)
    return found if callable(found) else system_resolver


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    shown = {name: doc.get(name) for name in PUBLIC_FIELDS}
    until = doc.get("previous_secret_until_ms")
    shown["previous_secret_valid_until"] = (
        ms_to_rfc3339(until) if until and until > context.now().timestamp() * 1000 else None
    )
    return shown


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def _checked_url(url: str) -> str:
    settings = context.settings()
    policy = TargetPolicy.parse(settings.webhook_allow_networks, settings.webhook_allow_http)
    try:
        resolve_target(url, policy, resolver())
    except TargetRefused as refusal:
        raise Problem(422, f"url: {refusal}", slug="webhook-url-refused",
                      title="Webhook URL refused",
                      errors=[{"field": "url", "message": str(refusal)}]) from None  # fmt: skip
    return url


def _clean_filter(given: dict[str, Any]) -> dict[str, list[str]]:
    return {name: sorted(set(given.get(name) or ())) for name in
            ("rules", "severities", "connectors")}  # fmt: skip


def _subscription(sub_id: str) -> dict[str, Any]:
    doc = webhooks_store.get_subscription(context.client(), context.tenant(), sub_id)
    if doc is None:
        raise Problem(404, f"no webhook {sub_id!r}")
    return doc


def _now_ms() -> int:
    return int(context.now().timestamp() * 1000)


_SUB_PATH = [{"in": "path", "name": "webhook_id", "required": True,
              "schema": {"type": "string", "maxLength": 64}}]  # fmt: skip
_DELIVERY_PATH = [*_SUB_PATH, {"in": "path", "name": "delivery_id", "required": True,
                               "schema": {"type": "string", "maxLength": 64}}]  # fmt: skip


@blp.route("")
class Webhooks(MethodView):
    @blp.response(200, WebhookListSchema)
    def get(self) -> Response:
        """Webhook subscriptions

        Every subscription of the tenant (never a secret). Needs scope `admin`: receivers' URLs
        often carry a credential.
        """
        docs = webhooks_store.list_subscriptions(context.client(), context.tenant())
        return _json({"items": [_public(d) for d in docs],
                      "limit": webhooks_store.MAX_SUBSCRIPTIONS})  # fmt: skip

    @blp.arguments(WebhookCreateSchema, example={
        "url": "https://hooks.example.com/mailflow", "events": ["insight.detected"],
        "filter": {"severities": ["high"]}, "format": "standard"})  # fmt: skip
    @blp.response(201, WebhookWithSecretSchema)
    @blp.problem(400, "The body cannot be read: not JSON, nested too deeply, a field twice")
    @blp.problem(413, "The body is over 64 KiB")
    @blp.problem(415, "The body is not application/json")
    @blp.problem(422, "Bad subscription, a refused URL, or the tenant's limit reached")
    def post(self, given: dict[str, Any]) -> Response:
        """Create a webhook subscription

        The answer carries the signing secret (`whsec_...`), shown this once: keep it to verify
        deliveries (see docs/webhooks.md).
        """
        now, client, tenant = context.now(), context.client(), context.tenant()
        doc = {"id": webhooks_store.new_subscription_id(), "url": _checked_url(given["url"]),
               "events": sorted(set(given["events"])), "filter": _clean_filter(given["filter"]),
               "format": given["format"], "enabled": given["enabled"],
               "description": given["description"], "created_at": rfc3339(now),
               "updated_at": rfc3339(now), "disabled_reason": None,
               "secret": webhook_signing.new_secret()}  # fmt: skip
        try:
            webhooks_store.create_subscription(client, tenant, doc, _now_ms())
        except webhooks_store.SubscriptionLimit as error:
            raise Problem(422, str(error), slug="too-many-webhooks",
                          title="Too many webhooks") from None  # fmt: skip
        return _json({**_public(doc), "secret": doc["secret"]}, 201)


@blp.route("/<webhook_id>", parameters=_SUB_PATH)
class Webhook(MethodView):
    @blp.response(200, WebhookSchema)
    @blp.problem(404, "No such webhook")
    def get(self, webhook_id: str) -> Response:
        """One webhook subscription"""
        return _json(_public(_subscription(webhook_id)))

    @blp.arguments(WebhookPatchSchema, example={"enabled": False})
    @blp.response(200, WebhookSchema)
    @blp.problem(400, "The body cannot be read: not JSON, nested too deeply, a field twice")
    @blp.problem(404, "No such webhook")
    @blp.problem(413, "The body is over 64 KiB")
    @blp.problem(415, "The body is not application/json")
    @blp.problem(422, "Bad fields or a refused URL")
    def patch(self, given: dict[str, Any], webhook_id: str) -> Response:
        """Change a webhook subscription

        The fields given replace the stored ones. Enabling it again sends what was queued
        for it, in order; disabling it holds its queue (new events are not queued meanwhile).
        """
        doc = _subscription(webhook_id)
        if "url" in given:
            doc["url"] = _checked_url(given["url"])
        if "events" in given:
            doc["events"] = sorted(set(given["events"]))
        if "filter" in given:
            doc["filter"] = _clean_filter(given["filter"])
        for name in ("format", "description", "enabled"):
            if name in given:
                doc[name] = given[name]
        resolves = given.get("enabled") and doc.pop("disabled_insight_id", None)
        if given.get("enabled"):
            doc["disabled_reason"] = None
        doc["updated_at"] = rfc3339(context.now())
        if not webhooks_store.replace_subscription(context.client(), context.tenant(), doc,
                                                   _now_ms()):  # fmt: skip
            raise Problem(404, f"no webhook {webhook_id!r}")
        if resolves:  # the insight that said mailflow disabled it
            webhooks_store.resolve_disabled_insight(context.client(), context.tenant(),
                                                    resolves, doc["updated_at"], _now_ms())  # fmt: skip
        return _json(_public(doc))

    @blp.response(204)
    @blp.problem(404, "No such webhook")
    def delete(self, webhook_id: str) -> Response:
        """Delete a webhook subscription, with its queued and past deliveries"""
        if not webhooks_store.delete_subscription(context.client(), context.tenant(), webhook_id):
            raise Problem(404, f"no webhook {webhook_id!r}")
        return Response(status=204)


@blp.route("/<webhook_id>/rotate-secret", parameters=_SUB_PATH)
class RotateSecret(MethodView):
    @blp.arguments(RotateSchema, example={"grace_hours": 24})
    @blp.response(200, WebhookWithSecretSchema)
    @blp.problem(400, "The body cannot be read: not JSON, nested too deeply, a field twice")
    @blp.problem(404, "No such webhook")
    @blp.problem(413, "The body is over 64 KiB")
    @blp.problem(415, "The body is not application/json")
    @blp.problem(422, "Bad grace period")
    def post(self, given: dict[str, Any], webhook_id: str) -> Response:
        """Rotate the signing secret

        A new secret, shown this once. For `grace_hours` the old one signs deliveries too
        (both signatures in `webhook-signature`), so receivers can switch without a gap.
        """
        doc = _subscription(webhook_id)
        now = context.now()
        doc["previous_secret"] = doc["secret"]
        doc["previous_secret_until_ms"] = int(
            (now + timedelta(hours=given["grace_hours"])).timestamp() * 1000
        )
        doc["secret"] = webhook_signing.new_secret()
        doc["updated_at"] = rfc3339(now)
        if not webhooks_store.replace_subscription(context.client(), context.tenant(), doc,
                                                   _now_ms()):  # fmt: skip
            raise Problem(404, f"no webhook {webhook_id!r}")
        return _json({**_public(doc), "secret": doc["secret"]})


def _delivery_view(record: dict[str, Any]) -> dict[str, Any]:
    shown = {name: record.get(name) for name in (
        "id", "subscription_id", "event", "status", "created_at", "attempt_count", "attempts",
        "last_status_code", "latency_ms", "next_attempt_at")}  # fmt: skip
    shown["payload"] = record.get("envelope")
    return shown


@blp.route("/<webhook_id>/deliveries", parameters=_SUB_PATH)
class Deliveries(MethodView):
    @blp.arguments(DeliveryArgsSchema, location="query", as_kwargs=True)
    @blp.response(200, DeliveryListSchema)
    @blp.problem(404, "No such webhook")
    @blp.problem(422, "Bad parameters")
    def get(self, webhook_id: str, limit: int) -> Response:
        """A webhook's deliveries

        The newest first: each with its attempts (status, latency, error), its status and
        when it is tried next.
        """
        _subscription(webhook_id)
        records = webhooks_store.recent_deliveries(context.client(), context.tenant(),
                                                   webhook_id, limit)  # fmt: skip
        return _json({"items": [_delivery_view(r) for r in records]})


@blp.route("/<webhook_id>/deliveries/<delivery_id>/retry", parameters=_DELIVERY_PATH)
class RetryDelivery(MethodView):
    @blp.response(202, DeliverySchema)
    @blp.problem(404, "No such webhook or delivery")
    def post(self, webhook_id: str, delivery_id: str) -> Response:
        """Send a delivery again now

        A pending one is tried at once; a delivered or failed one is queued again, with the
        same `webhook-id` (receivers deduplicate it).
        """
        doc = _subscription(webhook_id)
        client, tenant = context.client(), context.tenant()
        record = webhooks_store.get_delivery(client, tenant, delivery_id)
        if record is None or record.get("subscription_id") != webhook_id:
            raise Problem(404, f"no delivery {delivery_id!r} of webhook {webhook_id!r}")
        record.update(status="pending", next_attempt_at=rfc3339(context.now()))
        if not webhooks_store.retry_now(client, tenant, record, _now_ms(), doc["enabled"]):
            raise Problem(404, f"no delivery {delivery_id!r} of webhook {webhook_id!r}")
        return _json(_delivery_view(record), 202)


@blp.route("/<webhook_id>/test", parameters=_SUB_PATH)
class TestPing(MethodView):
    @blp.response(202, DeliverySchema)
    @blp.problem(404, "No such webhook")
    @blp.problem(409, "The webhook is disabled, or deliveries already wait for it")
    def post(self, webhook_id: str) -> Response:
        """Send a test ping

        A `webhook.ping` event, queued behind the webhook's other deliveries and signed like
        them; follow it in the deliveries.
        """
        doc = _subscription(webhook_id)
        if not doc["enabled"]:
            raise Problem(409, f"webhook {webhook_id!r} is disabled; enable it first",
                          slug="webhook-disabled", title="Webhook disabled")  # fmt: skip
        waiting = webhooks_store.queued(context.client(), context.tenant(), webhook_id)
        if waiting >= MAX_QUEUED_FOR_PING:  # pings never fill a queue
            raise Problem(409, f"{waiting} deliveries wait for webhook {webhook_id!r}; a ping "
                          "would wait behind them", slug="webhook-busy",
                          title="Webhook busy")  # fmt: skip
        now = context.now()
        envelope = payloads.event(payloads.PING, rfc3339(now), {"subscription_id": webhook_id})
        delivery = webhooks_store.Planned(
            webhook_id, did := webhooks_store.new_message_id(),
            new_delivery(did, webhook_id, envelope, rfc3339(now), _now_ms()),
        )  # fmt: skip
        webhooks_store.enqueue(context.client(), context.tenant(), None, [delivery], _now_ms(),
                               webhooks_store.NoiseControl(0, 0, now.date().isoformat()))  # fmt: skip
        return _json(_delivery_view(delivery.record), 202)
