"""Webhook subscriptions over the API: admin only, the secret shown once, bounded, and URLs
that would reach mailflow's own network refused (with a resolver the test controls: nothing
is ever sent to the addresses refused)."""

from __future__ import annotations

import pytest

from service.app import create_app
from service.store import webhooks_store
from tests.conftest import KeyedClient, close_app
from tests.webhook_receiver import FakeDns

PUBLIC = "93.184.215.14"  # a public address: checked, never connected to here


@pytest.fixture
def dns() -> FakeDns:
    return FakeDns({"hooks.example.com": [PUBLIC], "inside.example.com": ["10.1.2.3"],
                    "mixed.example.com": [PUBLIC, "192.168.1.5"],
                    "meta.example.com": ["169.254.169.254"]})  # fmt: skip


@pytest.fixture
def api(redis_client, redis_server, clock, make_key, dns):
    app = create_app({"redis_url": redis_server.url, "CLOCK": clock, "RESOLVER": dns})
    app.test_client_class = type("AdminClient", (KeyedClient,),
                                 {"default_key": make_key("default")})  # fmt: skip
    yield app.test_client()
    close_app(app)


def create(api, **fields):
    return api.post("/api/v1/webhooks", json={"url": "https://hooks.example.com/in", **fields})


def test_create_shows_the_secret_once_and_lists_without_it(api):
    made = create(api, events=["insight.detected"], format="slack",
                  filter={"severities": ["high"], "connectors": ["Contoso"]})  # fmt: skip
    assert made.status_code == 201, made.json
    body = made.json
    assert body["secret"].startswith("whsec_") and body["enabled"] is True
    assert body["filter"] == {"rules": [], "severities": ["high"], "connectors": ["Contoso"]}
    listed = api.get("/api/v1/webhooks").json
    assert [w["id"] for w in listed["items"]] == [body["id"]]
    assert "secret" not in listed["items"][0]
    one = api.get(f"/api/v1/webhooks/{body['id']}").json
    assert "secret" not in one and one["format"] == "slack"


def test_reads_need_the_admin_scope(api, make_key):
    create(api)
    reader = make_key("default", "read", name="reader")
    answer = api.get("/api/v1/webhooks", headers={"Authorization": f"Bearer {reader}"})
    assert answer.status_code == 403
    assert answer.headers["Content-Type"] == "application/problem+json"


def test_patch_rotate_and_delete(api, clock):
    made = create(api).json
    patched = api.patch(f"/api/v1/webhooks/{made['id']}", json={"enabled": False,
                                                                  "format": "teams"})  # fmt: skip
    assert patched.status_code == 200 and patched.json["enabled"] is False
    assert patched.json["format"] == "teams"
    rotated = api.post(f"/api/v1/webhooks/{made['id']}/rotate-secret", json={"grace_hours": 2})
    assert rotated.status_code == 200
    assert rotated.json["secret"] != made["secret"]
    assert rotated.json["previous_secret_valid_until"] is not None
    clock.advance(hours=3)
    assert api.get(f"/api/v1/webhooks/{made['id']}").json["previous_secret_valid_until"] is None
    assert api.delete(f"/api/v1/webhooks/{made['id']}").status_code == 204
    assert api.get(f"/api/v1/webhooks/{made['id']}").status_code == 404
    assert api.delete(f"/api/v1/webhooks/{made['id']}").status_code == 404


def test_the_number_of_subscriptions_is_bounded(api):
    for _ in range(webhooks_store.MAX_SUBSCRIPTIONS):
        assert create(api).status_code == 201
    refused = create(api)
    assert refused.status_code == 422 and "at most" in refused.json["detail"]


