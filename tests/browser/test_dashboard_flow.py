"""The dashboard in a real Chromium: sign in with a read key, the widget, the TLS details, the
connector report (sort, filter, export), a connector, the insights, sign out, a revoked key.
Every page: no console error, no request leaving the origin, no sideways scroll at 390 px.

The pages are found by the classes they promise (form.sign-in with input ``key``,
.direction-card.inbound/.outbound with .messages, table.connector-report, a.export-csv,
form.sign-out, ...), never by position."""

from __future__ import annotations

import csv
import io
import json
import re
import urllib.request
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as shown
from selenium.webdriver.support.ui import WebDriverWait

from bench import chromium
from service.cli.demo import demo_traces
from service.core.api_keys import parse_key
from service.store import api_keys
from tests.browser.checks import (
    assert_no_console_error,
    assert_no_horizontal_scroll,
    assert_no_request_leaves,
)

pytest.importorskip("service.web.dashboard", reason="no dashboard pages in this build")

SIGN_IN = (By.CSS_SELECTOR, "form.sign-in")
WIDGET_INBOUND = (By.CSS_SELECTOR, ".direction-card.inbound .messages")
REPORT = (By.CSS_SELECTOR, "table.connector-report")


def _api(live_api, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(live_api.url + path, data=data, headers={
        "Authorization": f"Bearer {live_api.key}", "Content-Type": "application/json",
    })  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def _number(text: str) -> int:
    digits = re.sub(r"[^\d]", "", text)
    assert digits, text
    return int(digits)


@pytest.fixture
def demo(live_api):
    """The demo week in tenant ``default``, posted through the API and folded."""
    traces = list(demo_traces(live_api.clock.now, days=7))
    for start in range(0, len(traces), 5000):
        _api(live_api, "/api/v1/traces", traces[start : start + 5000])
    live_api.run_worker()
    return live_api


def _wait(browser, locator, message: str, seconds: float = 10):
    return WebDriverWait(browser, seconds).until(shown.presence_of_element_located(locator),
                                                 message)  # fmt: skip


def _sign_in(browser, live_api) -> None:
    browser.get(live_api.url + "/")
    form = _wait(browser, SIGN_IN, "/ shows no form.sign-in to a browser without a session")
    form.find_element(By.NAME, "key").send_keys(live_api.key)
    form.submit()
    _wait(browser, WIDGET_INBOUND, "signing in did not lead to the widget")


def _check_page(browser, live_api) -> None:
    """What every page owes: no console error, nothing from elsewhere, fits a phone."""
    assert live_api.key not in browser.page_source and live_api.key not in browser.current_url
    assert_no_console_error(browser)
    assert_no_request_leaves(browser, live_api.url)
    assert_no_horizontal_scroll(browser, width=390)
    assert_no_console_error(browser)
    chromium.set_viewport(browser, *chromium.DESKTOP)


def _report_rows(browser, dated: bool = False) -> list[dict[str, str]]:
    rows = browser.find_elements(By.CSS_SELECTOR, "table.connector-report tbody tr.row")
    cells = ("direction", "name", "messages", *(("date",) if dated else ()))
    return [{cell: row.find_element(By.CSS_SELECTOR, f"td.{cell}").text for cell in cells}
            for row in rows]  # fmt: skip


def test_sign_in_shows_the_snapshot_endpoints_numbers(browser, demo):
    _sign_in(browser, demo)
    snapshot = _api(demo, "/api/v1/mailflow/snapshot")
    for direction in ("inbound", "outbound"):
        shown_messages = browser.find_element(
            By.CSS_SELECTOR, f".direction-card.{direction} .messages").text  # fmt: skip
        assert _number(shown_messages) == snapshot["directions"][direction]["messages"] > 0
    cookies = {c["name"]: c for c in browser.get_cookies()}
    assert cookies and all(c["httpOnly"] and c.get("sameSite") == "Strict"
                           for c in cookies.values())  # fmt: skip
    assert all(demo.key not in c["value"] for c in cookies.values())
    _check_page(browser, demo)


def test_every_page_of_the_flow_within_two_clicks(browser, demo):
    _sign_in(browser, demo)
    # View details: the TLS flyout.
    browser.find_element(By.CSS_SELECTOR, "a.view-details").click()
    WebDriverWait(browser, 10).until(lambda b: "/tls" in b.current_url)
    _check_page(browser, demo)
    # The connector report: every connector of the 7-day report is on it.
    browser.find_element(By.CSS_SELECTOR, 'a[href="/connectors"]').click()
    _wait(browser, REPORT, "no table.connector-report at /connectors")
    api_rows = _api(demo, "/api/v1/connectors?days=7")["rows"]
    names = {(r["direction"], r["name"]) for r in api_rows if r["name"]}
    shown_names = {(r["direction"], r["name"]) for r in _report_rows(browser)}
    assert names and names <= shown_names
    _check_page(browser, demo)
    # One connector's page, one click further.
    link = browser.find_element(By.LINK_TEXT, "Contoso Partner")
    link.click()
    WebDriverWait(browser, 10).until(lambda b: "/connectors/inbound/" in b.current_url)
    assert "Contoso Partner" in browser.find_element(By.TAG_NAME, "h1").text
    _check_page(browser, demo)
    # Insights: every active insight's title.
    browser.find_element(By.CSS_SELECTOR, 'a[href="/insights"]').click()
    WebDriverWait(browser, 10).until(lambda b: b.current_url.endswith("/insights"))
    active = {i["title"] for i in _api(demo, "/api/v1/insights?state=active")["items"]}
    titles = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".insight-title")}
    assert active and active <= titles
    _check_page(browser, demo)


