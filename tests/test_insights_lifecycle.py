"""Insights over simulated days: detection, resolution, recurrence and every threshold edge."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from service.cli.demo import demo_traces
from tests.helpers import post_batches
from tests.worker_loop import LoopDriver

_ids = itertools.count()


def mail(clock, connector, total, matching, version="TLS1.0", ctype="partner",
         direction="inbound", other="TLS1.2"):  # fmt: skip
    return [
        {"id": f"m{next(_ids)}", "timestamp": clock.now.isoformat(), "direction": direction,
         "connector": connector, "connector_type": ctype,
         "tls_version": version if n < matching else other}
        for n in range(total)
    ]  # fmt: skip


def day(clock, offset: int = 0) -> str:
    return (clock.now + timedelta(days=offset)).date().isoformat()


def moment(clock) -> str:
    return clock.now.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture
def loop(redis_client, settings, clock) -> LoopDriver:
    """The worker's own loop (``Worker.work``) on the injected clock: no evaluation is called
    by hand, the worker decides when to evaluate."""
    return LoopDriver(redis_client, settings, clock)


A_PASS = timedelta(seconds=1)  # long enough for the loop's evaluation on a new day or a PUT


def insights(client, state="active"):
    response = client.get("/api/v1/insights", query_string={"state": state, "limit": 1000})
    assert response.status_code == 200, response.json
    return response.json["items"]


def test_partner_tls10_detected_resolved_and_recurring(client, clock, run_worker):
    post_batches(client, mail(clock, "Contoso Partner", 100, 12))
    run_worker()
    [first] = insights(client)
    assert first["rule"] == "inbound-partner-tls10"
    assert first["title"] == "Inbound Partner connector seeing significant TLS1.0 mail flow"
    assert first["state"] == "active" and first["severity"] == "medium"
    assert first["connector"] == {"name": "Contoso Partner", "type": "partner"}
    assert first["measured"] == {"messages": 100, "matching_messages": 12, "percent": 12.0}
    assert first["threshold"] == {"min_percent": 5.0, "min_messages": 10}
    assert first["window"] == {"start": day(clock, -6), "end": day(clock)}
    assert first["first_detected_at"] == first["updated_at"] == moment(clock)
    assert first["resolved_at"] is None
    assert (
        first["links"]["connector_report"] == "/api/v1/connectors/inbound/Contoso%20Partner?days=7"
    )
    assert client.get("/api/v1/mailflow/snapshot").json["active_insights"] == 1
    assert client.get(f"/api/v1/insights/{first['id']}").json == first

    # The partner moves to TLS1.2: 12/200 = 6 % still holds, 12/300 = 4 % does not.
    clock.advance(days=1)
    post_batches(client, mail(clock, "Contoso Partner", 100, 0))
    run_worker()
    [still] = insights(client)
    assert still["id"] == first["id"] and still["measured"]["percent"] == 6.0
    assert still["last_detected_at"] == moment(clock)
    assert still["updated_at"] == first["updated_at"]  # no transition, no feed entry
    clock.advance(days=1)
    post_batches(client, mail(clock, "Contoso Partner", 100, 0))
    run_worker()
    assert insights(client) == []
    [resolved] = insights(client, "resolved")
    assert resolved["id"] == first["id"] and resolved["resolved_at"] == moment(clock)
    assert resolved["state"] == "resolved"
    assert client.get("/api/v1/mailflow/snapshot").json["active_insights"] == 0

    # TLS1.0 comes back: 42/400 = 10.5 % -> a new insight with a new id.
    clock.advance(days=1)
    post_batches(client, mail(clock, "Contoso Partner", 100, 30))
    run_worker()
    [again] = insights(client)
    assert again["id"] != first["id"] and again["measured"]["percent"] == 10.5
    assert {i["id"] for i in insights(client, "all")} == {first["id"], again["id"]}


def test_day_rollover_alone_resolves(client, clock, run_worker, loop):
    post_batches(client, mail(clock, "Contoso Partner", 50, 10))
    run_worker()
    [insight] = insights(client)
    clock.advance(days=6)  # the traffic day is still the oldest day of the window
    loop.run(A_PASS)
    assert [i["id"] for i in insights(client)] == [insight["id"]]
    clock.advance(days=1)  # now it left the window; no new mail at all
    day_starts = clock.now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    loop.run(A_PASS)
    assert insights(client) == []
    [resolved] = insights(client, "resolved")
    assert resolved["resolved_at"] == day_starts  # the loop's first pass of the new day
    loop.run(A_PASS)
    assert insights(client, "all") == [resolved]  # nothing changes without a reason


EDGES = [
    # (rule, connector type, direction, version, total, matching, fires)
    ("inbound-partner-tls10", "partner", "inbound", "TLS1.0", 1000, 49, False),  # 4.9 %
    ("inbound-partner-tls10", "partner", "inbound", "TLS1.0", 1000, 50, True),  # 5.0 %
    ("inbound-partner-tls10", "partner", "inbound", "TLS1.0", 100, 9, False),  # 9 messages
    ("inbound-partner-tls10", "partner", "inbound", "TLS1.0", 100, 10, True),  # 10 messages
    ("inbound-onpremises-tls10", "onpremises", "inbound", "TLS1.0", 1000, 49, False),
    ("inbound-onpremises-tls10", "onpremises", "inbound", "TLS1.0", 1000, 50, True),
    ("inbound-onpremises-tls10", "onpremises", "inbound", "TLS1.0", 100, 9, False),
    ("inbound-onpremises-tls10", "onpremises", "inbound", "TLS1.0", 100, 10, True),
    ("inbound-partner-tls11", "partner", "inbound", "TLS1.1", 1000, 49, False),
    ("inbound-partner-tls11", "partner", "inbound", "TLS1.1", 1000, 50, True),
    ("inbound-partner-tls11", "partner", "inbound", "TLS1.1", 100, 9, False),
    ("inbound-partner-tls11", "partner", "inbound", "TLS1.1", 100, 10, True),
    ("inbound-onpremises-tls11", "onpremises", "inbound", "TLS1.1", 1000, 50, True),
    ("inbound-onpremises-tls11", "onpremises", "inbound", "TLS1.1", 100, 9, False),
    ("connector-unencrypted", "partner", "outbound", None, 1000, 49, False),
    ("connector-unencrypted", "partner", "outbound", None, 1000, 50, True),
    ("connector-unencrypted", "onpremises", "inbound", None, 100, 9, False),
    ("connector-unencrypted", "onpremises", "inbound", None, 100, 10, True),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "ctype", "direction", "version", "total", "matching", "fires"),
                         EDGES)  # fmt: skip
def test_threshold_edges(client, clock, run_worker, rule, ctype, direction, version, total,
                         matching, fires):  # fmt: skip
    post_batches(client, mail(clock, "Edge", total, matching, version, ctype, direction))
    run_worker()
    found = [i["rule"] for i in insights(client)]
    assert (rule in found) is fires
    assert all(r == rule for r in found)  # no other rule fires on this traffic


def test_outbound_tls10_and_internet_mail_never_fire(client, clock, run_worker):
    post_batches(client, mail(clock, "Out", 100, 50, direction="outbound"))
    internet = mail(clock, "x", 100, 50)
    for trace in internet:
        trace["connector"] = None
        del trace["connector_type"]
    post_batches(client, internet)
    run_worker()
    assert insights(client) == []


def test_forced_tls_violation_covers_today_and_yesterday(client, clock, run_worker, loop):
    client.put("/api/v1/connectors/outbound/Bank", json={"type": "partner", "forced_tls": True})
    post_batches(client, mail(clock, "Bank", 500, 1, version=None, direction="outbound"))
    run_worker()
    [insight] = insights(client)
    assert insight["rule"] == "forced-tls-violation" and insight["severity"] == "high"
    assert insight["measured"]["matching_messages"] == 1
    assert insight["window"] == {"start": day(clock, -1), "end": day(clock)}
    clock.advance(days=1)  # yesterday's plaintext message is still in the window
    loop.run(A_PASS)
    assert len(insights(client)) == 1
    clock.advance(days=1)
    loop.run(A_PASS)
    assert insights(client) == []


def test_undefined_or_unforced_connector_is_no_forced_tls_violation(client, clock, run_worker):
    client.put("/api/v1/connectors/outbound/Bank", json={"type": "partner"})
    post_batches(client, mail(clock, "Bank", 500, 1, version=None, direction="outbound"))
    run_worker()
    assert insights(client) == []


def test_rule_settings_change_thresholds_and_disable(client, clock, run_worker, loop):
    post_batches(client, mail(clock, "Contoso", 100, 12))
    run_worker()
    assert len(insights(client)) == 1
    response = client.put("/api/v1/insight-rules/inbound-partner-tls10", json={"min_percent": 15})
    assert response.status_code == 200
    assert response.json["min_percent"] == 15.0 and response.json["min_messages"] == 10
    assert response.json["defaults"] == {"enabled": True, "min_percent": 5.0, "min_messages": 10}
    loop.run(A_PASS)
    assert insights(client) == []
    client.put("/api/v1/insight-rules/inbound-partner-tls10", json={"min_percent": 12.0})
    loop.run(A_PASS)
    [insight] = insights(client)
    assert insight["threshold"] == {"min_percent": 12.0, "min_messages": 10}
    client.put("/api/v1/insight-rules/inbound-partner-tls10", json={"enabled": False})
    loop.run(A_PASS)
    assert insights(client) == []
    rules = {r["id"]: r for r in client.get("/api/v1/insight-rules").json["rules"]}
    # 6 on TLS versions, 3 on transport security, 3 on TLS-RPT, 3 on domains and users
    assert len(rules) == 15
    assert rules["inbound-partner-tls10"]["enabled"] is False
    assert rules["inbound-partner-tls10"]["min_percent"] == 12.0
    assert rules["forced-tls-violation"]["min_messages"] == 1


@pytest.mark.parametrize("body", [{"min_percent": 101}, {"min_messages": 0}, {"colour": 1},
                                  {"min_messages": 2.5}, {"enabled": "maybe"}])  # fmt: skip
def test_bad_rule_settings_are_422(client, body):
    assert client.put("/api/v1/insight-rules/inbound-partner-tls10", json=body).status_code == 422


def test_unknown_rule_and_insight_are_404(client):
    assert client.put("/api/v1/insight-rules/nope", json={"enabled": False}).status_code == 404
    assert client.get("/api/v1/insights/nope").status_code == 404


def test_rule_settings_need_admin(app, make_key):
    key = make_key("default", "read")
    response = app.test_client().put("/api/v1/insight-rules/inbound-partner-tls10",
                                     json={"enabled": False},
                                     headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert response.status_code == 403


def test_demo_data_raises_the_partner_tls10_insight(client, clock, run_worker):
    post_batches(client, list(demo_traces(clock.now)))
    run_worker()
    found = {(i["rule"], i["connector"]["name"]) for i in insights(client)}
    assert ("inbound-partner-tls10", "Contoso Partner") in found
    assert ("inbound-onpremises-tls11", "HQ Exchange") not in found  # 3 % is under 5 %


def test_resolved_insights_are_forgotten_after_the_retention_period(
    client, clock, run_worker, loop, settings
):
    post_batches(client, mail(clock, "Old", 100, 20))
    run_worker()
    [old] = insights(client)
    clock.advance(days=8)
    loop.run(A_PASS)
    assert [i["id"] for i in insights(client, "resolved")] == [old["id"]]
    clock.advance(days=settings.retention_days - 1)
    post_batches(client, mail(clock, "New", 100, 20))
    run_worker()  # an evaluation one day short of the period: still kept
    assert [i["id"] for i in insights(client, "resolved")] == [old["id"]]
    clock.advance(days=1, seconds=1)
    loop.run(A_PASS)
    assert insights(client, "resolved") == []
    assert client.get(f"/api/v1/insights/{old['id']}").status_code == 404
    assert [i["connector"]["name"] for i in insights(client)] == ["New"]
