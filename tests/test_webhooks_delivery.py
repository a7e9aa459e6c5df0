"""Webhooks delivered at least once, in order, to a real receiver on loopback that verifies
every signature with the ``standardwebhooks`` package; retries on the injected clock; answers
that end a delivery; addresses refused at connect time (DNS answered by the test)."""

from __future__ import annotations

import itertools
import json
import shutil
import ssl
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from jsonschema import Draft202012Validator

from service.app import create_app
from service.store import keys, webhooks_store
from service.worker.notifier import Notifier
from tests.conftest import KeyedClient, close_app
from tests.helpers import post_batches
from tests.webhook_receiver import FakeDns, receiver

_ids = itertools.count()
HOST = "hooks.example"  # resolved by the test's DNS to loopback
LOOPBACK = {"webhook_allow_networks": "127.0.0.0/8"}


def mail(clock, connector, total, tls10):
    return [{"id": f"w{next(_ids)}", "timestamp": clock.now.isoformat(), "direction": "inbound",
             "connector": connector, "connector_type": "partner",
             "tls_version": "TLS1.0" if n < tls10 else "TLS1.2"} for n in range(total)]  # fmt: skip


@pytest.fixture
def dns() -> FakeDns:
    return FakeDns({HOST: ["127.0.0.1"]})


@pytest.fixture
def api(redis_client, redis_server, clock, make_key, dns):
    app = create_app({"redis_url": redis_server.url, "CLOCK": clock, "RESOLVER": dns,
                      **LOOPBACK})  # fmt: skip
    app.test_client_class = type("AdminClient", (KeyedClient,),
                                 {"default_key": make_key("default")})  # fmt: skip
    yield app.test_client()
    close_app(app)


def make_notifier(redis_client, settings, clock, dns, idle=timedelta(seconds=5)):
    """The notifier's own loop on the injected clock: an idle wait moves the clock ``idle``."""
    return Notifier(redis_client, settings.with_overrides(LOOPBACK), clock=clock, resolver=dns,
                    sleep=lambda _: clock.advance(seconds=idle.total_seconds()))  # fmt: skip


@pytest.fixture
def notifier(redis_client, settings, clock, dns):
    return make_notifier(redis_client, settings, clock, dns)


def run(notifier, clock, until, within=timedelta(hours=2)):
    deadline = clock.now + within
    notifier.work(until=lambda: until() or clock.now >= deadline)


def subscribe(api, target, **fields):
    url = target.url.replace("127.0.0.1", HOST)
    made = api.post("/api/v1/webhooks", json={"url": url, **fields})
    assert made.status_code == 201, made.json
    target.secrets.append(made.json["secret"])
    return made.json


def detect(api, clock, run_worker, *connectors):
    for name in connectors:
        post_batches(api, mail(clock, name, 100, 12))
    run_worker()


def resolve(api, clock, run_worker, *connectors):
    for name in connectors:
        post_batches(api, mail(clock, name, 300, 0))
    run_worker()


def feed_order(api):
    items = api.get("/api/v1/insights", query_string={"state": "all", "limit": 100}).json["items"]
    return {i["id"]: i for i in items}


def test_500_for_ten_minutes_then_200_every_event_arrives_in_order(
    api, clock, run_worker, notifier
):
    with receiver() as target:
        start = clock.now
        target.answer = lambda _: 500 if clock.now < start + timedelta(minutes=10) else 200
        sub = subscribe(api, target)
        detect(api, clock, run_worker, "P1", "P2", "P3")
        clock.advance(minutes=1)
        resolve(api, clock, run_worker, "P1", "P2", "P3")
        run(notifier, clock, lambda: len(target.delivered()) >= 6)

        delivered = target.delivered()
        assert all(r.verified for r in target.received), "every delivery is signed"
        events = [(r.json["type"], r.json["data"]["id"]) for r in delivered]
        assert len(events) == 6 and len({r.webhook_id for r in delivered}) == 6
        assert [e for e, _ in events] == ["insight.detected"] * 3 + ["insight.resolved"] * 3
        sequences = [r.json["data"]["sequence"] for r in delivered]
        assert sequences == sorted(sequences), "in the order of the feed's transitions"
        assert {i for _, i in events} == set(feed_order(api))
        # Every 500 was a retry of a delivery that later arrived, with the same id; and the
        # later events waited: none arrived before the first one was delivered.
        first_ok = target.received.index(delivered[0])
        assert {r.webhook_id for r in target.received[:first_ok]} == {delivered[0].webhook_id}
        assert {r.webhook_id for r in target.received} == {r.webhook_id for r in delivered}
        assert target.received[0].status == 500 and first_ok >= 3  # retried several times
        assert clock.now - start >= timedelta(minutes=10)

        log = api.get(f"/api/v1/webhooks/{sub['id']}/deliveries").json["items"]
        assert {d["status"] for d in log} == {"delivered"}
        [oldest] = [d for d in log if d["id"] == delivered[0].webhook_id]
        assert oldest["attempt_count"] == first_ok + 1
        assert [a["status_code"] for a in oldest["attempts"]][-1] == 200


