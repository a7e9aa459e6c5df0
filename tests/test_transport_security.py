"""Transport security: the trace fields, the class of each message, and the split the snapshot
and the flyout give per direction, against a truth counted independently."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.helpers import post_batches
from tests.security_traces import make_security_traces

CLASSES = ("dane", "mta-sts", "authenticated", "encrypted", "none")


def _by_direction_and_class(delivered: Counter) -> Counter:
    totals: Counter = Counter()
    for (direction, _, klass), count in delivered.items():
        totals[(direction, klass)] += count
    return totals


def test_snapshot_and_flyout_split_every_direction_by_class(client, clock, run_worker):
    traces, delivered, blocked = make_security_traces(3000, clock.now, seed=11)
    totals = post_batches(client, traces)
    assert totals == {"accepted": 3000, "duplicates": 0, "rejected": 0}
    run_worker()
    truth = _by_direction_and_class(delivered)
    snapshot = client.get("/api/v1/mailflow/snapshot?days=7").json
    flyout = client.get("/api/v1/mailflow/tls?days=7").json
    for body in (snapshot, flyout):
        for direction in ("inbound", "outbound"):
            summary = body["directions"][direction]
            messages = sum(n for (d, _), n in truth.items() if d == direction)
            # Blocked messages were never delivered: not in the message totals.
            assert summary["messages"] == messages
            classes = summary["security"]["classes"]
            assert list(classes) == list(CLASSES)
            for klass in CLASSES:
                assert classes[klass]["messages"] == truth[(direction, klass)], klass
                exact = 100 * truth[(direction, klass)] / messages
                assert abs(classes[klass]["percent"] - exact) <= 0.1
            assert round(sum(c["percent"] for c in classes.values()), 1) == 100.0
            authenticated = sum(truth[(direction, k)] for k in ("dane", "mta-sts", "authenticated"))
            assert summary["security"]["authenticated_messages"] == authenticated
    assert blocked  # the generated log holds blocked messages
    # The flyout's days add up to its window.
    for direction in ("inbound", "outbound"):
        for klass in CLASSES:
            days = sum(e["directions"][direction]["security"]["classes"][klass]["messages"]
                       for e in flyout["series"])  # fmt: skip
            assert days == truth[(direction, klass)]


def test_traces_without_the_new_fields_are_encrypted_or_none(client, clock, run_worker):
    stamp = clock.now.isoformat()
    traces = [{"timestamp": stamp, "direction": "inbound", "tls_version": v, "id": f"p{i}"}
              for i, v in enumerate(["TLS1.2", "TLS1.3", None])]  # fmt: skip
    post_batches(client, traces)
    run_worker()
    classes = client.get("/api/v1/mailflow/snapshot").json["directions"]["inbound"]["security"]
    assert classes["classes"]["encrypted"] == {"messages": 2, "percent": 66.7}
    assert classes["classes"]["none"] == {"messages": 1, "percent": 33.3}
    assert classes["authenticated_percent"] == 0.0


def test_an_empty_window_gives_zeros(client):
    security = client.get("/api/v1/mailflow/snapshot").json["directions"]["outbound"]["security"]
    assert security["authenticated_messages"] == 0
    assert all(c == {"messages": 0, "percent": 0.0} for c in security["classes"].values())


@pytest.mark.parametrize(("extra", "field"), [
    ({"tls_version": None, "tls_auth": "verified"}, "tls_auth"),
    ({"tls_version": "TLS1.2", "tls_auth": "Verified"}, "tls_auth"),
    ({"tls_version": "TLS1.2", "tls_policy": "dane?"}, "tls_policy"),
    ({"tls_version": "TLS1.2", "tls_policy": "none"}, "tls_policy"),
    ({"tls_version": "TLS1.2", "tls_downgraded": "yes"}, "tls_downgraded"),
    ({"tls_version": "TLS1.2", "outcome": "deferred"}, "outcome"),
    ({"tls_version": "TLS1.2", "blocked_reason": "no TLS"}, "blocked_reason"),
    ({"tls_version": None, "outcome": "blocked"}, "blocked_reason"),
    ({"tls_version": "TLS1.2", "outcome": "blocked", "blocked_reason": "x"}, "tls_version"),
    ({"tls_version": None, "outcome": "blocked", "blocked_reason": "x", "tls_auth": "verified"},
     "tls_auth"),
    ({"tls_version": None, "outcome": "blocked", "blocked_reason": "x", "tls_downgraded": True},
     "tls_downgraded"),
    ({"tls_version": None, "outcome": "blocked", "blocked_reason": "a\nb"}, "blocked_reason"),
    ({"tls_version": None, "outcome": "blocked", "blocked_reason": "x" * 999}, "blocked_reason"),
])  # fmt: skip
def test_contradictions_are_refused_by_field(client, clock, extra, field):
    trace = {"timestamp": clock.now.isoformat(), "direction": "outbound", **extra}
    response = client.post("/api/v1/traces", json=[trace])
    assert response.status_code == 422, response.json
    assert response.json["errors"][0]["field"] == field
    assert response.json["errors"][0]["message"] != "unknown field"  # a field of the contract


def test_a_downgraded_delivery_counts_in_its_class(client, clock, run_worker):
    stamp = clock.now.isoformat()
    trace = {"timestamp": stamp, "direction": "outbound", "tls_version": "TLS1.2",
             "tls_policy": "may", "tls_downgraded": True}  # fmt: skip
    assert client.post("/api/v1/traces", json=[trace]).json["accepted"] == 1
    run_worker()
    classes = client.get("/api/v1/mailflow/snapshot").json["directions"]["outbound"]["security"]
    assert classes["classes"]["encrypted"]["messages"] == 1


def _connector_truth(delivered: Counter, blocked: Counter) -> dict:
    rows: dict = {}
    for (direction, connector, klass), count in delivered.items():
        rows.setdefault((direction, connector), {"classes": Counter(), "blocked": 0})
        rows[(direction, connector)]["classes"][klass] += count
    for (direction, connector, *_), count in blocked.items():
        rows.setdefault((direction, connector), {"classes": Counter(), "blocked": 0})
        rows[(direction, connector)]["blocked"] += count
    return rows


def test_connector_report_columns_match_truth(client, clock, run_worker):
    traces, delivered, blocked = make_security_traces(2000, clock.now, seed=12)
    post_batches(client, traces)
    run_worker()
    truth = _connector_truth(delivered, blocked)
    rows = client.get("/api/v1/connectors?limit=1000").json["rows"]
    assert {(r["direction"], r["name"]) for r in rows} == set(truth)
    for row in rows:
        expected = truth[(row["direction"], row["name"])]
        classes = expected["classes"]
        messages = sum(classes.values())
        assert row["messages"] == messages and row["blocked"] == expected["blocked"]
        for klass in CLASSES:
            assert row["security"][klass]["messages"] == classes[klass]
        assert round(sum(s["percent"] for s in row["security"].values()), 1) == 100.0
        exact = {"dane_percent": classes["dane"], "mta_sts_percent": classes["mta-sts"],
                 "encrypted_only_percent": classes["encrypted"],
                 "authenticated_percent": classes["dane"] + classes["mta-sts"]
                 + classes["authenticated"]}  # fmt: skip
        for column, count in exact.items():
            assert abs(row[column] - 100 * count / messages) <= 0.15, column


def test_connector_report_filters_and_sorts_by_security(client, clock, run_worker):
    stamp = clock.now.isoformat()

    def trace(i, connector, **fields):
        return {"id": f"f{i}", "timestamp": stamp, "direction": "outbound",
                "connector": connector, "connector_type": "partner", **fields}  # fmt: skip

    traces = [trace(0, "Dane", tls_version="TLS1.3", tls_policy="dane"),
              trace(1, "Dane", tls_version="TLS1.3", tls_policy="dane"),
              trace(2, "Dane", tls_version="TLS1.2"),
              trace(3, "Plain", tls_version=None),
              trace(4, "Sts", tls_version="TLS1.2", tls_policy="mta-sts"),
              trace(5, "Sts", tls_version="TLS1.2", tls_auth="untrusted"),
              trace(6, "Blocked", tls_version=None, outcome="blocked", tls_policy="dane",
                    blocked_reason="TLSA lookup error", recipient_domain="example.net")]  # fmt: skip
    post_batches(client, traces)
    run_worker()

    def names(query):
        response = client.get(f"/api/v1/connectors?direction=outbound&type=partner&{query}")
        assert response.status_code == 200, response.json
        return [r["name"] for r in response.json["rows"]]

    assert names("security=dane") == ["Dane"]
    assert names("security=none,blocked") == ["Blocked", "Plain"]
    assert names("security=encrypted&sort=name") == ["Dane", "Sts"]
    assert names("sort=-dane_percent")[0] == "Dane"
    assert names("sort=-mta_sts_percent")[0] == "Sts"
    assert names("sort=-authenticated_percent")[:2] == ["Dane", "Sts"]
    assert names("sort=-encrypted_only_percent")[:2] == ["Sts", "Dane"]
    assert names("sort=-blocked")[0] == "Blocked"
    response = client.get("/api/v1/connectors?security=dane,bogus")
    assert response.status_code == 422 and "security" in str(response.json)
    csv_text = client.get("/api/v1/connectors?security=dane&format=csv").get_data(as_text=True)
    header, line = csv_text.strip().split("\r\n")
    assert header.endswith("Authenticated %,DANE %,MTA-STS %,Encrypted only %,Blocked")
    assert line.endswith("66.7,66.7,0.0,33.3,0")


def test_connector_report_by_day_counts_blocked_on_its_day(client, clock, run_worker):
    from datetime import timedelta

    days = [clock.now - timedelta(days=1), clock.now]
    traces = [{"id": f"b{i}", "timestamp": when.isoformat(), "direction": "outbound",
               "tls_version": None, "outcome": "blocked", "blocked_reason": "no STARTTLS"}
              for i, when in enumerate(days + days[1:])]  # fmt: skip
    post_batches(client, traces)
    run_worker()
    rows = client.get("/api/v1/connectors?group_by=day&days=2&direction=outbound").json["rows"]
    assert [(r["date"], r["blocked"], r["messages"]) for r in rows] == [
        (days[0].date().isoformat(), 1, 0),
        (days[1].date().isoformat(), 2, 0),
    ]


def test_a_connectors_own_report_has_its_security_and_blocked(client, clock, run_worker):
    stamp = clock.now.isoformat()
    base = {"timestamp": stamp, "direction": "outbound", "connector_type": "partner"}
    traces = [{**base, "id": "d1", "connector": "Bank", "tls_version": "TLS1.3",
               "tls_policy": "dane"},
              {**base, "id": "d2", "connector": "Bank", "tls_version": "TLS1.2"},
              {**base, "id": "d3", "connector": "Bank", "tls_version": None, "outcome": "blocked",
               "blocked_reason": "Server certificate not verified"},
              {**base, "id": "d4", "connector": "Only blocked", "tls_version": None,
               "outcome": "blocked", "blocked_reason": "TLSA lookup error"}]  # fmt: skip
    post_batches(client, traces)
    run_worker()
    bank = client.get("/api/v1/connectors/outbound/Bank").json
    assert bank["messages"] == 2 and bank["blocked"] == 1
    assert bank["dane_percent"] == 50.0 and bank["encrypted_only_percent"] == 50.0
    assert bank["security"]["dane"] == {"messages": 1, "percent": 50.0}
    only = client.get("/api/v1/connectors/outbound/Only%20blocked")
    assert only.status_code == 200, only.json
    assert only.json["messages"] == 0 and only.json["blocked"] == 1
    assert only.json["type"] == "partner"
    assert client.get("/api/v1/connectors/outbound/Nobody").status_code == 404


SECURED = [
    {"id": "a", "timestamp": "2026-11-27T10:00:00Z", "direction": "outbound",
     "tls_version": "TLSv1.3", "tls_auth": "verified", "tls_policy": "DANE-only"},
    {"id": "b", "timestamp": "2026-11-27T10:00:00Z", "direction": "outbound",
     "connector": "Partner A", "tls_version": None, "outcome": "blocked",
     "tls_policy": "encrypt", "recipient_domain": "Example.NET.",
     "blocked_reason": "TLS is required, but was not offered by host mx.example.net"},
    {"id": "c", "timestamp": "2026-11-27T10:00:00Z", "direction": "inbound",
     "tls_version": "TLS1.2", "tls_auth": "anonymous", "tls_downgraded": True,
     "outcome": "delivered"},
    {"id": "d", "timestamp": "2026-11-27T10:00:00Z", "direction": "outbound",
     "tls_version": "none", "outcome": "blocked", "blocked_reason": "Zertifikat ungültig"},
]  # fmt: skip


@pytest.mark.parametrize("style", ["array", "ndjson"])
def test_a_batch_with_security_fields_and_blocked_mail_takes_the_batch_path(style):
    from service.core.trace_batch import accept_valid_batch
    from tests.test_batch_fast_path_property import DEFINED, MAX_RECORDS, encode, exact
    from tests.test_fast_path_property import WINDOW

    body = encode(SECURED, style, ensure_ascii=False)
    fast = accept_valid_batch(body, style == "ndjson", MAX_RECORDS, WINDOW, DEFINED)
    assert fast is not None
    assert fast == exact(body, style == "ndjson", DEFINED)
    assert fast.counting_keys[1].endswith(
        "\x1fblocked\x1fencrypt\x1fexample.net\x1fTLS is required, but was not offered by host "
        "mx.example.net"
    )
    # A reason on a delivered message is the exact path's to name.
    wrong = [dict(SECURED[0], blocked_reason="x")]
    assert accept_valid_batch(encode(wrong, style, False), style == "ndjson", 4, WINDOW) is None
