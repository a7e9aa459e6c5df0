"""/docs in a real Chromium: the Swagger UI renders the spec from the app alone, offline."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as shown
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.checks import (
    assert_no_console_error,
    assert_no_horizontal_scroll,
    assert_no_request_leaves,
)

OPERATION_PATH = (By.CSS_SELECTOR, '.opblock-summary-path[data-path="/api/v1/traces"]')
NOT_RENDERED = "Swagger UI did not list POST /api/v1/traces"


def test_docs_render_the_operations_with_nothing_from_outside(browser, live_api):
    browser.get(live_api.url + "/docs")
    WebDriverWait(browser, 20).until(
        shown.visibility_of_element_located(OPERATION_PATH), NOT_RENDERED
    )
    title = browser.find_element(By.CSS_SELECTOR, ".info .title").text
    assert title.startswith("mailflow")
    paths = {e.get_attribute("data-path") for e in browser.find_elements(
        By.CSS_SELECTOR, ".opblock-summary-path")}  # fmt: skip
    assert {"/api/v1/traces", "/api/v1/mailflow/snapshot"} <= paths
    assert_no_console_error(browser)
    sent = assert_no_request_leaves(browser, live_api.url)
    assert live_api.url + "/openapi.json" in sent  # the check did see the page's requests


def test_docs_fit_a_phone(browser, live_api):
    browser.get(live_api.url + "/docs")
    WebDriverWait(browser, 20).until(
        shown.visibility_of_element_located(OPERATION_PATH), NOT_RENDERED
    )
    assert_no_horizontal_scroll(browser, width=390)
    assert_no_console_error(browser)
