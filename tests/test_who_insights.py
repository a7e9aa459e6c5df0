"""Insights about remote domains: thresholds, settings, and the feed, through the worker's loop."""

from __future__ import annotations

import itertools
from datetime import timedelta

from tests.worker_loop import LoopDriver

_ids = itertools.count()


def mail(clock, domain: str, total: int, matching: int, version: str | None) -> list[dict]:
    return [
        {"id": f"d{next(_ids)}", "timestamp": clock.now.isoformat(), "direction": "outbound",
         "recipient_domain": domain, "tls_version": version if n < matching else "TLS1.2"}
        for n in range(total)
    ]  # fmt: skip


def subjects(client, rule: str) -> set[str]:
    items = client.get("/api/v1/insights?limit=1000").json["items"]
    return {i["subject"]["name"] for i in items if i["rule"] == rule}


def test_domain_rules_fire_at_their_thresholds_and_follow_settings(
    client, clock, redis_client, settings
):
    traces = (mail(clock, "plain.example", 200, 20, None)  # 10 % without TLS, 200 messages
              + mail(clock, "small.example", 99, 99, None)  # all plaintext, under 100 messages
              + mail(clock, "almost.example", 200, 19, None)  # 9.5 %
              + mail(clock, "old.example", 200, 12, "TLS1.1")  # 6 % TLS 1.1, 12 messages
              + mail(clock, "fine.example", 300, 12, "TLS1.0"))  # 4 %  # fmt: skip
    for at in range(0, len(traces), 500):
        assert client.post("/api/v1/traces", json=traces[at : at + 500]).status_code == 202
    loop = LoopDriver(redis_client, settings, clock)
    loop.run(timedelta(seconds=5))
    assert subjects(client, "domain-unencrypted") == {"plain.example"}
    assert subjects(client, "domain-legacy-tls") == {"old.example"}
    [insight] = [i for i in client.get("/api/v1/insights").json["items"]
                 if i["rule"] == "domain-legacy-tls"]  # fmt: skip
    assert insight["subject"] == {"kind": "domain", "name": "old.example"}
    assert insight["links"] == {"domains_report": "/api/v1/domains/outbound/old.example?days=7"}
    assert client.get(insight["links"]["domains_report"]).status_code == 200

    response = client.put("/api/v1/insight-rules/domain-unencrypted", json={"min_messages": 99})
    assert response.status_code == 200
    loop.run(timedelta(seconds=5))
    assert subjects(client, "domain-unencrypted") == {"plain.example", "small.example"}

    client.put("/api/v1/insight-rules/domain-legacy-tls", json={"enabled": False})
    loop.run(timedelta(seconds=5))
    assert subjects(client, "domain-legacy-tls") == set()
    resolved = client.get("/api/v1/insights?state=resolved").json["items"]
    assert [i["subject"]["name"] for i in resolved] == ["old.example"]


def test_a_domain_insight_follows_new_mail_at_once(client, clock, redis_client, settings):
    loop = LoopDriver(redis_client, settings, clock)
    assert (
        client.post("/api/v1/traces", json=mail(clock, "fine.example", 50, 0, None)).status_code
        == 202
    )
    loop.run(timedelta(seconds=5))
    assert subjects(client, "domain-legacy-tls") == set()
    # New mail: the next refresh evaluates it, not the views of the version before.
    assert (
        client.post("/api/v1/traces", json=mail(clock, "old.example", 20, 20, "TLS1.0")).status_code
        == 202
    )
    loop.run(timedelta(seconds=5))
    assert subjects(client, "domain-legacy-tls") == {"old.example"}