@pytest.mark.parametrize("url, why", [
    ("https://127.0.0.1/hook", "loopback"),
    ("https://10.0.0.8/hook", "private"),
    ("https://169.254.169.254/latest/meta-data", "metadata"),
    ("https://[::1]/hook", "loopback"),
    ("https://[fd00:ec2::254]/", "metadata"),
    ("https://[::ffff:127.0.0.1]/hook", "loopback"),
    ("https://0.0.0.0/hook", "unspecified"),
    ("https://224.0.0.1/hook", "multicast"),
    ("https://inside.example.com/hook", "private"),
    ("https://mixed.example.com/hook", "private"),
    ("https://meta.example.com/hook", "metadata"),
    ("https://nowhere.example.com/hook", "does not resolve"),
    ("http://hooks.example.com/hook", "https"),
    ("ftp://hooks.example.com/hook", "https"),
    ("https://user:pw@hooks.example.com/hook", "password"),
    ("https://hooks.example.com/pfad/über", "ASCII"),
])  # fmt: skip
def test_urls_reaching_inside_are_refused_at_subscription(api, url, why):
    refused = api.post("/api/v1/webhooks", json={"url": url})
    assert refused.status_code == 422, refused.json
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert why in refused.json["detail"]
    assert api.get("/api/v1/webhooks").json["items"] == []


def test_allowed_networks_and_http_open_what_the_operator_allows(
    redis_client, redis_server, clock, make_key, dns
):
    app = create_app({"redis_url": redis_server.url, "CLOCK": clock, "RESOLVER": dns,
                      "webhook_allow_networks": "10.0.0.0/8"})  # fmt: skip
    try:
        client = app.test_client()
        auth = {"Authorization": f"Bearer {make_key('default')}"}
        inside = client.post("/api/v1/webhooks", json={"url": "http://inside.example.com/h"},
                             headers=auth)  # fmt: skip
        assert inside.status_code == 201, inside.json  # http:// to an allowed network
        loop = client.post("/api/v1/webhooks", json={"url": "https://127.0.0.1/h"}, headers=auth)
        assert loop.status_code == 422
        plain = client.post("/api/v1/webhooks", json={"url": "http://hooks.example.com/h"},
                            headers=auth)  # fmt: skip
        assert plain.status_code == 422
    finally:
        close_app(app)


def test_bad_fields_are_problems(api):
    for body in ({"url": "https://hooks.example.com/", "events": ["insight.exploded"]},
                 {"url": "https://hooks.example.com/", "format": "xml"},
                 {"url": "https://hooks.example.com/", "filter": {"rules": ["nope"]}},
                 {"url": "https://hooks.example.com/", "enabled": "yes"},
                 {"events": ["insight.detected"]}):  # fmt: skip
        answer = api.post("/api/v1/webhooks", json=body)
        assert answer.status_code == 422, (body, answer.json)
    assert api.patch("/api/v1/webhooks/wh_nope", json={"enabled": True}).status_code == 404


def test_pings_never_fill_a_queue(api, redis_client):
    made = create(api).json
    answers = [api.post(f"/api/v1/webhooks/{made['id']}/test").status_code for _ in range(12)]
    assert answers == [202] * 10 + [409] * 2
    assert webhooks_store.queued(redis_client, "default", made["id"]) == 10
    api.patch(f"/api/v1/webhooks/{made['id']}", json={"enabled": False})
    assert api.post(f"/api/v1/webhooks/{made['id']}/test").status_code == 409
    assert api.get(f"/api/v1/webhooks/{made['id']}/deliveries").json["items"][0]["event"] == (
        "webhook.ping"
    )


def test_deleting_a_subscription_forgets_all_of_it(api, redis_client):
    from service.store import keys

    made = create(api).json
    api.post(f"/api/v1/webhooks/{made['id']}/test")
    redis_client.hset(keys.webhook_quiet("default"), f"{made['id']}\x1fcondition", 1)
    redis_client.hset(keys.webhook_quiet("default"), "wh_other\x1fcondition", 1)
    deferred = f"{made['id']}\x1fcondition\x1finsight"
    redis_client.zadd(keys.webhook_deferred("default"), {deferred: 1})
    redis_client.hset(keys.webhook_deferred_deliveries("default"), deferred, "msg_x {}")
    assert api.delete(f"/api/v1/webhooks/{made['id']}").status_code == 204
    assert redis_client.hlen(keys.webhook_deliveries("default")) == 0
    assert redis_client.exists(keys.webhook_queue("default", made["id"])) == 0
    assert redis_client.hkeys(keys.webhook_quiet("default")) == [b"wh_other\x1fcondition"]
    assert redis_client.zcard(keys.webhook_deferred("default")) == 0
    assert redis_client.hlen(keys.webhook_deferred_deliveries("default")) == 0
    assert api.get(f"/api/v1/webhooks/{made['id']}/deliveries").status_code == 404