def test_a_later_event_waits_while_an_earlier_one_is_retried(api, clock, run_worker, notifier):
    with receiver() as target:
        target.answer = lambda got: (503, {"Retry-After": "600"})
        sub = subscribe(api, target)
        detect(api, clock, run_worker, "P1", "P2")
        run(notifier, clock, lambda: len(target.received) >= 2, within=timedelta(hours=1))
        assert len({r.webhook_id for r in target.received}) == 1, "the second waited"
        log = api.get(f"/api/v1/webhooks/{sub['id']}/deliveries").json["items"]
        [first] = [d for d in log if d["attempt_count"]]
        moments = [datetime.fromisoformat(a["at"].replace("Z", "+00:00"))
                   for a in first["attempts"]]  # fmt: skip
        assert moments[1] - moments[0] >= timedelta(seconds=600), "Retry-After honoured"


@pytest.mark.parametrize("status, retried, disabled", [
    (400, False, False), (404, False, False), (410, False, True),
    (408, True, False), (429, True, False), (302, False, False),
])  # fmt: skip
def test_what_each_answer_means(api, clock, run_worker, notifier, status, retried, disabled):
    with receiver() as target, receiver() as elsewhere:
        target.answer = lambda _: (status, {"Location": elsewhere.url} if status == 302 else {})
        sub = subscribe(api, target)
        detect(api, clock, run_worker, "P1")
        run(notifier, clock, lambda: len(target.received) >= (2 if retried else 1),
            within=timedelta(minutes=30))  # fmt: skip
        run(notifier, clock, lambda: False, within=timedelta(minutes=2))
        [delivery] = api.get(f"/api/v1/webhooks/{sub['id']}/deliveries").json["items"]
        assert delivery["status"] == ("pending" if retried else "failed")
        assert (len(target.received) > 1) == retried
        assert elsewhere.received == [], "a redirect is never followed"
        after = api.get(f"/api/v1/webhooks/{sub['id']}").json
        assert after["enabled"] is not disabled
        if disabled:
            assert "410" in after["disabled_reason"]


def test_failing_for_the_retry_period_disables_the_subscription(
    api, clock, run_worker, redis_client, settings, dns
):
    # Waits between attempts grow to an hour: idle waits of 10 minutes lose nothing.
    notifier = make_notifier(redis_client, settings, clock, dns, idle=timedelta(minutes=10))
    with receiver() as target:
        target.answer = lambda _: 500
        sub = subscribe(api, target)
        detect(api, clock, run_worker, "P1")
        enabled = lambda: api.get(f"/api/v1/webhooks/{sub['id']}").json["enabled"]  # noqa: E731
        run(notifier, clock, lambda: not enabled(), within=timedelta(days=4))
        after = api.get(f"/api/v1/webhooks/{sub['id']}").json
        assert after["enabled"] is False and "3 days" in after["disabled_reason"]
        [delivery] = api.get(f"/api/v1/webhooks/{sub['id']}/deliveries").json["items"]
        assert delivery["status"] == "failed" and delivery["attempt_count"] > 10
        # An insight says so, until the webhook is enabled again.
        [said] = [i for i in feed_order(api).values() if i["rule"] == "webhook-disabled"]
        assert said["state"] == "active" and sub["id"] in said["recommendation"]
        assert said["links"]["webhook"] == f"/api/v1/webhooks/{sub['id']}"
        assert api.patch(f"/api/v1/webhooks/{sub['id']}", json={"enabled": True}).json[
            "disabled_reason"] is None  # fmt: skip
        assert feed_order(api)[said["id"]]["state"] == "resolved"