def test_the_report_sorts_and_filters(browser, demo):
    _sign_in(browser, demo)
    browser.get(demo.url + "/connectors")
    _wait(browser, REPORT, "no table.connector-report at /connectors")
    # Volume, twice: ascending then descending.
    for expected_sort in ("sort=messages", "sort=-messages"):
        browser.find_element(By.CSS_SELECTOR, "table.connector-report th.col-messages a").click()
        WebDriverWait(browser, 10).until(lambda b, q=expected_sort: q in b.current_url)
        volumes = [_number(r["messages"]) for r in _report_rows(browser)]
        descending = expected_sort.startswith("sort=-")
        assert len(volumes) > 2 and volumes == sorted(volumes, reverse=descending)
    # Direction: inbound only.
    form = browser.find_element(By.CSS_SELECTOR, "form.report-filters")
    form.find_element(By.CSS_SELECTOR, 'select[name="direction"] option[value="inbound"]').click()
    form.submit()
    WebDriverWait(browser, 10).until(lambda b: "direction=inbound" in b.current_url)
    directions = {r["direction"].lower() for r in _report_rows(browser)}
    assert directions == {"inbound"}
    _check_page(browser, demo)


def _download(browser, css: str) -> list[dict[str, str]]:
    """The CSV behind a link as the browser would fetch it: same origin, the session cookie."""
    href = browser.find_element(By.CSS_SELECTOR, css).get_attribute("href")
    text = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.text()).then(done);",
        href,
    )
    return list(csv.DictReader(io.StringIO(text)))


def _assert_exported_as_shown(exported: list[dict[str, str]], rows: list[dict[str, str]]):
    assert len(exported) == len(rows) > 0
    for shown_row, exported_row in zip(rows, exported, strict=True):
        assert _number(exported_row["Volume"]) == _number(shown_row["messages"])
        # The CSV says "Inbound - Contoso Partner", "Inbound - (no connector)".
        name = "(no connector)" if shown_row["name"].startswith("(") else shown_row["name"]
        assert exported_row["Connector direction and name"].lower() == (
            f"{shown_row['direction']} - {name}".lower()
        )
        if "date" in shown_row:
            assert exported_row["Date"] == shown_row["date"]


