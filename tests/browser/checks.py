"""What every page must pass in a real browser: no console error, no request leaving the
origin, no sideways scroll on a phone. Each check reads (and so empties) the browser's logs:
call it after the page has done its work."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.support.ui import WebDriverWait

from bench import chromium

# The widest elements past the viewport's right edge, to say what overflows.
_OVERFLOWING = """
const limit = document.documentElement.clientWidth;
return Array.from(document.querySelectorAll('body *'))
  .map(e => [e, e.getBoundingClientRect().right])
  .filter(([e, right]) => right > limit + 0.5)
  .sort((a, b) => b[1] - a[1]).slice(0, 5)
  .map(([e, right]) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
       + (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\\s+/).join('.') : '')
       + ' right=' + Math.round(right));
"""


def assert_no_console_error(browser: Any) -> None:
    errors = chromium.console_errors(browser)
    assert errors == [], f"console errors: {errors}"


def assert_no_request_leaves(browser: Any, origin: str) -> list[str]:
    """Every request the page made went to ``origin``; returns them (to check there were some)."""
    sent = chromium.requests_sent(browser)
    elsewhere = [url for url in sent if not chromium.same_origin(url, origin)]
    assert elsewhere == [], f"requests leaving {origin}: {elsewhere}"
    return sent


def assert_no_horizontal_scroll(browser: Any, width: int = chromium.PHONE[0]) -> None:
    """At ``width`` CSS pixels (a phone's viewport when narrow), the page is no wider than the
    window: nothing scrolls sideways. Wide tables must scroll inside their own box."""
    chromium.set_viewport(browser, width, chromium.PHONE[1])
    # The new metrics take effect on the next layout; wait until the page has it.
    WebDriverWait(browser, 5).until(
        lambda b: b.execute_script("return document.documentElement.clientWidth") == width,
        f"the page's viewport is not {width} px wide: does it have "
        '<meta name="viewport" content="width=device-width, initial-scale=1">?',
    )
    scroll_width, inner_width = browser.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth];"
    )
    assert scroll_width <= min(width, inner_width), (
        f"at {width} px the page is {scroll_width} px wide; widest overflowing elements: "
        f"{browser.execute_script(_OVERFLOWING)}"
    )
