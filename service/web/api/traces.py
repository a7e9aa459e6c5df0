"""POST /api/v1/traces: accept what is valid, name what is not, store durably."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import orjson
from flask import Response, request
from flask.views import MethodView
from redis import Redis, RedisError

from service.config import Settings
from service.core.auth_users import protected_who_keys
from service.core.trace_batch import accept_valid_batch
from service.core.traces import (
    FIELD_SEP,
    AcceptedBatch,
    AcceptedTrace,
    IngestWindow,
    TraceError,
    normalize_trace,
)
from service.store import connector_registry, connectors_store, tenant_zone, worker_signals
from service.store import traces as trace_store
from service.telemetry.metrics import METRICS
from service.web import context
from service.web.api.blueprint import Blueprint
from service.web.api.body import JSON_TYPES, NDJSON_TYPES, media_type, parse_records, read_body
from service.web.api.partitioned_batch import accept_partitioned
from service.web.api.schemas import IngestResultSchema
from service.web.errors import Problem
from service.web.store_format_guard import require_current_store

log = logging.getLogger("mailflow.ingest")

blp = Blueprint("traces", __name__, url_prefix="/api/v1", description="Ingest message traces")

_REQUEST_BODY = {
    "required": True,
    "description": "A JSON array of traces, `{\"traces\": [...]}`, or NDJSON (one trace per "
    "line); optionally `Content-Encoding: gzip`.",
    "content": {
        "application/json": {
            "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Trace"},
                       "minItems": 1, "maxItems": Settings.max_batch},
            "example": [{"id": "4XyZ1-relay1", "timestamp": "2026-11-27T10:00:00Z",
                         "direction": "inbound", "connector": "Contoso",
                         "connector_type": "partner", "tls_version": "TLSv1.2",
                         "sender_domain": "contoso.example", "remote_ip": "192.0.2.10"}],
        },
        "application/x-ndjson": {"schema": {"type": "string"}},
    },
}  # fmt: skip


@blp.route("/traces")
class Traces(MethodView):
    @blp.doc(requestBody=_REQUEST_BODY)
    @blp.response(202, IngestResultSchema)
    @blp.problem(400, "The body cannot be read")
    @blp.problem(413, "Over the record or byte limit")
    @blp.problem(415, "Not JSON or NDJSON")
    @blp.problem(422, "No record in the batch is acceptable")
    @blp.problem(503, "The data store does not answer; retry")
    def post(self) -> Response:
        """Ingest traces

        Good records are accepted even when others in the batch are bad. A 202 means the new
        traces are durable in Redis; `duplicates` counts ids accepted before.
        """
        require_current_store()
        settings = context.settings()
        kind = media_type(request)
        if kind not in JSON_TYPES + NDJSON_TYPES:
            raise Problem(415, "send application/json or application/x-ndjson")
        body = read_body(request, settings.max_body_bytes)
        window = IngestWindow.at(context.now(), settings.retention_days,
                                 tenant_zone.zone_of(context.client(), context.tenant()))  # fmt: skip
        defined = connectors_store.defined_types(context.client(), context.tenant())
        errors: list[dict[str, object]] = []
        accepted = accept_valid_batch(body, kind in NDJSON_TYPES, settings.max_batch, window,
                                      defined)  # fmt: skip
        # The record index of each accepted trace: known on the exact path; on the all-valid
        # path a position in the array, or a non-blank line of NDJSON.
        indexes: list[int] | _LineNumbers | None = None
        if accepted is None:  # something is wrong: the exact path finds and names it
            # Among records the batch path takes: only the doubtful ones go record by record.
            partitioned = accept_partitioned(body, kind, kind in NDJSON_TYPES, settings.max_batch,
                                             window, defined, errors, _accept_each)  # fmt: skip
            if partitioned is not None:
                accepted, indexes = partitioned
        if accepted is None:
            accepted, indexes = _accept_each(body, kind, settings.max_batch, window, defined,
                                             errors)  # fmt: skip
        if accepted:
            if indexes is None:
                indexes = _LineNumbers(body) if kind in NDJSON_TYPES else None
            accepted = _admit_connectors(accepted, indexes, window, errors)
        if not accepted:
            _count(0, 0, errors)
            raise Problem(
                422,
                f"none of the {len(errors)} records is acceptable",
                slug="invalid-traces",
                title="No acceptable trace",
                errors=errors,
            )
        client = context.client()
        tenant = context.tenant()
        _protect_auth_users(accepted, client)
        replication = trace_store.Replication(settings.redis_wait_replicas,
                                              settings.redis_wait_timeout_ms)  # fmt: skip
        trace_store.register_tenant(client, tenant, replication)
        # Made while the store takes writes (once per process): paged reports need it at the
        # memory limit too, when it can no longer be created.
        context.cursor_secret().get(client)
        dedupe = trace_store.DedupeWindow(context.now(), settings.dedupe_days)
        result = trace_store.ingest(client, tenant, accepted, dedupe, replication)
        if result.accepted:  # after the append, never before: see worker_signals
            _signal_worker(client, tenant)
        _count(result.accepted, result.duplicates, errors)
        body_out = {"accepted": result.accepted, "duplicates": result.duplicates,
                    "rejected": len(errors), "errors": errors}  # fmt: skip
        return Response(orjson.dumps(body_out), status=202, mimetype="application/json")


def _accept_each(
    body: bytes,
    kind: str,
    max_records: int,
    window: IngestWindow,
    defined: Mapping[tuple[str, str], str],
    errors: list[dict[str, object]],
) -> tuple[AcceptedBatch, list[int]]:
    """Record by record: every valid trace accepted (with its record index), every bad one
    named in ``errors``."""
    accepted: list[AcceptedTrace] = []
    indexes: list[int] = []
    for index, record, parse_error in parse_records(body, kind, max_records):
        if parse_error is not None:
            errors.append({"index": index, "field": parse_error.field,
                           "message": parse_error.message})  # fmt: skip
            continue
        try:
            accepted.append(normalize_trace(record, window, defined))
        except TraceError as error:
            errors.append({"index": index, "field": error.field, "message": error.message})
            continue
        indexes.append(index)
    return AcceptedBatch.of(accepted), indexes


class _LineNumbers:
    """The number (from 1) of each non-blank line of an NDJSON body, counted when first asked:
    only a batch with a refused connector needs them."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._numbers: list[int] | None = None

    def __getitem__(self, position: int) -> int:
        if self._numbers is None:
            lines = self._body.split(b"\n")
            self._numbers = [n for n, line in enumerate(lines, start=1) if line.strip()]
        return self._numbers[position]


