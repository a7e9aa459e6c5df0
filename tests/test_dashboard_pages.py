"""The dashboard's pages show the API's numbers for the same window and filters, only to the
session's tenant, with the headers, weights and forms the issue asks for."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest

from service.cli.demo import demo_traces
from tests.helpers import post_batches
from tests.html_cells import Page, number, percent, sign_in

VERSIONS = ("TLS1.3", "TLS1.2", "TLS1.1", "TLS1.0", "SSL3", "none")
PAGES = ("/", "/tls", "/tls?days=30", "/connectors", "/connectors?group_by=day&days=30",
         "/insights", "/connectors/inbound/Contoso%20Partner", "/connectors/outbound/-",
         "/transit-security", "/transit-security?days=90")  # fmt: skip


@pytest.fixture
def demo(app, client, clock, run_worker, make_key):
    """The demo week for tenant ``default``, folded; a read and an admin session on it."""
    post_batches(client, list(demo_traces(clock.now, days=7)))
    run_worker()
    return {
        "read": sign_in(app, make_key("default", "read")),
        "admin": sign_in(app, make_key("default", "read", "admin")),
        "api": client,
    }


def dated(text: str, clock) -> str:
    """``{today-N}`` in a query: the date N days before the injected clock's day."""
    return re.sub(
        r"\{today-(\d+)\}",
        lambda m: (clock.now.date() - timedelta(days=int(m[1]))).isoformat(),
        text,
    )


def page(browser, path: str) -> Page:
    answer = browser.get(path)
    assert answer.status_code == 200, (path, answer.status_code, answer.data[:300])
    return Page(answer.get_data(as_text=True))


def test_the_widget_shows_the_snapshot_endpoints_numbers(demo):
    api = demo["api"].get("/api/v1/mailflow/snapshot").json
    html = page(demo["read"], "/")
    assert html.body_class() == "page-widget"
    for direction in ("inbound", "outbound"):
        card = f"direction-card {direction}"
        expected = api["directions"][direction]
        assert expected["messages"] > 0
        assert [number(t) for t in html.texts("td", "messages", within=card)] == [
            expected["messages"]
        ]
        assert (
            percent(html.texts("td", "encrypted-percent", within=card)[0])
            == expected["encrypted_percent"]
        )
        cells = html.texts("td", "tls-messages", within=card)
        versions = [v for v in VERSIONS if v in expected["tls"]]
        shown = dict(zip(versions, map(number, cells), strict=True))
        assert shown == {v: expected["tls"][v]["messages"] for v in versions}
    assert number(html.texts("strong", "active-insights")[0]) == api["active_insights"] > 0
    assert html.texts("time", "data-as-of") == [api["data_as_of"]]
    assert "View details" in html.texts("a", "view-details")


def test_the_flyout_shows_the_tls_endpoints_numbers(demo):
    for query in ("", "?days=30", "?direction=outbound"):
        api = demo["api"].get("/api/v1/mailflow/tls" + query).json
        html = page(demo["read"], "/tls" + query)
        assert html.body_class() == "page-tls"
        for direction, summary in api["directions"].items():
            assert (
                number(html.texts("span", "messages", within=f"direction {direction}")[0])
                == (summary["messages"])
            )
            daily = html.texts("td", "messages", within=f"daily {direction}")
            assert [number(t) for t in daily] == [
                day["directions"][direction]["messages"] for day in api["series"]
            ]
            tls13 = [number(t) for t in html.texts("td", "tls-1-3", within=f"daily {direction}")]
            assert tls13 == [
                day["directions"][direction]["tls"]["TLS1.3"]["messages"] for day in api["series"]
            ]
        shown = {d for d in ("inbound", "outbound") if html.elements("section", d)}
        assert shown == set(api["directions"])


def _report_rows(html: Page) -> list[tuple]:
    table = "connector-report"
    names = html.texts("td", "name", within=table)
    directions = html.texts("td", "direction", within=table)
    messages = [number(t) for t in html.texts("td", "messages", within=table)]
    tls10 = [percent(t) for t in html.texts("td", "tls-1-0", within=table)]
    dates = html.texts("td", "date", within=table) or [None] * len(names)
    return list(zip(dates, directions, names, messages, tls10, strict=True))


