"""GET /metrics: Prometheus text format, for every process of the deployment at once."""

from __future__ import annotations

import hmac
import time

from flask import Response, request
from flask.views import MethodView

from service.telemetry import metrics
from service.web import context
from service.web.api.blueprint import Blueprint
from service.web.errors import Problem

_PROMETHEUS_TEXT = {
    "description": "Prometheus text exposition format 0.0.4",
    "content": {"text/plain": {"schema": {"type": "string"}}},
}
blp = Blueprint("metrics", __name__, description="Prometheus metrics (no mail data)")


@blp.route("/metrics")
class Metrics(MethodView):
    @blp.doc(responses={"200": _PROMETHEUS_TEXT})
    @blp.problem(401, "MAILFLOW_METRICS_TOKEN is set and the request does not carry it")
    def get(self) -> Response:
        """Prometheus metrics

        Counters of every API and worker process (kept in Redis), and stream backlog gauges.
        With `MAILFLOW_METRICS_TOKEN` set, only with `Authorization: Bearer <token>`, and only
        then per tenant (`MAILFLOW_METRICS_PER_TENANT=false` sums them), with today's message
        counters per tenant, direction, connector, TLS version and transport security
        class (of each tenant's local today).
        """
        settings = context.settings()
        token = settings.metrics_token
        if token and not _token_matches(request.headers.get("Authorization", ""), token):
            raise Problem(401, "/metrics needs Authorization: Bearer <MAILFLOW_METRICS_TOKEN>",
                          headers={"WWW-Authenticate": 'Bearer realm="mailflow-metrics"'})  # fmt: skip
        client = context.client()
        metrics.METRICS.flush(client)  # this process's latest counts, so a scrape is current
        # Tenant names only behind the token: an open /metrics says nothing about who is here.
        body = metrics.render(client, time.time(), settings.worker_stale_seconds,
                              settings.metrics_per_tenant and bool(token),
                              messages_day=context.now() if token else None)  # fmt: skip
        return Response(body, mimetype="text/plain", headers={"Cache-Control": "no-store"},
                        content_type="text/plain; version=0.0.4; charset=utf-8")  # fmt: skip


def _token_matches(header: str, token: str) -> bool:
    presented = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    return hmac.compare_digest(presented.encode(), token.encode())
