"""Debian's headless Chromium driven by selenium: for the browser tests and `make screenshots`.

Both binaries are given by path (``/usr/bin/chromium``, ``/usr/bin/chromedriver``; the
``MAILFLOW_TEST_CHROMIUM`` and ``MAILFLOW_TEST_CHROMEDRIVER`` variables point elsewhere), so
selenium-manager is never asked to find, let alone download, a browser or a driver. The flags
keep Chromium from calling home: no sync, no component updates, no background networking.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CHROMIUM = os.environ.get("MAILFLOW_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MAILFLOW_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
HOW_TO_INSTALL = (
    "install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver) "
    "to run the browser tests"
)
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--disable-extensions", "--disable-default-apps",
    "--no-default-browser-check", "--disable-features=Translate,OptimizationHints,MediaRouter",
    "--lang=en-US", "--hide-scrollbars",
)  # fmt: skip
DESKTOP = (1280, 900)
PHONE = (390, 844)


def missing() -> str | None:
    """Why Chromium cannot run here (with how to fix it), or None when it can."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return f"{path} not found: {HOW_TO_INSTALL}"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return f"selenium is not installed (pip install -e '.[dev]'); {HOW_TO_INSTALL}"
    return None


@contextmanager
def chromium(width: int = DESKTOP[0], height: int = DESKTOP[1]) -> Iterator[Any]:
    """A selenium WebDriver on a fresh profile (a new temp dir), quit and removed on exit.

    Console messages ("browser") and network events ("performance") are recorded, for
    ``console_errors`` and ``requests_sent``.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="mailflow-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.add_argument(f"--window-size={width},{height}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        service = Service(CHROMEDRIVER, log_output=os.devnull)
        driver = webdriver.Chrome(options=options, service=service)
        try:
            set_viewport(driver, width, height)
            yield driver
        finally:
            driver.quit()


def set_viewport(driver: Any, width: int, height: int) -> None:
    """The page's viewport, exactly ``width`` CSS pixels wide. Under ``PHONE``'s width it is a
    phone's (mobile: a page's ``<meta name="viewport">`` applies)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width <= PHONE[0],
    })  # fmt: skip


def console_errors(driver: Any) -> list[str]:
    """The console's errors (and failed loads) since the last call: reading empties the log."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def requests_sent(driver: Any) -> list[str]:
    """The URL of every request the page made since the last call (documents, scripts, styles,
    images, fetches, WebSockets), from Chromium's network events: reading empties the log."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
        elif message["method"] == "Network.webSocketCreated":
            urls.append(message["params"]["url"])
    return urls


def same_origin(url: str, origin: str) -> bool:
    """True for a URL of ``origin`` (scheme, host, port), for data the page holds itself, and
    for Chromium's own built-in pages' files (``chrome://``: its new-tab page loads some), which
    never touch the network."""
    if url.startswith(("data:", "blob:", "about:", "chrome:", "chrome-untrusted:")):
        return True
    parts, base = urlsplit(url), urlsplit(origin)
    return (parts.scheme, parts.netloc) == (base.scheme, base.netloc)


def save_page(driver: Any, path: Path, max_height: int = 2000) -> None:
    """A PNG of the whole page (not just the viewport), cut at ``max_height`` CSS pixels."""
    import base64

    width, height = driver.execute_script(
        "const e = document.documentElement;"
        "return [e.clientWidth, Math.max(e.scrollHeight, document.body.scrollHeight)];"
    )
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": min(height, max_height), "scale": 1},
    })  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
