"""The Transit security report's mail to domains that did not offer TLS: per recipient domain,
the outbound messages delivered without TLS (from the per-domain counters, its `(other
domains)` and `(unknown)` rows included, so the section adds up to the snapshot's outbound
no-TLS count) and, apart, the blocked messages whose error says TLS was not offered."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from tests.helpers import post_batches

API = "/api/v1/mailflow/transit-security"
NOT_OFFERED = "TLS is required, but was not offered by host mx.{}"


def _delivered(name, when, domain, version, direction="outbound"):
    trace = {"id": name, "timestamp": when.isoformat(), "direction": direction,
             "tls_version": version}  # fmt: skip
    if domain is not None:
        trace["recipient_domain" if direction == "outbound" else "sender_domain"] = domain
    return trace


def _blocked(name, when, domain, reason):
    return {"id": name, "timestamp": when.isoformat(), "direction": "outbound",
            "tls_version": None, "outcome": "blocked", "blocked_reason": reason,
            "recipient_domain": domain, "tls_policy": "encrypt"}  # fmt: skip


def _traffic(now):
    """Outbound mail over three days: plaintext to some domains, TLS to others, some without a
    domain; inbound plaintext (not in the outbound section); blocked mail, not offered or
    not. Returns the traces, the plaintext truth per recipient domain, and the blocked one."""
    plan = [  # (domain, TLS version, messages, days back)
        ("plain.example", None, 7, 0), ("plain.example", None, 5, 2),
        ("plain.example", "TLS1.3", 4, 1), ("mixed.example", None, 3, 1),
        ("mixed.example", "TLS1.2", 9, 0), ("secure.example", "TLS1.3", 12, 0),
        ("late.example", None, 2, 2), (None, None, 4, 1), (None, "TLS1.2", 3, 0),
    ]  # fmt: skip
    traces, plaintext = [], Counter()
    for domain, version, count, back in plan:
        for i in range(count):
            traces.append(_delivered(f"o-{domain}-{version}-{back}-{i}", now - timedelta(days=back),
                                     domain, version))  # fmt: skip
            if version is None:
                plaintext[domain] += 1
    traces += [_delivered(f"in-{i}", now, "sender.example", None, "inbound") for i in range(6)]
    refused = Counter({"plain.example": 2, "nostarttls.example": 3})
    for domain, count in refused.items():
        traces += [_blocked(f"b-{domain}-{i}", now, domain, NOT_OFFERED.format(domain))
                   for i in range(count)]  # fmt: skip
    traces.append(_blocked("b-dane", now, "plain.example", "Server certificate not verified"))
    return traces, plaintext, refused


def _columns(section):
    return {r["recipient_domain"]: (r["delivered_without_tls"], r["blocked_not_offered"])
            for r in section["no_tls_offered"]}  # fmt: skip


def test_per_domain_plaintext_counts_blocked_column_and_the_snapshots_total(
    client, clock, run_worker
):
    traces, plaintext, refused = _traffic(clock.now)
    # One name per day and direction: two days have two plaintext domains, so one of them
    # goes to (other domains) whichever the worker sees first.
    post_batches(client, traces)
    run_worker(domain_limit=1)
    body = client.get(API + "?days=7").json
    assert body["no_tls_offered_coverage"] == {
        "start": (clock.now - timedelta(days=6)).date().isoformat(),
        "end": clock.now.date().isoformat(), "days": 7, "complete": True,
        "domain_retention_days": 30,
    }  # fmt: skip
    section = body["directions"]["outbound"]
    got = _columns(section)
    # The blocked column is what the section had before: not-offered errors only.
    assert {d: b for d, (_, b) in got.items() if b} == refused
    # Every plaintext message is in a row: its domain's, or (other domains) when that day's
    # limit was reached before it; mail without a domain in the row of domain null.
    other = got.get("(other domains)", (0, 0))[0]
    assert other > 0  # not vacuous: the limit folded some domain's plaintext mail
    for domain, messages in plaintext.items():
        counted = got.get(domain, (0, 0))[0]
        assert counted == messages or (domain is not None and counted < messages), domain
    assert got[None][0] == plaintext[None] == 4
    folded = sum(plaintext.values()) - sum(got[d][0] for d in plaintext if d in got)
    assert other == folded
    total = sum(r["delivered_without_tls"] for r in section["no_tls_offered"])
    snapshot = client.get("/api/v1/mailflow/snapshot?days=7").json["directions"]["outbound"]
    assert total == snapshot["tls"]["none"]["messages"] == sum(plaintext.values()) == 21
    assert total == sum(day["classes"]["none"]["messages"] for day in section["sent"])
    kinds = {r["recipient_domain"]: r["row"] for r in section["no_tls_offered"]}
    assert kinds["(other domains)"] == "other" and kinds[None] == "unknown"
    # Most plaintext first; domains with TLS only, and inbound mail, are not listed.
    delivered = [r["delivered_without_tls"] for r in section["no_tls_offered"]]
    assert delivered == sorted(delivered, reverse=True)
    assert "secure.example" not in got and "sender.example" not in got
    inbound = body["directions"]["inbound"]["no_tls_offered"]
    assert inbound == []  # inbound mail is counted by sender domain: not this section's


def test_exact_per_domain_counts_under_the_limit(client, clock, run_worker):
    traces, plaintext, refused = _traffic(clock.now)
    post_batches(client, traces)
    run_worker()
    got = _columns(client.get(API + "?direction=outbound").json["directions"]["outbound"])
    assert got == {
        "plain.example": (12, 2), "mixed.example": (3, 0), "late.example": (2, 0),
        None: (4, 0), "nostarttls.example": (0, 3),
    }  # fmt: skip
    assert {d: n for d, (n, _) in got.items() if n} == plaintext


def test_a_new_plaintext_message_changes_the_cached_report(client, clock, run_worker):
    traces, _, _ = _traffic(clock.now)
    post_batches(client, traces)
    run_worker()
    first = client.get(API)
    assert _columns(first.json["directions"]["outbound"])["mixed.example"] == (3, 0)
    again = client.get(API, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304  # cached: nothing changed
    again.close()
    post_batches(client, [_delivered("new", clock.now, "mixed.example", None)])
    run_worker()
    second = client.get(API, headers={"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200 and second.headers["ETag"] != first.headers["ETag"]
    assert _columns(second.json["directions"]["outbound"])["mixed.example"] == (4, 0)


def test_a_window_longer_than_the_domain_retention_says_so(client, clock, run_worker):
    now = clock.now
    post_batches(client, [_delivered("recent", now - timedelta(days=3), "a.example", None),
                          _delivered("old", now - timedelta(days=45), "a.example", None),
                          _blocked("b-old", now - timedelta(days=45), "a.example",
                                   NOT_OFFERED.format("a.example"))])  # fmt: skip
    run_worker()
    body = client.get(API + "?days=60&direction=outbound").json
    assert body["no_tls_offered_coverage"] == {
        "start": (now - timedelta(days=29)).date().isoformat(), "end": now.date().isoformat(),
        "days": 30, "complete": False, "domain_retention_days": 30,
    }  # fmt: skip
    # Delivered mail over the 30 days kept, blocked mail over the whole window.
    assert _columns(body["directions"]["outbound"]) == {"a.example": (1, 1)}
    # A window wholly before the retention: no day covered, the blocked mail still listed.
    day = (now - timedelta(days=45)).date().isoformat()
    old = client.get(API + f"?start={day}&end={day}&direction=outbound").json
    assert old["no_tls_offered_coverage"] == {
        "start": None, "end": None, "days": 0, "complete": False, "domain_retention_days": 30,
    }  # fmt: skip
    assert _columns(old["directions"]["outbound"]) == {"a.example": (0, 1)}


def test_the_page_shows_the_coverage_note_only_when_the_window_is_longer(
    app, client, clock, run_worker, make_key
):
    from tests.html_cells import Page, number, sign_in

    post_batches(client, _traffic(clock.now)[0])
    run_worker()
    browser = sign_in(app, make_key("default", "read"))
    for query, noted in (("?days=7", False), ("?days=90", True)):
        answer = browser.get("/transit-security" + query)
        html = Page(answer.get_data(as_text=True))
        assert bool(html.texts("p", "coverage-note")) == noted, query
        api = client.get(API + query).json["directions"]["outbound"]["no_tls_offered"]
        cells = html.texts("td", "delivered-without-tls", within="no-tls-offered outbound")
        assert [number(t) for t in cells] == [r["delivered_without_tls"] for r in api]
