"""SMTP AUTH clients: a Postfix log of SASL submissions at known TLS versions, through the
parser, the API and the worker's own loop, gives the report and the TLS 1.0 insight exactly;
MAILFLOW_AUTH_USER_MODE keeps, hashes or drops the names before anything is stored."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from service.config import Settings
from service.core.auth_users import hashed_user
from service.ingest.exim import EximParser
from service.ingest.postfix import PostfixParser
from service.ingest.syslog import TimestampParser
from service.store import keys
from tests.ingest.support import feed_all
from tests.worker_loop import LoopDriver

# (user, client IP, TLS as Postfix logs it, canonical version, submissions)
SUBMITTERS = [
    ("scanner@example.com", "192.0.2.10", "TLSv1", "TLS1.0", 7),
    ("printer@example.com", "192.0.2.11", "TLSv1", "TLS1.0", 2),
    ("legacy-app", "192.0.2.12", "TLSv1.1", "TLS1.1", 3),
    ("alice@example.com", "192.0.2.13", "TLSv1.2", "TLS1.2", 5),
    ("bob@example.org", "192.0.2.14", "TLSv1.3", "TLS1.3", 4),
    ("alice@example.com", "198.51.100.9", "TLSv1.3", "TLS1.3", 1),
]


def postfix_log(clock) -> tuple[list[str], Counter]:
    """A Postfix submission log (one smtpd session per message) and its truth."""
    stamp = (clock.now - timedelta(hours=1)).strftime("%b %e %H:%M:%S")
    lines, truth, number = [], Counter(), 0
    for user, ip, logged, version, count in SUBMITTERS:
        for _ in range(count):
            number += 1
            qid, pid = f"A{number:05d}B", 1000 + number
            smtpd = f"{stamp} mail postfix/submission/smtpd[{pid}]"
            lines += [
                f"{smtpd}: connect from client{number}.example.net[{ip}]\n",
                f"{smtpd}: Anonymous TLS connection established from client{number}.example.net"
                f"[{ip}]: {logged} with cipher ECDHE-RSA-AES256-SHA (256/256 bits)\n",
                f"{smtpd}: {qid}: client=client{number}.example.net[{ip}], sasl_method=PLAIN, "
                f"sasl_username={user}\n",
                f"{stamp} mail postfix/cleanup[99]: {qid}: message-id=<{number}@example.com>\n",
                f"{stamp} mail postfix/qmgr[98]: {qid}: from=<sender@example.com>, size=900, "
                "nrcpt=1 (queue active)\n",
                f"{stamp} mail postfix/smtp[97]: {qid}: to=<x@dest.example>, relay=mx.dest."
                "example[203.0.113.5]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)\n",
                f"{stamp} mail postfix/qmgr[98]: {qid}: removed\n",
                f"{smtpd}: disconnect from client{number}.example.net[{ip}]\n",
            ]  # fmt: skip
            truth[(user, version)] += 1
    return lines, truth


def _rows(client) -> dict[str, dict]:
    response = client.get("/api/v1/auth-clients?days=1&limit=1000")
    assert response.status_code == 200, response.json
    return {row["sender_address"]: row for row in response.json["rows"]}


def test_postfix_sasl_submissions_give_the_report_and_the_tls10_insight(
    client, clock, redis_client, settings
):
    lines, truth = postfix_log(clock)
    traces = feed_all(PostfixParser(TimestampParser(year=clock.now.year)), lines)
    submissions = [t for t in traces if "auth_user" in t]
    assert len(submissions) == sum(truth.values())  # one per message, the smtpd side only
    assert client.post("/api/v1/traces", json=traces).status_code == 202
    # The worker's own loop folds, refreshes and evaluates, on the injected clock.
    LoopDriver(redis_client, settings, clock).run(timedelta(seconds=5))

    rows = _rows(client)
    users = {user for user, _ in truth}
    assert set(rows) == users
    for user in users:
        row = rows[user]
        assert row["direction"] == "inbound"
        assert row["messages"] == sum(n for (u, _), n in truth.items() if u == user)
        for version in ("TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3"):
            assert row["tls"][version]["messages"] == truth[(user, version)], (user, version)
        assert round(sum(s["percent"] for s in row["tls"].values()), 1) == 100.0
    assert set(rows["alice@example.com"]["client_ips"]) == {"198.51.100.9", "192.0.2.13"}
    assert rows["alice@example.com"]["domain"] == "example.com"
    assert rows["legacy-app"]["domain"] is None

    insights = client.get("/api/v1/insights?limit=1000").json["items"]
    named = {i["subject"]["name"] for i in insights if i["rule"] == "auth-client-legacy-tls"}
    legacy = {user for (user, version) in truth if version in ("TLS1.0", "TLS1.1")}
    assert named == legacy == {"scanner@example.com", "printer@example.com", "legacy-app"}
    scanner = next(i for i in insights if i["subject"]["name"] == "scanner@example.com")
    assert scanner["connector"] is None and scanner["subject"]["kind"] == "auth_user"
    assert scanner["measured"] == {"messages": 7, "matching_messages": 7, "percent": 100.0}


def test_exim_authenticated_arrivals_carry_the_user():
    line = ("2026-11-27 10:00:00 1abcDE-000001-AB <= sender@example.com H=(laptop) "
            "[192.0.2.20]:51234 P=esmtpsa X=TLS1.0:ECDHE-RSA-AES256-SHA:256 CV=no "
            "A=dovecot_plain:carol@example.com S=1234 id=x@example.com T=\"hi\"\n")  # fmt: skip
    (trace,) = [t for t in feed_all(EximParser(), [line]) if t["direction"] == "inbound"]
    assert trace["auth_user"] == "carol@example.com"
    assert trace["tls_version"] == "TLS1.0"


@pytest.mark.parametrize("mode", ["hash", "drop"])
def test_auth_user_mode_applies_before_anything_is_stored(
    mode, redis_client, redis_server, clock, make_key, closing, run_worker
):
    from service.app import create_app

    app = closing(create_app({"redis_url": redis_server.url, "CLOCK": clock,
                              "auth_user_mode": mode, "secret_key": "s3cret"}))  # fmt: skip
    http = app.test_client()
    headers = {"Authorization": f"Bearer {make_key('default')}"}
    trace = {"id": "a1", "timestamp": clock.now.isoformat(), "direction": "inbound",
             "tls_version": "TLS1.0", "auth_user": "scanner@example.com"}  # fmt: skip
    assert http.post("/api/v1/traces", json=[trace], headers=headers).status_code == 202
    stored = b"".join(v for entry in redis_client.xrange(keys.stream("default"))
                      for v in entry[1].values())  # fmt: skip
    assert b"scanner" not in stored  # neither in the stream ...
    run_worker(auth_user_mode=mode)
    for key in redis_client.scan_iter(match="mf:{default}:*"):
        if redis_client.type(key) == b"hash":
            dumped = b"".join(k + v for k, v in redis_client.hgetall(key).items())
            assert b"scanner" not in dumped, key  # ... nor in any counter or view
    rows = http.get("/api/v1/auth-clients?days=1", headers=headers).json["rows"]
    if mode == "drop":
        assert rows == []
    else:
        pseudonym = hashed_user("scanner@example.com", b"s3cret")
        assert pseudonym.startswith("h:") and pseudonym.endswith("@example.com")
        assert [(r["sender_address"], r["domain"], r["messages"]) for r in rows] == [
            (pseudonym, "example.com", 1)]  # fmt: skip
    assert Settings(auth_user_mode=mode).auth_user_mode == mode


def test_dashboard_pages_show_the_api_rows_and_export_its_csv(
    app, client, clock, make_key, run_worker
):
    from tests.html_cells import Page, number, sign_in

    lines, truth = postfix_log(clock)
    traces = feed_all(PostfixParser(TimestampParser(year=clock.now.year)), lines)
    assert client.post("/api/v1/traces", json=traces).status_code == 202
    run_worker()
    browser = sign_in(app, make_key("default", "read"))

    answer = browser.get("/auth-clients?days=1&sort=-TLS1.0")
    assert answer.status_code == 200, answer.data[:300]
    page = Page(answer.get_data(as_text=True))
    api = client.get("/api/v1/auth-clients?days=1&sort=-TLS1.0").json["rows"]
    assert page.texts("td", "name") == [row["sender_address"] for row in api]
    assert [number(t) for t in page.texts("td", "messages")] == [row["messages"] for row in api]
    assert page.texts("td", "name")[:2] == ["printer@example.com", "scanner@example.com"]
    titles = page.texts("h3", "insight-title")
    assert len(titles) == 3  # the three users on TLS 1.0/1.1

    domains = browser.get("/domains?days=1")
    assert domains.status_code == 200
    exported = browser.get("/auth-clients/export?days=1")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    assert exported.get_data(as_text=True).splitlines()[0].startswith("Direction,Sender address")
    assert sum(truth.values()) == sum(row["messages"] for row in api)