def test_addresses_are_checked_again_at_connect_time(api, clock, run_worker, notifier, dns):
    with receiver() as target:
        sub = subscribe(api, target)
        dns.answers[HOST] = ["10.9.8.7"]  # the name now points inside: refused, never tried
        detect(api, clock, run_worker, "P1")
        run(notifier, clock, lambda: False, within=timedelta(minutes=1))
        assert target.received == []
        [delivery] = api.get(f"/api/v1/webhooks/{sub['id']}/deliveries").json["items"]
        assert delivery["status"] == "failed"
        assert "private address" in delivery["attempts"][0]["error"]
        # Retried by hand once DNS is right again: the same id arrives.
        dns.answers[HOST] = ["127.0.0.1"]
        again = api.post(f"/api/v1/webhooks/{sub['id']}/deliveries/{delivery['id']}/retry")
        assert again.status_code == 202
        run(notifier, clock, lambda: bool(target.received), within=timedelta(minutes=1))
        assert [r.webhook_id for r in target.received] == [delivery["id"]]


def test_rotation_sends_both_signatures_for_the_grace_period(api, clock, run_worker, notifier):
    with receiver() as target:
        sub = subscribe(api, target)
        old = target.secrets.pop()
        new = api.post(f"/api/v1/webhooks/{sub['id']}/rotate-secret",
                       json={"grace_hours": 1}).json["secret"]  # fmt: skip
        for secret, expect_verified in ((old, True), (new, True)):
            target.secrets[:] = [secret]
            ping = api.post(f"/api/v1/webhooks/{sub['id']}/test")
            assert ping.status_code == 202
            run(notifier, clock, lambda p=ping: any(r.webhook_id == p.json["id"]
                                                    for r in target.received))  # fmt: skip
            assert target.received[-1].verified is expect_verified
            assert target.received[-1].json["type"] == "webhook.ping"
        assert len(target.received[-1].headers["webhook-signature"].split(" ")) == 2
        clock.advance(hours=2)
        target.secrets[:] = [old]
        api.post(f"/api/v1/webhooks/{sub['id']}/test")
        run(notifier, clock, lambda: len(target.received) >= 3)
        assert target.received[-1].verified is False, "the grace period is over"
        assert len(target.received[-1].headers["webhook-signature"].split(" ")) == 1


def test_filters_choose_the_events(api, clock, run_worker, notifier):
    with receiver() as target:
        subscribe(api, target, events=["insight.resolved"], filter={"connectors": ["P2"]})
        detect(api, clock, run_worker, "P1", "P2")
        clock.advance(minutes=1)
        resolve(api, clock, run_worker, "P1", "P2")
        run(notifier, clock, lambda: False, within=timedelta(minutes=1))
        [only] = target.delivered()
        assert only.json["type"] == "insight.resolved"
        assert only.json["data"]["connector"]["name"] == "P2"


def test_no_subscription_no_outbox(api, clock, run_worker, redis_client):
    detect(api, clock, run_worker, "P1")
    assert redis_client.llen(keys.webhook_outbox("default")) == 0
    assert webhooks_store.webhook_tenants(redis_client) == []


SHAPES = Path(__file__).resolve().parent / "webhook_shapes"
SCHEMAS = {"alertmanager": "alertmanager-webhook-v4.schema.json",
           "slack": "slack-block-kit-message.schema.json",
           "teams": "teams-adaptive-card-message.schema.json"}  # fmt: skip


