"""GET /metrics: Prometheus text format, for every process of the deployment at once."""

from __future__ import annotations

import time

from flask import Response
from flask.views import MethodView

from service.telemetry import metrics
from service.web import context
from service.web.api.blueprint import Blueprint

_PROMETHEUS_TEXT = {
    "description": "Prometheus text exposition format 0.0.4",
    "content": {"text/plain": {"schema": {"type": "string"}}},
}
blp = Blueprint("metrics", __name__, description="Prometheus metrics (no mail data)")


@blp.route("/metrics")
class Metrics(MethodView):
    @blp.doc(responses={"200": _PROMETHEUS_TEXT})
    def get(self) -> Response:
        """Prometheus metrics

        Counters of every API and worker process (kept in Redis), and stream backlog gauges.
        Per-tenant series carry the tenant's name, never its mail data
        (`MAILFLOW_METRICS_PER_TENANT=false` sums them).
        """
        client = context.client()
        metrics.METRICS.flush(client)  # this process's latest counts, so a scrape is current
        settings = context.settings()
        body = metrics.render(client, time.time(), settings.worker_stale_seconds,
                              settings.metrics_per_tenant)  # fmt: skip
        return Response(body, mimetype="text/plain", headers={"Cache-Control": "no-store"},
                        content_type="text/plain; version=0.0.4; charset=utf-8")  # fmt: skip
