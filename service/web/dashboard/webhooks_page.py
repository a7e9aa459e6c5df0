"""The dashboard's webhooks page, for admin sessions: each subscription with its recent
deliveries, read from the store the API's /api/v1/webhooks reads (``webhooks_store``).

Registered on the dashboard's blueprint when this module is imported (``service.app`` does).
Only the scheme and host of a receiver's URL are shown: the path of a Slack or Teams webhook
URL is its credential.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlsplit

import orjson
from flask import Response
from werkzeug.wrappers import Response as BaseResponse

from service.store import webhooks_store
from service.web import context
from service.web.dashboard.pages import Page, _signed_in_or_redirect, blp
from service.web.dashboard.session import SignedIn
from service.web.errors import Problem

RECENT_DELIVERIES = 10  # per subscription


def shown_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…"


@blp.get("/webhooks")
def webhooks() -> Response | BaseResponse:
    signed_in = _signed_in_or_redirect("read")
    if not isinstance(signed_in, SignedIn):
        return signed_in
    if not signed_in.admin:
        raise Problem(403, "the webhooks page needs a key with the admin scope")
    client, tenant = context.client(), context.tenant()
    subscriptions: list[dict[str, Any]] = []
    for doc in webhooks_store.list_subscriptions(client, tenant):
        deliveries = webhooks_store.recent_deliveries(client, tenant, doc["id"],
                                                      RECENT_DELIVERIES)  # fmt: skip
        subscriptions.append({
            "id": doc["id"], "url": shown_url(doc["url"]), "format": doc["format"],
            "events": doc["events"], "enabled": doc["enabled"],
            "disabled_reason": doc.get("disabled_reason"), "description": doc.get("description"),
            "deliveries": [{name: d.get(name) for name in (
                "id", "event", "status", "created_at", "attempt_count", "last_status_code",
                "latency_ms", "next_attempt_at")} for d in deliveries],
        })  # fmt: skip
    page = Page(signed_in)
    # The page reads no cached view: what it shows is part of its ETag itself.
    page.etags.append(hashlib.blake2b(orjson.dumps(subscriptions), digest_size=12).hexdigest())
    return page.answer("webhooks.html", page_class="page-webhooks", subscriptions=subscriptions,
                       limit=webhooks_store.MAX_SUBSCRIPTIONS)  # fmt: skip