def shape(name):
    schema = json.loads((SHAPES / name).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_the_schemas_accept_the_documented_example():
    example = json.loads((SHAPES / "alertmanager-example.json").read_text())
    shape(SCHEMAS["alertmanager"]).validate(example)
    broken = {**example, "version": "3"}
    assert not shape(SCHEMAS["alertmanager"]).is_valid(broken)


@pytest.mark.parametrize("fmt", ["standard", "slack", "teams", "alertmanager"])
def test_each_format_as_received_has_its_published_shape(api, clock, run_worker, notifier, fmt):
    with receiver() as target:
        subscribe(api, target, format=fmt)
        detect(api, clock, run_worker, "P1")
        clock.advance(minutes=1)
        resolve(api, clock, run_worker, "P1")
        run(notifier, clock, lambda: len(target.delivered()) >= 2)
        bodies = [r.json for r in target.delivered()]
        assert all(r.verified for r in target.received)
    [insight] = feed_order(api).values()
    if fmt == "standard":
        assert [b["type"] for b in bodies] == ["insight.detected", "insight.resolved"]
        assert bodies[1]["data"] == insight, "the insight exactly as the feed returns it"
        assert bodies[0]["data"]["id"] == insight["id"] and bodies[0]["data"]["state"] == "active"
        return
    validator = shape(SCHEMAS[fmt])
    for body in bodies:
        errors = [e.message for e in validator.iter_errors(body)]
        assert not errors, (fmt, errors, body)
    if fmt == "alertmanager":
        detected, resolved = (b["alerts"][0] for b in bodies)
        assert detected["fingerprint"] == resolved["fingerprint"], "stable per insight"
        assert (detected["status"], resolved["status"]) == ("firing", "resolved")
        assert detected["endsAt"] == "0001-01-01T00:00:00Z"
        assert resolved["endsAt"] == insight["resolved_at"]
        assert resolved["startsAt"] == insight["first_detected_at"]
        assert detected["labels"]["alertname"] == insight["rule"]
    if fmt == "slack":
        assert bodies[0]["blocks"][0]["text"]["text"].startswith("Detected: ")
        assert bodies[1]["blocks"][0]["text"]["text"].startswith("Resolved: ")


def test_a_slack_message_stays_within_block_kit_limits_whatever_the_text():
    from service.core.webhook_payloads import event, slack

    long = {"id": "i", "title": "T" * 500, "rule": "r", "recommendation": "x" * 5000,
            "connector": {"name": "n" * 3000, "type": "partner"}}  # fmt: skip
    body = slack(event("insight.detected", "2026-01-01T00:00:00Z", long))
    errors = [e.message for e in shape(SCHEMAS["slack"]).iter_errors(body)]
    assert not errors
    body["blocks"][0]["text"]["text"] = "T" * 151  # the schema holds what Slack refuses
    assert not shape(SCHEMAS["slack"]).is_valid(body)


def quiet_settings(settings, cap=0, quiet=0):
    return settings.with_overrides({"webhook_daily_cap": cap, "webhook_quiet_minutes": quiet})


def test_a_flapping_condition_is_quiet_after_its_resolution(
    api, clock, run_worker, redis_client, settings, dns
):
    notifier = make_notifier(redis_client, quiet_settings(settings, quiet=60), clock, dns)
    with receiver() as target:
        subscribe(api, target)
        post_batches(api, mail(clock, "P1", 100, 12))  # 12 %: detected
        run_worker()
        clock.advance(minutes=1)
        post_batches(api, mail(clock, "P1", 300, 0))  # 3 %: resolved
        run_worker()
        clock.advance(minutes=1)
        post_batches(api, mail(clock, "P1", 100, 100))  # 22 %: detected again, within the hour
        run_worker()
        clock.advance(minutes=1)
        post_batches(api, mail(clock, "P1", 2000, 0))  # 4.5 %: resolved again
        run_worker()
        run(notifier, clock, lambda: False, within=timedelta(minutes=1))
        assert [r.json["type"] for r in target.delivered()] == [
            "insight.detected",
            "insight.resolved",
        ], "the flap in the quiet hour is not sent"
        clock.advance(minutes=61)
        post_batches(api, mail(clock, "P1", 500, 500))  # detected after the quiet period
        run_worker()
        run(notifier, clock, lambda: len(target.delivered()) >= 3, within=timedelta(minutes=5))
        kinds = [r.json["type"] for r in target.delivered()]
        assert kinds == ["insight.detected", "insight.resolved", "insight.detected"]
        assert redis_client.hlen(keys.webhook_quiet("default")) == 0, "no mark outlives its use"
    ids = [i["id"] for i in feed_order(api).values()]
    assert len(ids) == 3, "the feed has every insight, the quiet one too"


def test_over_the_daily_cap_events_wait_for_the_next_days_digest(
    api, clock, run_worker, redis_client, settings, dns
):
    notifier = make_notifier(redis_client, quiet_settings(settings, cap=2), clock, dns)
    with receiver() as target:
        subscribe(api, target)
        detect(api, clock, run_worker, "P1", "P2", "P3", "P4")
        run(notifier, clock, lambda: False, within=timedelta(minutes=1))
        assert len(target.delivered()) == 2
        clock.now = clock.now.replace(hour=0, minute=0) + timedelta(days=1, minutes=1)
        run(notifier, clock, lambda: len(target.delivered()) >= 3, within=timedelta(minutes=5))
        digest = target.delivered()[-1].json
        assert digest["type"] == "insight.digest" and digest["data"]["count"] == 2
        run(notifier, clock, lambda: False, within=timedelta(minutes=5))
        assert len(target.delivered()) == 3, "one digest a day"


def test_metrics_count_deliveries_failures_and_the_queue_age(
    api, clock, run_worker, notifier, redis_client
):
    from service.telemetry import metrics

    with receiver() as target:
        target.answer = lambda _: 500
        subscribe(api, target)
        detect(api, clock, run_worker, "P1")
        run(notifier, clock, lambda: len(target.received) >= 2, within=timedelta(minutes=5))
        text = metrics.render(redis_client, clock.now.timestamp(), 15, False)
        age = float(text.split("\nmailflow_webhook_queue_oldest_age_seconds ")[1].split()[0])
        assert age >= 5, "a delivery has been waiting since its first failure"
        target.answer = lambda _: 200
        run(notifier, clock, lambda: len(target.delivered()) >= 1)
    text = metrics.render(redis_client, clock.now.timestamp(), 15, False)
    assert 'mailflow_webhook_deliveries_total{outcome="delivered"}' in text
    assert 'mailflow_webhook_deliveries_total{outcome="pending"}' in text
    assert "\nmailflow_webhook_queue_oldest_age_seconds 0\n" in text
    assert "mailflow_webhook_delivery_duration_seconds_count" in text


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for HOST, made by the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", f"/CN={HOST}", "-addext",
                    f"subjectAltName=DNS:{HOST}"], check=True, capture_output=True)  # fmt: skip
    return cert, key


