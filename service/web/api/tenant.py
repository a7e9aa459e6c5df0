"""The key's own tenant: GET /api/v1/tenant (read), POST /api/v1/tenant/reset and
DELETE /api/v1/tenant (admin). No key reaches another tenant: the tenant is the key's."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response, request
from flask.views import MethodView
from marshmallow import fields

from service.core.api_keys import parse_key
from service.core.local_days import known_zone_names
from service.store import tenants
from service.telemetry.logging import log_admin_action
from service.web import context
from service.web.api.blueprint import Blueprint
from service.web.api.schemas import StrictSchema
from service.web.errors import Problem

blp = Blueprint("tenant", __name__, url_prefix="/api/v1/tenant",
                description="The key's own tenant: what is stored, reset days, delete")  # fmt: skip


class TenantDaySchema(StrictSchema):
    date = fields.Date()
    messages = fields.Integer()


class TenantResetDaySchema(StrictSchema):
    date = fields.Date()
    resets = fields.Integer(metadata={"description": "How often the day was reset"})


class TenantKeySchema(StrictSchema):
    id = fields.String()
    scopes = fields.List(fields.String())
    name = fields.String()
    created_at = fields.String()
    revoked_at = fields.String(allow_none=True)


class TenantSchema(StrictSchema):
    tenant = fields.String()
    time_zone = fields.String(metadata={"description": "IANA time zone its days are counted in"})
    messages = fields.Integer(metadata={"description": "Messages counted, all days kept"})
    days = fields.List(fields.Nested(TenantDaySchema),
                       metadata={"description": "Each day with counters (local days of "
                                 "`time_zone`)"})  # fmt: skip
    data_as_of = fields.String(allow_none=True)
    waiting_batches = fields.Integer(
        metadata={"description": "Ingested batches a worker has not folded yet"}
    )
    reset_days = fields.List(fields.Nested(TenantResetDaySchema))
    keys = fields.List(fields.Nested(TenantKeySchema), metadata={"description": "Never secrets"})


class TenantResetSchema(StrictSchema):
    start = fields.Date(required=True, metadata={"description": "First local day, inclusive"})
    end = fields.Date(required=True, metadata={"description": "Last local day, inclusive"})


class TenantResetResultSchema(StrictSchema):
    tenant = fields.String()
    days = fields.List(fields.Date(), metadata={"description": "The days reset"})
    messages_removed = fields.Integer()


class TenantDeleteArgsSchema(StrictSchema):
    confirm = fields.String(
        required=True, metadata={"description": "The tenant's name, to confirm the delete"}
    )


@blp.route("")
class Tenant(MethodView):
    @blp.response(200, TenantSchema)
    def get(self) -> Response:
        """The tenant

        Its time zone, its messages per day, the batches waiting to be folded, the days reset, and its
        API keys (ids, scopes and names; never secrets).
        """
        found = tenants.summary(context.client(), context.tenant())
        return _json(found.as_document())

    @blp.arguments(TenantDeleteArgsSchema, location="query", as_kwargs=True)
    @blp.response(204)
    @blp.problem(409, "A worker is folding or refreshing the tenant; retry in a few seconds")
    @blp.problem(422, "`confirm` is not the tenant's name")
    def delete(self, confirm: str) -> Response:
        """Delete the tenant

        Every API key of the tenant (this one too) and all its data. There is no undo.
        """
        tenant = context.tenant()
        if confirm != tenant:
            raise Problem(422, f"confirm must be the tenant's name, {tenant!r}",
                          errors=[{"field": "confirm", "message": "not the tenant's name"}])  # fmt: skip
        try:
            result = tenants.delete_tenant(context.client(), tenant,
                                           context.settings().refresh_seconds)  # fmt: skip
        except tenants.TenantBusy as error:
            log_admin_action("tenant.delete", tenant, _actor(), outcome="refused",
                             reason=str(error))  # fmt: skip
            raise _busy(error) from None
        log_admin_action("tenant.delete", tenant, _actor(), outcome="done",
                         api_keys_deleted=result.api_keys_deleted,
                         keys_deleted=result.keys_deleted)  # fmt: skip
        return Response(status=204)


@blp.route("/reset")
class TenantReset(MethodView):
    @blp.arguments(TenantResetSchema)
    @blp.response(200, TenantResetResultSchema)
    @blp.problem(400, "The body cannot be read")
    @blp.problem(409, "Traces of those days wait to be folded; retry once the worker has")
    @blp.problem(413, "The body is too large")
    @blp.problem(415, "The body is not application/json")
    @blp.problem(422, "Bad days: end before start, or more days than the retention period")
    def post(self, body: dict[str, Any]) -> Response:
        """Reset days

        Removes the tenant's counters of the days `start`..`end` (its local days, in its
        `time_zone`) and forgets the trace ids
        of those days, so the same logs can be ingested again (with a new connector mapping,
        say). Atomic per day; a refused reset has done the days it names in its detail and
        may be sent again.
        """
        tenant, settings = context.tenant(), context.settings()
        start, end = body["start"], body["end"]
        where = {"start": start.isoformat(), "end": end.isoformat()}
        try:
            result = tenants.reset_days(context.client(), tenant, start, end, context.now(),
                                        settings.retention_days, settings.refresh_seconds,
                                        context.tenant_zone_info())  # fmt: skip
        except ValueError as error:
            raise Problem(
                422, str(error), errors=[{"field": "end", "message": str(error)}]
            ) from None
        except tenants.TenantBusy as error:
            log_admin_action("tenant.reset", tenant, _actor(), outcome="refused",
                             reason=str(error), **where)  # fmt: skip
            raise _busy(error) from None
        log_admin_action("tenant.reset", tenant, _actor(), outcome="done",
                         messages_removed=result.messages_removed, **where)  # fmt: skip
        return _json({"tenant": tenant, "days": result.days,
                      "messages_removed": result.messages_removed})  # fmt: skip


class TenantTimeZoneSchema(StrictSchema):
    # The spec lists the names accepted (those of the pinned tzdata), so a client (or a
    # generated test) knows every valid value; an unknown name is still answered by the
    # endpoint's own problem+json, which names the field.
    time_zone = fields.String(
        required=True,
        metadata={
            "enum": list(known_zone_names()),
            "description": "An IANA time zone name, e.g. `Europe/Berlin`; `UTC` is the default",
            "example": "Europe/Berlin",
        },
    )


class TenantTimeZoneResultSchema(StrictSchema):
    tenant = fields.String()
    time_zone = fields.String(metadata={"description": "The zone from now on"})
    previous = fields.String(metadata={"description": "The zone before"})


@blp.route("/time-zone")
class TenantTimeZone(MethodView):
    @blp.arguments(TenantTimeZoneSchema)
    @blp.response(200, TenantTimeZoneResultSchema)
    @blp.problem(400, "The body cannot be read")
    @blp.problem(413, "The body is too large")
    @blp.problem(415, "The body is not application/json")
    @blp.problem(422, "`time_zone` is not a known IANA time zone")
    def put(self, body: dict[str, Any]) -> Response:
        """Set the time zone

        From now on the tenant's traces count on the local date of their timestamp in this
        zone, and every report, window and insight ends on its local today. Days folded
        before the change stay as they were folded.
        """
        tenant = context.tenant()
        try:
            before, after = tenants.set_time_zone(context.client(), tenant, body["time_zone"])
        except ValueError as error:
            raise Problem(422, f"time_zone: {error}",
                          errors=[{"field": "time_zone", "message": str(error)}]) from None  # fmt: skip
        log_admin_action("tenant.time_zone", tenant, _actor(), outcome="done",
                         time_zone=after, previous=before)  # fmt: skip
        return _json({"tenant": tenant, "time_zone": after, "previous": before})


def _busy(error: tenants.TenantBusy) -> Problem:
    return Problem(409, str(error), slug="tenant-busy", title="The tenant is busy",
                   headers={"Retry-After": "5"})  # fmt: skip


def _actor() -> str:
    """The API key that asked (its id; the secret never leaves the header)."""
    header = request.headers.get("Authorization", "")
    parsed = parse_key(header.removeprefix("Bearer ").strip())
    return f"key:{parsed[0]}" if parsed else "key:?"


def _json(document: object) -> Response:
    return Response(orjson.dumps(document), status=200, mimetype="application/json")