def _api_rows(rows: list[dict]) -> list[tuple]:
    return [(r.get("date"), r["direction"], r["name"] or "(internet, no connector)", r["messages"],
             r["tls"]["TLS1.0"]["percent"]) for r in rows]  # fmt: skip


@pytest.mark.parametrize("query", [
    "",
    "?sort=-messages",
    "?direction=inbound&type=partner",
    "?name=fab&forced_tls=false&days=30",
    "?group_by=day&sort=-TLS1.0",
    "?type=internet&start={today-5}&end={today-1}",
])  # fmt: skip
def test_the_connector_report_shows_the_apis_rows(demo, query, clock):
    query = dated(query, clock)
    api = demo["api"].get("/api/v1/connectors" + query).json
    html = page(demo["read"], "/connectors" + query)
    assert html.body_class() == "page-connector-report"
    assert _report_rows(html) == _api_rows(api["rows"])
    assert number(html.texts("span", "total-rows")[0]) == api["total_rows"]
    # The charts' numbers add up to the same volume as the rows (all on this one page).
    assert api["next_cursor"] is None
    days = [number(t) for t in html.texts("td", "messages", within="chart-days")]
    assert len(days) == api["window"]["days"]
    assert sum(days) == sum(row["messages"] for row in api["rows"])
    assert "Message volume" in html.html and "Messages by TLS used" in html.html


def test_the_export_is_the_apis_csv_of_the_rows_shown(demo):
    query = "?direction=inbound&sort=-messages&days=30"
    html = page(demo["read"], "/connectors" + query)
    (link,) = html.elements("a", "export-csv")
    answer = demo["read"].get(link["href"])
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    exported = answer.get_data(as_text=True)  # streamed: read it before the next request
    api = demo["api"].get("/api/v1/connectors" + query + "&format=csv").get_data(as_text=True)
    assert exported == api
    assert _csv_rows(exported) == _report_rows(html) != []
    assert not html.elements("a", "export-all-csv")  # one page: the rows shown are all


def _csv_rows(text: str) -> list[tuple]:
    """The CSV's rows in ``_report_rows``' terms."""
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        direction, _, name = row["Connector direction and name"].partition(" - ")
        shown_name = "(internet, no connector)" if name == "(no connector)" else name
        date = row["Date"] if "/" not in row["Date"] else None  # a window: grouped by connector
        rows.append((date, direction.lower(), shown_name, int(row["Volume"]),
                     float(row["TLS 1.0 %"])))  # fmt: skip
    return rows


def test_the_export_is_the_page_shown_on_a_report_of_many_pages(demo, client):
    query = "?group_by=day&sort=-messages"
    api = client.get("/api/v1/connectors" + query + "&format=csv").get_data(as_text=True)
    header, *every_row = api.splitlines(keepends=True)
    assert len(every_row) > 25
    path, first = "/connectors" + query + "&limit=10", 0
    for _ in range(3):  # the first page, the second (a cursor), the third
        html = page(demo["read"], path)
        shown = _report_rows(html)
        assert len(shown) == 10 < number(html.texts("span", "total-rows")[0])
        (link,) = html.elements("a", "export-csv")
        answer = demo["read"].get(link["href"])
        assert answer.status_code == 200 and answer.mimetype == "text/csv"
        assert f"from-row-{first + 1}.csv" in answer.headers["Content-Disposition"]
        exported = answer.get_data(as_text=True)
        assert exported == header + "".join(every_row[first : first + 10])
        assert _csv_rows(exported) == shown
        # Every row of the selection, labelled so, is one more link.
        (every_link,) = html.elements("a", "export-all-csv")
        assert html.texts("a", "export-all-csv") == [f"Export all {len(every_row)} rows"]
        assert "cursor" not in every_link["href"]
        assert demo["read"].get(every_link["href"]).get_data(as_text=True) == api
        path, first = html.elements("a", "next-page")[0]["href"], first + 10


def test_the_export_of_a_page_no_longer_kept_says_so(demo, redis_client):
    html = page(demo["read"], "/connectors?group_by=day&limit=10")
    second = page(demo["read"], html.elements("a", "next-page")[0]["href"])
    (link,) = second.elements("a", "export-csv")
    for pin in redis_client.scan_iter(match="*:pin:connectors:*"):
        redis_client.delete(pin)
    answer = demo["read"].get(link["href"])
    assert answer.status_code == 410 and answer.json["type"] == "/problems/cursor-expired"
    assert "reload the report" in answer.json["detail"]