def test_https_connects_to_the_checked_address_with_the_urls_name(
    api, clock, run_worker, redis_client, settings, dns, certificate
):
    cert, key = certificate
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    names: list[str | None] = []
    server_tls.sni_callback = lambda _sock, name, _ctx: names.append(name)
    notifier = make_notifier(redis_client, settings, clock, dns)
    notifier.tls = ssl.create_default_context(cafile=str(cert))
    with receiver(tls=server_tls) as target:
        sub = subscribe(api, target)
        assert sub["url"].startswith(f"https://{HOST}:")
        detect(api, clock, run_worker, "P1")
        run(notifier, clock, lambda: bool(target.delivered()), within=timedelta(minutes=1))
        [got] = target.delivered()
    assert got.verified and names == [HOST], "TLS asked for the URL's name (SNI)"
    assert got.headers["host"] == f"{HOST}:{target.url.rsplit(':', 1)[1].split('/')[0]}"
    assert dns.asked.count(HOST) >= 2, "resolved at subscription and again at the delivery"


def test_the_dashboard_shows_webhooks_and_their_deliveries_to_admins(
    api, clock, run_worker, notifier, make_key
):
    from tests.html_cells import Page, sign_in

    with receiver() as target:
        target.answer = lambda got: 200 if target.received else 503
        sub = subscribe(api, target, description="On call")
        detect(api, clock, run_worker, "P1")
        run(notifier, clock, lambda: bool(target.delivered()))
    admin = sign_in(api.application, make_key("default", "read", "admin", name="admin"))
    answer = admin.get("/webhooks")
    assert answer.status_code == 200, answer.data[:300]
    html = Page(answer.get_data(as_text=True))
    port = urlsplit(target.url).port
    assert html.texts("span", "webhook-url") == [f"http://{HOST}:{port}/…"]
    assert f"{port}/hook" not in answer.get_data(as_text=True), "a path may be a credential"
    assert html.texts("td", "status") == ["delivered"]
    assert html.texts("td", "attempts") == ["2"] and html.texts("td", "answer") == ["200"]
    again = admin.get("/webhooks", headers={"If-None-Match": answer.headers["ETag"]})
    assert again.status_code == 304
    api.patch(f"/api/v1/webhooks/{sub['id']}", json={"enabled": False})
    changed = admin.get("/webhooks", headers={"If-None-Match": answer.headers["ETag"]})
    assert changed.status_code == 200 and "Disabled" in changed.get_data(as_text=True)
    reader = sign_in(api.application, make_key("default", "read", name="reader"))
    assert reader.get("/webhooks").status_code == 403


