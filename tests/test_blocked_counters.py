"""Mail blocked by a TLS policy: its own daily counters (bounded, exact, expiring with the
day), the Transit security report's three sections, against truths counted here."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from service.store import keys
from service.store.aggregates import day_lifetime_ms
from tests.helpers import post_batches
from tests.security_traces import make_security_traces

CLASSES = ("dane", "mta-sts", "authenticated", "encrypted", "none")


def _blocked(i, when, reason, domain="example.net", policy="encrypt", direction="outbound"):
    return {"id": f"b{i}", "timestamp": when.isoformat(), "direction": direction,
            "tls_version": None, "outcome": "blocked", "blocked_reason": reason,
            "recipient_domain": domain, "tls_policy": policy}  # fmt: skip


def test_transit_report_sections_match_truth(client, clock, run_worker):
    traces, delivered, blocked = make_security_traces(2500, clock.now, seed=21, days=3)
    post_batches(client, traces)
    run_worker()
    per_day: Counter = Counter()
    for trace in traces:
        if trace.get("outcome") != "blocked":
            from tests.security_traces import CASES

            klass = next(k for v, a, p, k in CASES if (v, a, p) == (trace["tls_version"],
                         trace.get("tls_auth"), trace.get("tls_policy")))  # fmt: skip
            per_day[(trace["timestamp"][:10], trace["direction"], klass)] += 1
    body = client.get("/api/v1/mailflow/transit-security?days=3").json
    for direction in ("inbound", "outbound"):
        section = body["directions"][direction]
        assert len(section["sent"]) == 3
        for day in section["sent"]:
            for klass in CLASSES:
                assert day["classes"][klass]["messages"] == per_day[(day["date"], direction, klass)]
            if day["messages"]:
                assert round(sum(c["percent"] for c in day["classes"].values()), 1) == 100.0
        truth: dict = {}
        for (d, _, policy, domain, reason), count in blocked.items():
            if d == direction:
                messages, reasons = truth.get((domain, policy), (0, set()))
                truth[(domain, policy)] = (messages + count, reasons | {reason})
        got = {(r["recipient_domain"], r["policy"]): (r["messages"], set(r["errors"]))
               for r in section["blocked"]}  # fmt: skip
        assert got == truth
        offered: Counter = Counter()
        for (d, _, _, domain, reason), count in blocked.items():
            if d == direction and "not offered" in reason:
                offered[domain] += count
        assert {r["recipient_domain"]: r["blocked_not_offered"] for r in section["no_tls_offered"]
                if r["blocked_not_offered"]} == offered  # fmt: skip
    only = client.get("/api/v1/mailflow/transit-security?direction=inbound").json
    assert list(only["directions"]) == ["inbound"]
    assert client.get("/api/v1/mailflow/transit-security?direction=up").status_code == 422


def test_distinct_blocked_fields_per_day_are_bounded_and_every_message_counted(
    client, clock, run_worker, redis_client
):
    traces = [_blocked(i, clock.now, f"error {i}") for i in range(12)]
    traces += [_blocked(100, clock.now, "error 0")]  # a known field still counts exactly
    post_batches(client, traces)
    run_worker(blocked_fields_per_day=5)
    fields = redis_client.hgetall(keys.day_blocked("default", clock.now.date().isoformat()))
    counts = {f.decode().split("\x1f")[-1]: int(n) for f, n in fields.items()}
    assert sum(counts.values()) == 13
    assert counts["(other)"] == 13 - sum(n for reason, n in counts.items() if reason != "(other)")
    assert len(counts) == 6  # five exact, one overflow
    body = client.get("/api/v1/mailflow/transit-security").json["directions"]["outbound"]
    assert sum(r["messages"] for r in body["blocked"]) == 13
    rows = client.get("/api/v1/connectors?direction=outbound&type=internet").json["rows"]
    assert rows[0]["blocked"] == 13 and rows[0]["messages"] == 0


def test_blocked_counters_expire_with_their_day(client, clock, run_worker, redis_client):
    post_batches(client, [_blocked(0, clock.now - timedelta(days=2), "no STARTTLS")])
    run_worker()
    day = (clock.now - timedelta(days=2)).date().isoformat()
    expected = day_lifetime_ms(day, 90, clock.now)  # one day past retention, on the clock
    for key in (keys.day_blocked("default", day), keys.day_blocked_version("default", day)):
        assert expected - 5000 < redis_client.pttl(key) <= expected


def test_a_resent_blocked_message_counts_once(client, clock, run_worker):
    trace = _blocked(7, clock.now, "TLS is required, but was not offered by host mx.example.net")
    assert client.post("/api/v1/traces", json=[trace]).json["accepted"] == 1
    assert client.post("/api/v1/traces", json=[trace]).json["duplicates"] == 1
    run_worker()
    body = client.get("/api/v1/mailflow/transit-security").json["directions"]["outbound"]
    assert body["blocked"] == [{"recipient_domain": "example.net", "policy": "encrypt",
                                "messages": 1, "errors": [trace["blocked_reason"]],
                                "errors_total": 1}]  # fmt: skip
    assert body["no_tls_offered"] == [{"recipient_domain": "example.net", "row": "domain",
                                       "delivered_without_tls": 0, "blocked_not_offered": 1}]  # fmt: skip
    snapshot = client.get("/api/v1/mailflow/snapshot").json["directions"]["outbound"]
    assert snapshot["messages"] == 0


def test_blocked_mail_of_a_new_connector_counts_against_the_connector_limit(
    redis_server, clock, make_key, run_worker
):
    from service.app import create_app
    from tests.conftest import KeyedClient, close_app

    app = create_app({"redis_url": redis_server.url, "CLOCK": clock, "max_connectors": 2})
    app.test_client_class = type("Limited", (KeyedClient,), {"default_key": make_key("default")})
    try:
        client = app.test_client()
        traces = [{**_blocked(200 + i, clock.now, "no TLS"), "connector": f"relay-{i}",
                   "connector_type": "onpremises"} for i in range(3)]  # fmt: skip
        response = client.post("/api/v1/traces", json=traces)
        assert response.status_code == 202, response.json
        assert response.json["accepted"] == 2
        assert [e["field"] for e in response.json["errors"]] == ["connector"]
        run_worker()
        rows = client.get("/api/v1/connectors?security=blocked").json["rows"]
        assert sorted((r["name"], r["blocked"]) for r in rows) == [("relay-0", 1), ("relay-1", 1)]
    finally:
        close_app(app)


def test_the_blocked_read_lists_every_counter_of_the_window(client, clock, run_worker):
    traces, _, blocked = make_security_traces(1500, clock.now, seed=41, days=3, blocked_share=0.3)
    post_batches(client, traces)
    run_worker()
    truth: Counter = Counter()
    for trace in traces:
        if trace.get("outcome") == "blocked":
            truth[(trace["timestamp"][:10], trace["direction"], trace.get("connector"),
                   trace.get("tls_policy"), trace["recipient_domain"],
                   trace["blocked_reason"])] += 1  # fmt: skip
    assert sum(truth.values()) == sum(blocked.values())
    body = client.get("/api/v1/mailflow/blocked?days=3").json
    got = Counter({(r["date"], r["direction"], r["connector"], r["policy"],
                    r["recipient_domain"], r["reason"]): r["messages"]
                   for r in body["records"]})  # fmt: skip
    assert got == truth and body["total_records"] == len(truth) and not body["truncated"]
    outbound = client.get("/api/v1/mailflow/blocked?days=3&direction=outbound&limit=3").json
    assert len(outbound["records"]) == 3 and outbound["truncated"]
    assert {r["direction"] for r in outbound["records"]} == {"outbound"}
    assert outbound["total_records"] == len({k for k in truth if k[1] == "outbound"})
    assert client.get("/api/v1/mailflow/blocked?limit=0").status_code == 422