def _admit_connectors(
    batch: AcceptedBatch,
    indexes: Sequence[int] | _LineNumbers | None,
    window: IngestWindow,
    errors: list[dict[str, object]],
) -> AcceptedBatch:
    """The batch without the traces of connectors the tenant's limit refuses, each of those
    named in ``errors`` (kept in record order)."""
    limit = context.settings().max_connectors
    retention_days = context.settings().retention_days
    refused = connector_registry.admit(context.client(), context.tenant(), batch, limit,
                                       window.earliest.date(),
                                       (retention_days + 1) * 86400)  # fmt: skip
    if not refused:
        return batch
    kept: list[int] = []
    for position, counting_key in enumerate(batch.counting_keys):
        connector = connector_registry.connector_of(counting_key)
        if connector is None or connector not in refused:
            kept.append(position)
            continue
        direction, name = connector.split(FIELD_SEP)
        errors.append({
            "index": position if indexes is None else indexes[position],
            "field": "connector",
            "message": f"the tenant already has the most distinct connectors allowed "
            f"({limit}, MAILFLOW_MAX_CONNECTORS); {direction} connector {name!r} is not one "
            "of them",
        })  # fmt: skip
    errors.sort(key=_record_index)
    return batch.select(kept)


def _protect_auth_users(batch: AcceptedBatch, client: Redis) -> None:
    """Apply MAILFLOW_AUTH_USER_MODE before anything is stored (docs/domains.md)."""
    mode = context.settings().auth_user_mode
    if mode != "keep" and batch.who_keys:
        secret = context.cursor_secret().get(client)
        batch.who_keys = protected_who_keys(batch.who_keys, mode, secret)


def _record_index(error: dict[str, object]) -> int:
    index = error["index"]
    assert isinstance(index, int)
    return index


def _count(accepted: int, duplicates: int, errors: list[dict[str, object]]) -> None:
    METRICS.inc("mailflow_traces_total", (("outcome", "accepted"),), accepted)
    METRICS.inc("mailflow_traces_total", (("outcome", "duplicate"),), duplicates)
    METRICS.inc("mailflow_traces_total", (("outcome", "rejected"),), len(errors))
    for error in errors:
        METRICS.inc("mailflow_traces_rejected_total", (("field", str(error["field"]) or "body"),))


def _signal_worker(client: Redis, tenant: str) -> None:
    """Tell the workers the tenant has new entries. Best effort: the traces are stored already,
    so a refused signal (Redis refusing writes from this moment on) must not turn the 202 into
    a 503 the client would retry; a worker's sweep reads every stream within 30 s anyway."""
    try:
        worker_signals.signal_new_entries(client, tenant)
    except RedisError as error:
        log.warning(
            "tenant %s: new entries not signalled (%s); the worker's sweep finds them",
            tenant,
            error,
        )