def test_the_export_is_the_rows_shown(browser, demo):
    _sign_in(browser, demo)
    browser.get(demo.url + "/connectors?direction=inbound&sort=-messages")
    _wait(browser, REPORT, "no table.connector-report at /connectors")
    _assert_exported_as_shown(_download(browser, "a.export-csv"), _report_rows(browser))
    assert_no_console_error(browser)
    assert_no_request_leaves(browser, demo.url)


def test_the_export_is_the_page_shown_when_the_report_has_more(browser, demo):
    """Per day, 10 rows a page: the report has several pages; the download of the second page
    is its 10 rows, and "Export all" is every row."""
    _sign_in(browser, demo)
    browser.get(demo.url + "/connectors?group_by=day&sort=-messages&limit=10")
    _wait(browser, REPORT, "no table.connector-report at /connectors")
    total = _number(browser.find_element(By.CSS_SELECTOR, "span.total-rows").text)
    first = _report_rows(browser, dated=True)
    assert len(first) == 10 < total
    _assert_exported_as_shown(_download(browser, "a.export-csv"), first)
    browser.find_element(By.CSS_SELECTOR, "a.next-page").click()
    WebDriverWait(browser, 10).until(lambda b: "cursor=" in b.current_url)
    second = _report_rows(browser, dated=True)
    assert len(second) == 10 and second != first
    _assert_exported_as_shown(_download(browser, "a.export-csv"), second)
    assert len(_download(browser, "a.export-all-csv")) == total
    assert_no_console_error(browser)
    assert_no_request_leaves(browser, demo.url)


def test_sign_out_ends_the_session(browser, demo):
    _sign_in(browser, demo)
    browser.find_element(By.CSS_SELECTOR, "form.sign-out").submit()
    _wait(browser, SIGN_IN, "signing out did not lead back to the sign-in form")
    browser.get(demo.url + "/connectors")
    _wait(browser, SIGN_IN, "after signing out, /connectors does not ask to sign in")
    assert not browser.find_elements(*REPORT)
    assert_no_console_error(browser)


def test_a_revoked_key_is_signed_out_at_its_next_request(browser, demo, redis_client):
    _sign_in(browser, demo)
    assert api_keys.revoke(redis_client, parse_key(demo.key)[0], demo.clock.now.isoformat())
    browser.get(demo.url + "/connectors")
    _wait(browser, SIGN_IN, "a revoked key's session still sees the pages")
    assert not browser.find_elements(*REPORT)


def test_a_missing_page_is_an_html_page_that_leads_back(browser, demo):
    _sign_in(browser, demo)
    for path, back in (("/connectors/inbound/Nobody%20At%20All", "/connectors"),
                       ("/no-such-page", "/")):  # fmt: skip
        browser.get(demo.url + path)
        title = _wait(browser, (By.CSS_SELECTOR, "h1.problem-title"), f"{path}: no error page")
        assert title.text == "No such resource"
        link = browser.find_element(By.CSS_SELECTOR, "a.back")
        assert link.get_attribute("href") == demo.url + back
        # The stylesheet applied (no inline style: the CSP would refuse it).
        width = browser.execute_script(
            "return getComputedStyle(document.querySelector('main')).maxWidth"
        )
        assert width == "1200px"
        # Chromium logs the page's own 404 status as a console error; nothing else may be there.
        errors = [e for e in chromium.console_errors(browser) if "status of 404" not in e]
        assert errors == []
        assert_no_request_leaves(browser, demo.url)
        assert_no_horizontal_scroll(browser, width=390)
        chromium.set_viewport(browser, *chromium.DESKTOP)
        link.click()
        WebDriverWait(browser, 10).until(lambda b, u=demo.url + back: b.current_url == u)
