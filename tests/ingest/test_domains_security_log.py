"""A generated Postfix log whose every message has a known transport security class, through
the parser and the API: each remote domain's row of GET /api/v1/domains has exactly its
messages' classes, and `min_unauthenticated_percent` names exactly the unauthenticated ones."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

from service.ingest.postfix import PostfixParser
from service.ingest.syslog import TimestampParser

from . import transport_log
from .support import feed_all
from .test_transport_e2e import CLASSES, security_class


def test_postfix_log_classes_per_remote_domain(client, run_worker, clock):
    midnight = clock.now.replace(hour=0, minute=0, second=0, microsecond=0)
    clock.now = midnight + timedelta(hours=23, minutes=30)  # the day's log is past
    log = transport_log.generate(messages_per_class=2, start=midnight + timedelta(minutes=1))
    assert log.clock < clock.now
    traces = feed_all(PostfixParser(TimestampParser(year=clock.now.year)), log.lines)
    assert client.post("/api/v1/traces", json=traces).status_code == 202
    run_worker()

    expected: dict[tuple[str, str], Counter[str]] = {}
    for truth in log.truth:
        if truth.outcome == "blocked":  # not delivered: in no domain's row (docs/domains.md)
            continue
        domain = truth.recipient_domain
        if truth.direction == "inbound":  # the remote domain is the sender's: c<n>.example
            domain = re.sub(r"^in(\d+)\.ours\.example$", r"c\1.example", domain)
        expected.setdefault((truth.direction, domain), Counter())[security_class(truth.fields)] += 1
    assert set().union(*expected.values()) == set(CLASSES) - {"mta-sts"}  # Postfix logs no MTA-STS

    rows = client.get("/api/v1/domains?days=1&limit=1000").json["rows"]
    got = {(r["direction"], r["domain"]): {c: r["security"][c]["messages"] for c in CLASSES}
           for r in rows}  # fmt: skip
    assert got == {key: {c: counts[c] for c in CLASSES} for key, counts in expected.items()}

    unauthenticated = client.get(
        "/api/v1/domains?days=1&limit=1000&min_unauthenticated_percent=100"
    )
    assert sorted((r["direction"], r["domain"]) for r in unauthenticated.json["rows"]) == sorted(
        key for key, counts in expected.items() if counts["encrypted"] + counts["none"]
    )


def test_exim_log_classes_per_remote_domain(client, run_worker, clock):
    from service.ingest.exim import EximParser

    day = clock.now.date().isoformat()
    # (recipient domain, X= and CV= of the delivery line, its class)
    deliveries = [
        ("dane.example", "X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=dane", "dane"),
        ("dane.example", "X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=dane", "dane"),
        ("verified.example", "X=TLS1.2:ECDHE-RSA-AES256-GCM-SHA384:256 CV=yes", "authenticated"),
        ("verified.example", "X=TLS1.2:ECDHE-RSA-AES256-GCM-SHA384:256 CV=no", "encrypted"),
        ("opportunistic.example", "X=TLS1.2:ECDHE-RSA-AES256-GCM-SHA384:256", "encrypted"),
        ("plain.example", "", "none"),
    ]
    lines = [
        f"{day} 10:00:{n:02d} 1tA{n:03d}-000000000a{n}-000{n} => r@{domain} R=dnslookup "
        f'T=remote_smtp H=mx.{domain} [203.0.113.{n + 1}]:25 {tls} C="250 OK"\n'
        for n, (domain, tls, _) in enumerate(deliveries)
    ]
    traces = feed_all(EximParser(), lines)
    assert len(traces) == len(deliveries)
    assert client.post("/api/v1/traces", json=traces).status_code == 202
    run_worker()

    expected: dict[str, Counter[str]] = {}
    for domain, _, klass in deliveries:
        expected.setdefault(domain, Counter())[klass] += 1
    rows = client.get("/api/v1/domains?days=1").json["rows"]
    got = {r["domain"]: {c: r["security"][c]["messages"] for c in CLASSES} for r in rows}
    assert got == {domain: {c: counts[c] for c in CLASSES} for domain, counts in expected.items()}
    half = client.get("/api/v1/domains?days=1&min_unauthenticated_percent=50&sort=domain")
    assert [r["domain"] for r in half.json["rows"]] == ["opportunistic.example", "plain.example",
                                                        "verified.example"]  # fmt: skip