def test_one_tenants_slow_receiver_does_not_hold_up_another_tenant(
    api, clock, run_worker, notifier, make_key, redis_client
):
    other = api.application.test_client()
    other.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_key('other')}"
    with receiver(hold=True) as slow, receiver() as quick:
        held = subscribe(api, slow)
        subscribe(other, quick)
        detect(api, clock, run_worker, "P1")
        detect(other, clock, run_worker, "P1")
        seen_while_held: list[bool] = []

        def quick_got_it() -> bool:
            # The slow tenant ("default") is sent to first; its receiver holds the post until
            # released (30 s at most): a notifier that waited for it would deliver the quick
            # one only once that post had an outcome (its 10 s timeout at the latest).
            if quick.delivered() and not seen_while_held:
                [first] = webhooks_store.recent_deliveries(redis_client, "default", held["id"], 1)
                seen_while_held.append(first["attempt_count"] == 0)
            if seen_while_held and slow.arrived.is_set():
                slow.release.set()  # let the slow one answer, so the loop can end
                return True
            return False

        run(notifier, clock, quick_got_it, within=timedelta(minutes=5))
    assert seen_while_held == [True], "delivered while the other tenant's post was held"
    assert len(slow.delivered()) == 1 and slow.delivered()[0].verified


def test_a_condition_back_within_the_quiet_period_is_sent_when_it_ends_if_still_active(
    api, clock, run_worker, redis_client, settings, dns
):
    notifier = make_notifier(redis_client, quiet_settings(settings, quiet=60), clock, dns)
    with receiver() as target:
        subscribe(api, target)
        post_batches(api, mail(clock, "P1", 100, 12))  # detected
        run_worker()
        clock.advance(minutes=1)
        post_batches(api, mail(clock, "P1", 300, 0))  # resolved
        run_worker()
        clock.advance(minutes=1)
        post_batches(api, mail(clock, "P1", 100, 100))  # back, and it stays
        run_worker()
        back = clock.now
        run(notifier, clock, lambda: False, within=timedelta(minutes=30))
        assert len(target.delivered()) == 2, "not within the quiet hour"
        run(notifier, clock, lambda: len(target.delivered()) >= 3, within=timedelta(hours=1))
        [active] = [i for i in feed_order(api).values() if i["state"] == "active"]
        third = target.delivered()[2]
        assert third.json["type"] == "insight.detected" and third.json["data"]["id"] == active["id"]
        assert clock.now - back >= timedelta(minutes=58), "when the quiet period ended"
        clock.advance(minutes=1)
        post_batches(api, mail(clock, "P1", 5000, 0))  # and its resolution is sent as usual
        run_worker()
        run(notifier, clock, lambda: len(target.delivered()) >= 4, within=timedelta(minutes=5))
        fourth = target.delivered()[3].json
        assert fourth["type"] == "insight.resolved" and fourth["data"]["id"] == active["id"]
    assert redis_client.zcard(keys.webhook_deferred("default")) == 0
