"""The Transit security page in a real Chromium: opened from the navigation, it shows the
API's numbers for the window, and the flyout links it; no console error, no request leaving
the origin, no sideways scroll at 390 px."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from service.cli.demo import demo_traces
from tests.browser.test_dashboard_flow import _api, _check_page, _number, _sign_in

pytest.importorskip("service.web.dashboard", reason="no dashboard pages in this build")


@pytest.fixture
def demo_week(live_api):
    """The demo week in tenant ``default`` (mail of every class, blocked mail), folded."""
    traces = list(demo_traces(live_api.clock.now, days=7))
    for start in range(0, len(traces), 5000):
        _api(live_api, "/api/v1/traces", traces[start : start + 5000])
    live_api.run_worker()
    return live_api


def _cells(browser, css: str) -> list[int]:
    return [_number(e.text) for e in browser.find_elements(By.CSS_SELECTOR, css)]


def test_the_page_opens_from_the_nav_with_the_apis_numbers(browser, demo_week):
    _sign_in(browser, demo_week)
    browser.find_element(By.CSS_SELECTOR, 'nav a[href="/transit-security"]').click()
    WebDriverWait(browser, 10).until(lambda b: b.current_url.endswith("/transit-security"))
    api = _api(demo_week, "/api/v1/mailflow/transit-security")
    outbound = api["directions"]["outbound"]
    assert outbound["blocked"] and outbound["no_tls_offered"]
    for direction, section in api["directions"].items():
        # The table's cells are in a closed <details>: their text is read from the DOM.
        dane = [int(e.get_attribute("textContent").replace(",", "")) for e in
                browser.find_elements(By.CSS_SELECTOR, f"table.sent.{direction} td.sec-dane")]  # fmt: skip
        assert dane == [d["classes"]["dane"]["messages"] for d in section["sent"]]
        blocked = _cells(browser, f"table.blocked.{direction} td.messages")
        assert blocked == [r["messages"] for r in section["blocked"][: len(blocked)]]
        assert len(blocked) == min(20, len(section["blocked"]))
    svg = browser.find_element(By.CSS_SELECTOR, "section.direction.outbound svg.stacked")
    assert svg.size["width"] > 300 and svg.find_elements(By.CSS_SELECTOR, "path.sec-dane")
    _check_page(browser, demo_week)
    # The window selector: 30 days.
    form = browser.find_element(By.CSS_SELECTOR, "form.window-form")
    form.find_element(By.CSS_SELECTOR, 'select[name="days"] option[value="30"]').click()
    form.submit()
    WebDriverWait(browser, 10).until(lambda b: "days=30" in b.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "table.sent.outbound tbody tr")
    assert len(rows) == 30
    _check_page(browser, demo_week)
    # The flyout links here, with its window.
    browser.get(demo_week.url + "/tls?days=30")
    browser.find_element(By.CSS_SELECTOR, "a.transit-link").click()
    WebDriverWait(browser, 10).until(lambda b: "/transit-security?days=30" in b.current_url)
    _check_page(browser, demo_week)
