"""The transport security insights over simulated days, driven by the worker's own loop on the
injected clock: downgrade, mail without authentication, mail blocked for a TLS policy."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from tests.helpers import post_batches
from tests.worker_loop import LoopDriver

_ids = itertools.count()
# Long enough for the loop to fold new traces and evaluate once their refresh is due
# (MAILFLOW_REFRESH_SECONDS, 2 s), or to evaluate on a new day.
A_PASS = timedelta(seconds=5)


@pytest.fixture
def loop(redis_client, settings, clock) -> LoopDriver:
    return LoopDriver(redis_client, settings, clock)


def mail(when, connector, count, direction="outbound", ctype="partner", **security):
    return [{"id": f"s{next(_ids)}", "timestamp": when.isoformat(), "direction": direction,
             "connector": connector, "connector_type": ctype, "tls_version": "TLS1.3",
             **security} for _ in range(count)]  # fmt: skip


VERIFIED = {"tls_auth": "verified", "tls_policy": "dane"}


def active(client, rule=None):
    items = client.get("/api/v1/insights", query_string={"limit": 1000}).json["items"]
    return [i for i in items if rule is None or i["rule"] == rule]


def test_downgrade_opens_on_encrypted_only_mail_and_resolves_when_verified_returns(
    client, clock, loop
):
    # 14 days before yesterday: 70 messages, all verified under DANE.
    for back in range(2, 16):
        post_batches(client, mail(clock.now - timedelta(days=back), "Bank", 5, **VERIFIED))
    loop.run(A_PASS)
    assert active(client, "connector-tls-downgrade") == []
    # Today the same connector delivers encrypted only: the peer was not verified.
    post_batches(client, mail(clock.now, "Bank", 3, tls_auth="untrusted", tls_policy="dane"))
    post_batches(client, mail(clock.now, "Bank", 2, **VERIFIED))
    loop.run(A_PASS)
    [insight] = active(client, "connector-tls-downgrade")
    assert insight["severity"] == "high"
    assert insight["connector"] == {"name": "Bank", "type": "partner"}
    assert insight["measured"] == {"messages": 70, "matching_messages": 70, "percent": 100.0,
                                   "recent_messages": 5, "recent_unauthenticated": 3,
                                   "recent_downgraded": 0}  # fmt: skip
    assert insight["threshold"] == {"min_percent": 95.0, "min_messages": 50}
    # Verified mail returns; yesterday's encrypted-only mail keeps it open one more day.
    clock.advance(days=1)
    post_batches(client, mail(clock.now, "Bank", 5, **VERIFIED))
    loop.run(A_PASS)
    assert [i["id"] for i in active(client, "connector-tls-downgrade")] == [insight["id"]]
    clock.advance(days=1)
    post_batches(client, mail(clock.now, "Bank", 5, **VERIFIED))
    loop.run(A_PASS)
    assert active(client, "connector-tls-downgrade") == []
    resolved = client.get("/api/v1/insights?state=resolved").json["items"]
    assert [i["id"] for i in resolved] == [insight["id"]]


def test_a_logged_downgrade_or_plaintext_opens_it_too(client, clock, loop):
    for back in range(2, 16):
        post_batches(client, mail(clock.now - timedelta(days=back), "HQ", 4, direction="inbound",
                                  ctype="onpremises", tls_auth="verified"))  # fmt: skip
    post_batches(client, mail(clock.now, "HQ", 1, direction="inbound", ctype="onpremises",
                              tls_auth="verified", tls_downgraded=True))  # fmt: skip
    loop.run(A_PASS)
    [insight] = active(client, "connector-tls-downgrade")
    assert insight["measured"]["recent_downgraded"] == 1
    assert insight["measured"]["recent_unauthenticated"] == 0


@pytest.mark.parametrize(("baseline", "verified", "fires"), [
    (50, 48, True),  # 96 % of 50
    (50, 47, False),  # 94 %
    (49, 49, False),  # too few messages
])  # fmt: skip
def test_downgrade_threshold_edges(client, clock, loop, baseline, verified, fires):
    when = clock.now - timedelta(days=3)
    post_batches(client, mail(when, "P", verified, **VERIFIED))
    post_batches(client, mail(when, "P", baseline - verified))
    post_batches(client, mail(clock.now, "P", 1, tls_version=None))
    loop.run(A_PASS)
    assert bool(active(client, "connector-tls-downgrade")) is fires


def test_unauthenticated_rule_is_off_until_enabled(client, clock, loop):
    post_batches(client, mail(clock.now, "Partner A", 100, tls_auth="trusted"))
    loop.run(A_PASS)
    assert active(client, "connector-unauthenticated") == []
    response = client.put("/api/v1/insight-rules/connector-unauthenticated",
                          json={"enabled": True})  # fmt: skip
    assert response.status_code == 200
    loop.run(A_PASS)
    [insight] = active(client, "connector-unauthenticated")
    assert insight["measured"]["matching_messages"] == 100


def test_blocked_for_a_tls_policy_since_yesterday(client, clock, loop):
    blocked = {"tls_version": None, "outcome": "blocked", "tls_policy": "dane",
               "blocked_reason": "TLSA lookup error", "recipient_domain": "example.net"}  # fmt: skip
    post_batches(client, mail(clock.now, "Partner A", 2, **blocked))
    post_batches(client, mail(clock.now, "Partner A", 8, **VERIFIED))
    post_batches(client, [{**m, "connector": None, "connector_type": None}
                          for m in mail(clock.now, None, 1, **blocked)])  # fmt: skip
    loop.run(A_PASS)
    found = {i["connector"]["name"]: i for i in active(client, "connector-tls-blocked")}
    assert set(found) == {"Partner A", "-"}  # "-": the internet, without a connector
    assert found["Partner A"]["measured"] == {"messages": 10, "matching_messages": 2,
                                              "percent": 20.0}  # fmt: skip
    clock.advance(days=1)
    loop.run(A_PASS)
    assert len(active(client, "connector-tls-blocked")) == 2  # yesterday still counts
    clock.advance(days=1)
    loop.run(A_PASS)
    assert active(client, "connector-tls-blocked") == []
