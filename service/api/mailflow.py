"""GET /api/v1/mailflow/snapshot: the mail-flow widget."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView

from service import views
from service.api import context
from service.api.blueprint import Blueprint
from service.api.responses import cached_json
from service.api.schemas import SnapshotSchema, WindowArgsSchema
from service.api.windows import window_from_args

blp = Blueprint("mailflow", __name__, url_prefix="/api/v1/mailflow",
                description="Mail flow: how much mail used which TLS version")  # fmt: skip


@blp.route("/snapshot")
class Snapshot(MethodView):
    @blp.arguments(WindowArgsSchema, location="query", as_kwargs=True)
    @blp.response(200, SnapshotSchema)
    @blp.alt_response(304, description="Not modified (If-None-Match)")
    @blp.alt_response(422, description="Bad window parameters")
    @blp.alt_response(503, description="The data store does not answer; retry")
    def get(self, **args: Any) -> Response:
        """Mail flow widget

        Per direction: messages, encrypted share and the split by TLS version over the window
        (default: the 7 UTC days ending today). Served from a cache the worker keeps fresh.
        """
        window = window_from_args(args)
        view = views.snapshot_view(
            context.client(), context.tenant(), window, context.now(),
            context.settings().view_cache_seconds,
        )  # fmt: skip
        return cached_json(view)
