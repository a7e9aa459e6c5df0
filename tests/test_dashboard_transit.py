"""The dashboard's Transit security page shows the API's report for the same window and
direction, with the transport security insights at its top, only to the session's tenant,
within the 150 kB budget at the bounds; the Webhooks link is in the nav of admin sessions only."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from service.web.dashboard.transit_page import ROWS_SHOWN
from tests.helpers import post_batches
from tests.html_cells import Page, number, percent, sign_in
from tests.security_traces import make_security_traces

CLASSES = ("dane", "mta-sts", "authenticated", "encrypted", "none")
API = "/api/v1/mailflow/transit-security"


def _page(browser, path: str) -> Page:
    answer = browser.get(path)
    assert answer.status_code == 200, (path, answer.status_code, answer.data[:300])
    return Page(answer.get_data(as_text=True))


@pytest.fixture
def secured(app, client, clock, run_worker, make_key):
    """Tenant ``default`` with mail of every class and blocked mail, folded; a read session."""
    traces, _, blocked = make_security_traces(600, clock.now, seed=7, days=10)
    post_batches(client, traces)
    run_worker()
    assert blocked
    return {"read": sign_in(app, make_key("default", "read")), "api": client}


@pytest.mark.parametrize("query", ["", "?days=30", "?direction=outbound", "?days=90"])
def test_the_page_shows_the_transit_security_endpoints_numbers(secured, query):
    api = secured["api"].get(API + query).json
    html = _page(secured["read"], "/transit-security" + query)
    assert html.body_class() == "page-transit-security"
    shown = {d for d in ("inbound", "outbound") if html.elements("section", d)}
    assert shown == set(api["directions"])
    for direction, section in api["directions"].items():
        sent = f"sent {direction}"
        assert html.texts("th", "date", within=sent) == [d["date"] for d in section["sent"]]
        assert [number(t) for t in html.texts("td", "messages", within=sent)] == [
            d["messages"] for d in section["sent"]
        ]
        for klass in CLASSES:
            cells = html.texts("td", f"sec-{klass}", within=sent)
            assert [number(t) for t in cells] == [
                d["classes"][klass]["messages"] for d in section["sent"]
            ], klass
        assert [percent(t) for t in html.texts("td", "authenticated-percent", within=sent)] == [
            d["authenticated_percent"] for d in section["sent"]
        ]
        blocked = f"blocked {direction}"
        assert section["blocked"], direction
        rows = list(zip(html.texts("th", "recipient-domain", within=blocked),
                        html.texts("td", "policy", within=blocked),
                        [number(t) for t in html.texts("td", "messages", within=blocked)],
                        [int(t) for t in html.texts("span", "errors-total", within=blocked)],
                        strict=True))  # fmt: skip
        assert rows == [(r["recipient_domain"], r["policy"] or "(not logged)", r["messages"],
                         r["errors_total"]) for r in section["blocked"]]  # fmt: skip
        errors = html.texts("q", "error-text", within=blocked)
        assert set(errors) <= {e for r in section["blocked"] for e in r["errors"]} and errors
        offered = f"no-tls-offered {direction}"
        assert section["no_tls_offered"], direction
        domains = html.texts("th", "recipient-domain", within=offered)
        refused = [number(t) for t in html.texts("td", "blocked-not-offered", within=offered)]
        assert list(zip(domains, refused, strict=True)) == [
            (r["recipient_domain"] or "(not logged)", r["blocked_not_offered"])
            for r in section["no_tls_offered"][:ROWS_SHOWN]
        ]  # fmt: skip
        delivered = [number(t) for t in html.texts("td", "delivered-without-tls", within=offered)]
        if direction == "outbound":  # the mail delivered without TLS, per recipient domain
            assert delivered == [r["delivered_without_tls"]
                                 for r in section["no_tls_offered"][:ROWS_SHOWN]]  # fmt: skip
            assert sum(delivered) > 0
        else:  # inbound mail is counted by sender domain: no such column
            assert delivered == []
        note = html.texts("p", "coverage-note", within=f"direction {direction}")
        complete = api["no_tls_offered_coverage"]["complete"]
        assert bool(note) == (direction == "outbound" and not complete), (query, note)
        total = number(html.texts("span", "messages", within=f"direction {direction}")[0])
        assert total == sum(d["messages"] for d in section["sent"]) > 0


def test_the_chart_has_a_title_a_description_and_a_labelled_legend(secured):
    html = _page(secured["read"], "/transit-security?direction=inbound")
    assert "Inbound messages per day by transport security class" in html.texts(
        "figcaption", "chart-title"
    )
    svg = re.search(r'<svg class="stacked".*?</svg>', html.html, re.S)
    assert svg is not None and "<title" in svg[0] and "<desc" in svg[0]
    for css in ("sec-dane", "sec-mta-sts", "sec-authenticated", "sec-encrypted", "sec-none"):
        assert f'<path class="{css}"' in svg[0], css
    legend = re.search(r'<ul class="chart-legend".*?</ul>', html.html, re.S)
    assert legend is not None
    for label in ("DANE", "MTA-STS", "Other verified", "Encrypted only", "No TLS"):
        assert label in legend[0]


def test_the_page_shows_the_active_transport_security_insights_only(
    app, client, clock, run_worker, make_key
):
    # A connector's blocked mail opens connector-tls-blocked; TLS 1.0 mail on a partner
    # connector opens a rule that is not about transport security.
    day = clock.now.replace(hour=10, minute=0, second=0, microsecond=0)
    blocked = [{"id": f"b{i}", "timestamp": day.isoformat(), "direction": "outbound",
                "connector": "Partner A", "connector_type": "partner", "tls_version": None,
                "outcome": "blocked", "tls_policy": "dane", "recipient_domain": "example.net",
                "blocked_reason": "Server certificate not verified"} for i in range(3)]  # fmt: skip
    old = [{"id": f"t{i}", "timestamp": (day - timedelta(hours=i % 24)).isoformat(),
            "direction": "inbound", "connector": "Contoso Partner", "connector_type": "partner",
            "tls_version": "TLS1.0"} for i in range(100)]  # fmt: skip
    internet = {**blocked[0], "id": "b-internet"}
    del internet["connector"], internet["connector_type"]
    post_batches(client, [*blocked, internet, *old])
    run_worker()
    active = client.get("/api/v1/insights?state=active").json["items"]
    rules = {i["rule"] for i in active}
    assert "connector-tls-blocked" in rules and rules - {"connector-tls-blocked"}, rules
    html = _page(sign_in(app, make_key("default", "read")), "/transit-security")
    titles = html.texts("h3", "insight-title", within="security-insights")
    assert titles == [i["title"] for i in active if i["rule"] == "connector-tls-blocked"]
    assert sorted(html.texts("a", "insight-connector", within="security-insights")) == [
        "Partner A", "internet, no connector"]  # fmt: skip
    # Each blocked insight links this page over the rule's window and direction.
    links = [a["href"] for a in html.elements("a", "transit-link")]
    assert links == [
        f"/transit-security?direction=outbound&start={i['window']['start']}&end={i['window']['end']}"
        for i in active if i["rule"] == "connector-tls-blocked"
    ]  # fmt: skip


def test_another_tenants_page_shows_nothing_of_this_one(secured, app, make_key):
    other = sign_in(app, make_key("globex", "read"))
    for path in ("/transit-security", "/transit-security?days=90&direction=outbound"):
        html = _page(other, path)
        assert html.elements("section", "empty-state"), path
        assert "globex" in html.texts("strong", "tenant-name")
        assert "example.net" not in html.html and "Partner A" not in html.html
    # The session's tenant is the key's: no parameter names another.
    named = other.get("/transit-security?tenant=default")
    assert named.status_code == 422 and "example.net" not in named.get_data(as_text=True)
    named.close()


def test_an_empty_tenant_gets_help_not_zeros(app, make_key):
    html = _page(sign_in(app, make_key("newcomer", "read")), "/transit-security")
    assert html.elements("section", "empty-state")
    assert not html.elements("section", "direction") and not html.elements("table", "sent")
    assert "POST /api/v1/traces" in html.html and "mailflow ingest" in html.html


@pytest.mark.parametrize("path", ["/transit-security?days=abc", "/transit-security?direction=up",
                                  "/transit-security?start=2020-13-01"])  # fmt: skip
def test_bad_arguments_get_a_422_never_a_5xx(secured, path):
    answer = secured["read"].get(path)
    assert answer.status_code == 422, (path, answer.status_code)
    answer.close()


def test_the_page_is_in_the_nav_and_the_flyout_links_it(secured):
    html = _page(secured["read"], "/")
    assert '<a href="/transit-security"' in html.html
    flyout = _page(secured["read"], "/tls?days=30")
    assert [a["href"] for a in flyout.elements("a", "transit-link")] == [
        "/transit-security?days=30"
    ]
    own = _page(secured["read"], "/transit-security")
    assert '<a href="/transit-security" aria-current="page">' in own.html


def test_the_webhooks_link_is_in_the_nav_of_admin_sessions_only(app, make_key):
    read = sign_in(app, make_key("default", "read"))
    admin = sign_in(app, make_key("default", "read", "admin"))
    for path in ("/", "/tls", "/transit-security", "/insights"):
        assert 'href="/webhooks"' not in _page(read, path).html, path
        assert '<a href="/webhooks">Webhooks</a>' in _page(admin, path).html, path
    refused = read.get("/webhooks")
    assert refused.status_code == 403 and "Webhooks" not in refused.get_data(as_text=True)
    refused.close()
    assert "page-webhooks" in _page(admin, "/webhooks").body_class()


def test_the_page_stays_under_150_kb_at_the_bounds(app, client, clock, run_worker, make_key):
    """90 days of every class both ways; blocked mail to many long domains with many long
    distinct errors each; five active insights."""
    traces = []
    for back in range(90):
        day = clock.now.replace(hour=6, minute=0, second=0, microsecond=0) - timedelta(days=back)
        for i, (version, auth, policy) in enumerate([
            ("TLS1.3", "verified", "dane"), ("TLS1.3", "verified", "mta-sts"),
            ("TLS1.2", "verified", None), ("TLS1.2", "trusted", None), (None, None, None),
        ]):  # fmt: skip
            for direction in ("inbound", "outbound"):
                trace = {"id": f"d{back}-{i}-{direction}", "timestamp": day.isoformat(),
                         "direction": direction, "tls_version": version}  # fmt: skip
                trace.update({k: v for k, v in (("tls_auth", auth), ("tls_policy", policy)) if v})
                traces.append(trace)
    label = "a" * 60
    for d in range(200):  # 100 domains each way, each with more errors than the page lists
        for e in range(4):
            traces.append({
                "id": f"x{d}-{e}", "timestamp": (clock.now - timedelta(days=d % 5)).isoformat(),
                "direction": ("inbound", "outbound")[d % 2], "tls_version": None,
                "outcome": "blocked", "tls_policy": "dane",
                "recipient_domain": f"{label}.{label}.{label}.d{d:03}.example",
                "blocked_reason": f"TLS is required, but was not offered by host {e} " + "x" * 900,
            })  # fmt: skip
    post_batches(client, traces)
    run_worker()
    browser = sign_in(app, make_key("default", "read", "admin"))
    assets = 0
    for name in ("dashboard.css", "dashboard.js", "favicon.svg"):
        asset = browser.get(f"/assets/{name}")
        assets += len(asset.data)
        asset.close()
    for path in ("/transit-security?days=90", "/transit-security?days=90&direction=outbound"):
        answer = browser.get(path)
        assert answer.status_code == 200, path
        html = Page(answer.get_data(as_text=True))
        # Each way, 100 domains blocked and 100 not offering TLS (outbound also the row of
        # the plaintext mail naming no domain): the first ROWS_SHOWN shown.
        sections = len(html.elements("section", "direction"))
        totals = ["100", "100"] * (sections - 1) + ["100", "101"]
        assert html.texts("span", "rows-total") == totals, path
        assert len(html.texts("th", "recipient-domain")) == 2 * ROWS_SHOWN * sections, path
        weight = len(answer.data) + assets
        print("page weight (HTML + CSS + JS + icon, bytes):", path, weight)
        assert weight < 150 * 1024, (path, weight)