def test_the_connector_report_pages_follow_the_apis_cursor(demo, client):
    query = "?group_by=day&sort=-messages"
    every_row = client.get("/api/v1/connectors" + query + "&limit=1000").json["rows"]
    assert len(every_row) > 10
    shown, path, pages = [], "/connectors" + query + "&limit=10", 0
    while path:
        html = page(demo["read"], path)
        shown += _report_rows(html)
        pages += 1
        following = html.elements("a", "next-page")
        path = following[0]["href"] if following else None
    assert shown == _api_rows(every_row)
    assert pages == -(-len(every_row) // 10)


@pytest.mark.parametrize("query", ["", "?days=30", "?start={today-26}&end={today-3}"])
def test_a_connectors_page_shows_its_report(demo, query, clock):
    query = dated(query, clock)
    api = demo["api"].get("/api/v1/connectors/inbound/Contoso%20Partner" + query).json
    html = page(demo["read"], "/connectors/inbound/Contoso%20Partner" + query)
    assert html.body_class() == "page-connector"
    assert number(html.texts("td", "messages", within="definition")[0]) == api["messages"]
    assert [number(t) for t in html.texts("td", "messages", within="daily")] == [
        d["messages"] for d in api["series"]
    ]
    assert len(api["series"]) == api["window"]["days"]
    assert html.texts("td", "type", within="definition") == ["partner"]
    # Its insight (the demo's TLS 1.0 partner flow) is on its page.
    assert "Inbound Partner connector seeing significant TLS1.0 mail flow" in html.texts(
        "h3", "insight-title"
    )
    assert not html.elements("form", "define-connector")  # a read key: no admin form


def test_the_insights_page_shows_the_feeds_insights(demo):
    active = demo["api"].get("/api/v1/insights?state=active").json["items"]
    assert active
    html = page(demo["read"], "/insights")
    assert html.body_class() == "page-insights"
    assert html.texts("h3", "insight-title", within="active-insights") == [
        i["title"] for i in active
    ]
    assert [
        percent(t) for t in html.texts("span", "measured-percent", within="active-insights")
    ] == [i["measured"]["percent"] for i in active]
    links = html.elements("a", "report-link")
    assert links and all(link["href"].startswith("/connectors?") for link in links)
    assert page(demo["read"], links[0]["href"]).texts("td", "name")
    assert not html.elements("form", "rule-form")


def test_another_tenants_pages_show_nothing_of_this_one(demo, app, make_key):
    other = sign_in(app, make_key("globex", "read"))
    for path in ("/", "/tls", "/connectors", "/insights"):
        html = page(other, path)
        assert html.elements("section", "empty-state"), path
        assert "Contoso" not in html.html and "globex" in html.texts("strong", "tenant-name")
    assert other.get("/connectors/inbound/Contoso%20Partner").status_code == 404
    exported = other.get("/connectors/export").get_data(as_text=True)
    assert "Contoso" not in exported and len(exported.splitlines()) == 1  # the header only
    # The session's tenant is the key's: no parameter names another.
    assert "Contoso" not in other.get("/connectors?tenant=default").get_data(as_text=True)


def test_an_empty_tenant_gets_help_not_zeros(app, make_key):
    browser = sign_in(app, make_key("newcomer", "read"))
    html = page(browser, "/")
    assert html.elements("section", "empty-state")
    assert not html.elements("section", "direction-card")
    assert "POST /api/v1/traces" in html.html and "mailflow ingest" in html.html


def test_every_page_has_the_security_headers_and_weighs_under_150_kb(demo, app):
    browser = demo["admin"]
    assets: dict[str, int] = {}
    weights: dict[str, int] = {}
    anonymous = app.test_client()
    anonymous.environ_base.pop("HTTP_AUTHORIZATION", None)
    for path in (*PAGES, "/sign-in"):
        answer = (anonymous if path == "/sign-in" else browser).get(path)
        assert answer.status_code == 200, path
        policy = answer.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
        html = answer.get_data(as_text=True)
        assert "<script>" not in html and " style=" not in html and "onclick" not in html
        weight = len(answer.data)
        for ref in _refs(html):
            if ref not in assets:
                asset = browser.get(ref)
                assert asset.status_code == 200, ref
                assets[ref] = len(asset.data)
                asset.close()
            weight += assets[ref]
        weights[path] = weight
        assert weight < 150 * 1024, (path, weight)
    assert set(assets) == {"/assets/dashboard.css", "/assets/dashboard.js", "/assets/favicon.svg"}
    print("page weights (HTML + CSS + JS, bytes):", weights)


def _refs(html: str) -> list[str]:
    return [ref.split("?")[0] for ref in re.findall(r'(?:href|src)="(/assets/[^"]+)"', html)]


def test_an_unchanged_page_is_a_304_on_its_etag(demo, client, clock, run_worker):
    browser = demo["read"]
    first = browser.get("/")
    etag = first.headers["ETag"]
    assert etag in first.get_data(as_text=True).replace("&#34;", '"')  # for the refresh script
    again = browser.get("/", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    # New mail, folded: a new page.
    when = (clock.now - timedelta(hours=1)).isoformat()
    client.post("/api/v1/traces", json=[{"id": "late-1", "timestamp": when,
                                          "direction": "inbound", "tls_version": "TLS1.3"}])  # fmt: skip
    run_worker()
    fresh = browser.get("/", headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["ETag"] != etag


def test_an_admin_defines_a_connector_through_the_apis_rules(demo, run_worker):
    admin, api = demo["admin"], demo["api"]
    path = "/connectors/inbound/Fabrikam%20Partner"
    html = page(admin, path)
    (form,) = html.elements("form", "define-connector")
    csrf = html.field("define-connector", "csrf")
    fields = {"type": "partner", "forced_tls": "true", "description": "Fabrikam, forced"}
    assert admin.post(path, data=fields).status_code == 403  # no CSRF token
    assert demo["read"].post(path, data={**fields, "csrf": csrf}).status_code == 403
    assert admin.post(path, data={**fields, "type": "bogus", "csrf": csrf}).status_code == 422
    answer = admin.post(path, data={**fields, "csrf": csrf})
    assert answer.status_code == 303
    detail = api.get("/api/v1/connectors/inbound/Fabrikam%20Partner").json
    assert (detail["forced_tls"], detail["description"], detail["defined"]) == (
        True, "Fabrikam, forced", True)  # fmt: skip
    html = page(admin, path)
    assert html.texts("td", "forced-tls", within="definition") == ["Yes"]


def test_an_admin_changes_a_rules_thresholds_through_the_apis_rules(demo):
    admin, api = demo["admin"], demo["api"]
    html = page(admin, "/insights")
    csrf = html.field("rule-form", "csrf")
    rule = "inbound-partner-tls10"
    url = f"/insights/rules/{rule}"
    fields = {"enabled": "true", "min_percent": "20", "min_messages": "50"}
    assert admin.post(url, data=fields).status_code == 403
    assert admin.post(url, data={**fields, "min_percent": "101", "csrf": csrf}).status_code == 422
    assert admin.post(url, data={**fields, "min_percent": "x", "csrf": csrf}).status_code == 422
    assert admin.post("/insights/rules/nope", data={**fields, "csrf": csrf}).status_code == 404
    read_csrf = page(demo["read"], "/insights").field("sign-out", "csrf")
    assert demo["read"].post(url, data={**fields, "csrf": read_csrf}).status_code == 403
    assert admin.post(url, data={**fields, "csrf": csrf}).status_code == 303
    rules = {r["id"]: r for r in api.get("/api/v1/insight-rules").json["rules"]}
    assert (rules[rule]["min_percent"], rules[rule]["min_messages"]) == (20.0, 50)
    shown = page(admin, "/insights")
    assert "20.0" in shown.texts("td", "min-percent")


def test_the_dashboard_is_not_in_the_openapi_spec(client):
    paths = client.get("/openapi.json").json["paths"]
    assert all(
        path.startswith("/api/v1") or path in ("/healthz", "/readyz", "/metrics") for path in paths
    ), sorted(paths)


@pytest.mark.parametrize("path", [
    "/tls?days=abc", "/tls?days=0", "/tls?direction=sideways", "/connectors?limit=0",
    "/connectors?sort=bogus", "/connectors?start={today-1}&end={today-20}",
    "/connectors?type=nope", "/connectors?forced_tls=maybe", "/connectors/sideways/x",
    "/connectors/inbound/" + "x" * 300, "/connectors/inbound/nobody", "/connectors?cursor=forged",
    "/connectors/export?days=1000", "/connectors/export?cursor=forged",
    "/connectors/export?rows=some", "/connectors/export?rows=all&cursor=x", "/insights?state=weird",
])  # fmt: skip
def test_bad_arguments_get_a_4xx_or_the_first_page_never_a_5xx(app, make_key, path, clock):
    path = dated(path, clock)
    browser = sign_in(app, make_key("acme", "read", "admin"))
    answer = browser.get(path)
    assert answer.status_code < 500, (path, answer.data[:300])
    if answer.status_code >= 400:
        assert answer.mimetype == "application/problem+json"
        assert "Content-Security-Policy" in answer.headers


def test_bad_admin_forms_are_refused_never_a_5xx(app, make_key):
    browser = sign_in(app, make_key("acme", "read", "admin"))
    csrf = Page(browser.get("/insights").get_data(as_text=True)).field("sign-out", "csrf")
    for path, fields in (
        ("/connectors/inbound/-", {"type": "partner"}),
        ("/connectors/inbound/" + "x" * 300, {"type": "partner"}),
        ("/connectors/inbound/Acme", {"type": "partner", "description": "d" * 2000}),
        ("/insights/rules/connector-unencrypted", {"min_messages": "0"}),
        ("/insights/rules/connector-unencrypted", {"min_percent": "nan"}),
    ):
        answer = browser.post(path, data={**fields, "csrf": csrf})
        assert 400 <= answer.status_code < 500, (path, fields, answer.data[:300])
    big = browser.post("/sign-out", data={"csrf": csrf, "pad": "x" * 20_000})
    assert big.status_code == 403  # a form over 16 KiB is not read: no token, refused


def test_the_heaviest_pages_stay_under_150_kb(app, client, clock, run_worker, make_key):
    """90 days of 15 connectors with every TLS version every day: the longest charts and
    tables a page can have (the report's table has its default 100 rows a page)."""
    traces = [
        {"id": f"h-{back}-{c}-{version}", "direction": "inbound" if c % 2 else "outbound",
         "timestamp": (clock.now - timedelta(days=back, hours=1)).isoformat(),
         "connector": f"Connector number {c:02d}", "connector_type": "partner",
         "tls_version": version}
        for back in range(90) for c in range(15) for version in VERSIONS
    ]  # fmt: skip
    assert post_batches(client, traces)["accepted"] == len(traces) == 8100
    run_worker()
    browser = sign_in(app, make_key("default", "read"))
    assets = 0
    for name in ("dashboard.css", "dashboard.js", "favicon.svg"):
        with browser.get(f"/assets/{name}") as asset:
            assets += len(asset.data)
    for path in ("/connectors?group_by=day&days=90", "/connectors?days=90", "/tls?days=90",
                 "/connectors/inbound/Connector%20number%2001?days=90"):  # fmt: skip
        answer = browser.get(path)
        assert answer.status_code == 200
        assert len(answer.data) + assets < 150 * 1024, (path, len(answer.data) + assets)


def test_the_define_form_is_held_to_the_definitions_limit(demo, app):
    admin, api = demo["admin"], demo["api"]
    state = app.extensions["mailflow"]
    state.settings = state.settings.with_overrides({"max_connectors": 1})
    assert api.put("/api/v1/connectors/inbound/Other", json={"type": "partner"}).status_code == 200
    path = "/connectors/inbound/Fabrikam%20Partner"
    csrf = page(admin, path).field("define-connector", "csrf")
    answer = admin.post(path, data={"type": "partner", "forced_tls": "true", "csrf": csrf})
    assert answer.status_code == 422
    assert answer.json["type"] == "/problems/too-many-definitions"
    assert not api.get("/api/v1/connectors/inbound/Fabrikam%20Partner").json["defined"]
