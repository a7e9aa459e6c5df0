"""A policy domain's TLS reports beside our own logs: GET /api/v1/tls-reports/{domain} has
``our_logs`` (the tenant's inbound mail per day, the domain's blocked inbound mail), and the
dashboard's domain page shows the same numbers side by side with what senders reported, and
offers the reports as received to the session's tenant only."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta

import pytest

from tests.helpers import post_batches
from tests.html_cells import Page, number, percent, sign_in
from tests.tlsrpt_reports import report_on

STARTTLS_REFUSED = "530 5.7.0 Must issue a STARTTLS command first"


def _post_report(client, document) -> dict:
    answer = client.post("/api/v1/tlsrpt", data=json.dumps(document),
                         headers={"Content-Type": "application/tlsrpt+json"})  # fmt: skip
    assert answer.status_code == 202, answer.json
    return answer.json


def _trace(n: int, when, direction: str, version: str | None, **more) -> dict:
    return {"id": f"o{n}", "timestamp": when.isoformat(), "direction": direction,
            "tls_version": version, **more}  # fmt: skip


@pytest.fixture
def both_sides(client, clock, run_worker):
    """Yesterday: senders report 90 + 10 sessions to a.example; our logs have 3 TLS 1.3, 1 TLS
    1.2 and 1 plaintext inbound messages, 2 inbound messages to a.example blocked, and mail
    that must not count (outbound, blocked to another domain, blocked outbound). Today: one
    inbound TLS 1.2 message and no report."""
    yesterday = (clock.now - timedelta(days=1)).replace(hour=12, minute=0, second=0)
    today = clock.now - timedelta(minutes=5)
    counted = _post_report(client, report_on(yesterday, "r1", ok=90, failed=10))
    blocked = {"outcome": "blocked", "blocked_reason": STARTTLS_REFUSED}
    traces = [
        *(_trace(i, yesterday, "inbound", "TLS1.3") for i in range(3)),
        _trace(3, yesterday, "inbound", "TLS1.2"),
        _trace(4, yesterday, "inbound", None),
        _trace(5, yesterday, "outbound", "TLS1.2"),
        _trace(6, yesterday, "inbound", None, recipient_domain="a.example", **blocked),
        _trace(7, yesterday, "inbound", None, recipient_domain="A.Example", **blocked),
        _trace(8, yesterday, "inbound", None, recipient_domain="b.example", **blocked),
        _trace(9, yesterday, "outbound", None, recipient_domain="a.example", **blocked),
        _trace(10, today, "inbound", "TLS1.2"),
    ]
    assert post_batches(client, traces)["accepted"] == len(traces)
    run_worker()
    return {"yesterday": yesterday.date().isoformat(), "today": today.date().isoformat(),
            "report": counted["id"]}  # fmt: skip


def test_our_logs_are_the_tenants_inbound_mail_and_the_domains_blocked_mail(
    client, both_sides
) -> None:
    detail = client.get("/api/v1/tls-reports/a.example?days=2").json
    ours = detail["our_logs"]
    assert ours["scope"] == "tenant-inbound"
    assert ours["messages"] == 6 and ours["encrypted_messages"] == 5
    assert {v: s["messages"] for v, s in ours["tls"].items() if s["messages"]} == {
        "TLS1.3": 3, "TLS1.2": 2, "none": 1,
    }  # fmt: skip
    assert (ours["tls"]["TLS1.3"]["percent"], ours["tls"]["TLS1.2"]["percent"],
            ours["tls"]["none"]["percent"]) == (50.0, 33.3, 16.7)  # fmt: skip
    assert ours["blocked_messages"] == 2
    by_day = {d["date"]: d for d in ours["days"]}
    assert [d["date"] for d in ours["days"]] == [d["date"] for d in detail["days"]]
    yesterday, today = by_day[both_sides["yesterday"]], by_day[both_sides["today"]]
    assert (yesterday["messages"], yesterday["blocked_messages"]) == (5, 2)
    assert (yesterday["tls"]["TLS1.3"]["percent"], yesterday["tls"]["TLS1.2"]["percent"],
            yesterday["tls"]["none"]["percent"]) == (60.0, 20.0, 20.0)  # fmt: skip
    assert (today["messages"], today["blocked_messages"]) == (1, 0)
    assert today["tls"]["TLS1.2"] == {"messages": 1, "percent": 100.0}
    # the same numbers as the inbound side of the TLS flyout, day by day
    flyout = client.get("/api/v1/mailflow/tls?days=2&direction=inbound").json
    assert [{k: d[k] for k in ("date", "messages", "tls", "security")} for d in ours["days"]] == [
        {"date": d["date"], **d["directions"]["inbound"]} for d in flyout["series"]
    ]
    # another policy domain gets the same tenant-wide messages and its own blocked mail (none)
    other = client.get("/api/v1/tls-reports/c.example?days=2").json["our_logs"]
    assert other["messages"] == 6 and other["blocked_messages"] == 0


def test_a_window_without_our_mail_has_zeros(client, clock, both_sides) -> None:
    start = (clock.now - timedelta(days=5)).date().isoformat()
    ours = client.get(f"/api/v1/tls-reports/a.example?start={start}&end={start}").json["our_logs"]
    assert (ours["messages"], ours["blocked_messages"]) == (0, 0)
    assert [d["messages"] for d in ours["days"]] == [0]
    assert sum(s["percent"] for s in ours["tls"].values()) == 0.0


def _page(browser, path: str) -> Page:
    answer = browser.get(path)
    assert answer.status_code == 200, (path, answer.status_code, answer.data[:300])
    return Page(answer.get_data(as_text=True))


def test_the_domain_page_shows_both_sides_with_the_apis_numbers(
    app, client, make_key, both_sides
) -> None:
    detail = client.get("/api/v1/tls-reports/a.example?days=7").json
    html = _page(sign_in(app, make_key("default", "read")), "/tls-reports/a.example?days=7")
    within = "side-by-side-days"
    assert html.texts("th", "date", within=within) == [d["date"] for d in detail["days"]]
    assert [number(t) for t in html.texts("td", "successful", within=within)] == [
        d["successful_sessions"] for d in detail["days"]
    ]
    assert [number(t) for t in html.texts("td", "failed", within=within)] == [
        d["failed_sessions"] for d in detail["days"]
    ]
    assert [percent(t) for t in html.texts("td", "success-percent", within=within)] == [
        d["success_percent"] for d in detail["days"]
    ]
    ours = detail["our_logs"]["days"]
    assert [number(t) for t in html.texts("td", "our-messages", within=within)] == [
        d["messages"] for d in ours
    ]
    for version, css in (("TLS1.3", "our-tls13"), ("TLS1.2", "our-tls12"), ("none", "our-none")):
        cells = html.texts("td", css, within=within)
        assert [
            (number(c.split(" (")[0]), percent(c.split(" (")[1].rstrip(")"))) for c in cells
        ] == [(d["tls"][version]["messages"], d["tls"][version]["percent"]) for d in ours], version
    assert [percent(t) for t in html.texts("td", "our-authenticated-percent", within=within)] == [
        d["security"]["authenticated_percent"] for d in ours
    ]
    assert [number(t) for t in html.texts("td", "our-blocked", within=within)] == [
        d["blocked_messages"] for d in ours
    ]
    assert sum(number(t) for t in html.texts("td", "our-blocked", within=within)) == 2
    assert html.texts("p", "our-logs-empty") == []
    assert (
        html.texts("p", "our-logs-scope")
        and "every inbound message" in html.texts("p", "our-logs-scope")[0]
    )


def test_the_domain_page_says_when_our_logs_have_nothing(app, client, clock, make_key) -> None:
    _post_report(client, report_on(clock.now - timedelta(days=1), "r1", ok=5, failed=0))
    html = _page(sign_in(app, make_key("default", "read")), "/tls-reports/a.example?days=7")
    [empty] = html.texts("p", "our-logs-empty")
    assert "no inbound mail" in empty
    assert [number(t) for t in html.texts("td", "our-messages")] == [0] * 7
    assert sum(number(t) for t in html.texts("td", "successful", within="side-by-side-days")) == 5


def test_the_page_offers_the_originals_to_its_own_tenant_only(
    app, client, make_key, both_sides
) -> None:
    mine = sign_in(app, make_key("default", "read"))
    html = _page(mine, "/tls-reports/a.example?days=7")
    [link] = html.elements("a", "download")
    assert link["href"] == "/tls-reports/originals/" + both_sides["report"]
    answer = mine.get(link["href"])
    assert answer.status_code == 200 and answer.mimetype == "application/tlsrpt+gzip"
    assert json.loads(gzip.decompress(answer.data))["report-id"] == "r1"
    assert answer.data == client.get(f"/api/v1/tls-reports/originals/{both_sides['report']}").data
    # a session of another tenant gets no such report, and no session gets the sign-in form
    theirs = sign_in(app, make_key("other", "read"))
    refused = theirs.get(link["href"])
    assert refused.status_code == 404
    assert refused.mimetype == "application/problem+json"
    assert _page(theirs, "/tls-reports/a.example?days=7").elements("a", "download") == []
    anonymous = app.test_client()
    anonymous.environ_base.pop("HTTP_AUTHORIZATION", None)
    gone = anonymous.get(link["href"])
    assert gone.status_code == 303 and gone.headers["Location"] == "/sign-in"
    assert mine.get("/tls-reports/originals/..%2Fetc").status_code == 404


def test_the_page_lists_the_newest_reports_and_says_how_many_there_are(
    app, client, clock, make_key
) -> None:
    from service.web.dashboard.tlsrpt_page import REPORTS_SHOWN

    for i in range(REPORTS_SHOWN + 1):
        day = clock.now - timedelta(days=2 if i == 0 else 1)
        _post_report(client, report_on(day, f"r{i:03d}", ok=1, failed=0))
    html = _page(sign_in(app, make_key("default", "read")), "/tls-reports/a.example?days=7")
    shown = html.texts("td", "report-id", within="originals")
    assert len(shown) == REPORTS_SHOWN and "r000" not in shown  # the oldest is left off
    assert [number(t) for t in html.texts("span", "reports-total")] == [REPORTS_SHOWN + 1]
    assert len(client.get("/api/v1/tls-reports/a.example?days=7").json["reports"]) == (
        REPORTS_SHOWN + 1
    )
