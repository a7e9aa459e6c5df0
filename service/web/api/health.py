"""/healthz (the process answers) and /readyz (Redis answers and a worker is alive)."""

from __future__ import annotations

import contextlib
import time

import orjson
import redis
from flask import Response
from flask.views import MethodView

from service.store import health as health_store
from service.store.availability import describe
from service.web import context
from service.web.api.blueprint import Blueprint
from service.web.api.schemas import HealthSchema
from service.web.errors import problem_response
from service.web.store_format_guard import store_format_check

blp = Blueprint("health", __name__, description="Liveness and readiness (no tenant data)")


def _json(status: int, document: dict[str, object]) -> Response:
    return Response(orjson.dumps(document), status=status, mimetype="application/json",
                    headers={"Cache-Control": "no-store"})  # fmt: skip


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    def get(self) -> Response:
        """Liveness: the API process answers"""
        return _json(200, {"status": "ok"})


@blp.route("/readyz")
class Ready(MethodView):
    @blp.response(200, HealthSchema)
    @blp.problem(503, "Not ready; `checks` says why")
    def get(self) -> Response:
        """Readiness: Redis answers, takes writes, holds its data, and a worker heartbeat is fresh"""
        checks: dict[str, object] = {}
        try:
            state = context.app_state()
            report = health_store.readiness(
                state.client, time.time(), state.settings.worker_stale_seconds,
                state.served_instance,
            )  # fmt: skip
            if report.instance is not None and report.ready and state.served_instance is None:
                state.served_instance = report.instance  # remember the data we served
            checks.update(report.checks)
            ready = report.ready
            with contextlib.suppress(redis.RedisError):  # already said by the checks above
                checks["store_format"] = store_format_check()
                ready = ready and checks["store_format"] == "ok"
        except redis.RedisError as error:  # PING itself is refused on MISCONF
            checks["redis"] = describe(error)
            ready = False
        if ready:
            return _json(200, {"status": "ready", "checks": checks})
        reasons = [f"{k}: {v}" for k, v in checks.items() if v != "ok"]
        return problem_response(503, "; ".join(reasons), slug="not-ready", title="Not ready",
                                extra={"checks": checks}, headers={"Retry-After": "5"})  # fmt: skip
