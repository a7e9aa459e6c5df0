"""The ``browser`` fixture: a headless Debian Chromium (see bench/chromium.py), or a skip that
says how to get one. Serve the app to it with ``live_api`` (tests/conftest.py).

``MAILFLOW_TEST_REQUIRE_CHROMIUM=1`` (set by .ci/run) turns the skip into a failure: CI
installs Chromium, so a browser test that does not run there is a fault, not a detail."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from bench import chromium


@pytest.fixture
def browser() -> Iterator[Any]:
    """A selenium WebDriver on a fresh profile, 1280 x 900; quit after the test."""
    reason = chromium.missing()
    if reason is not None:
        if os.environ.get("MAILFLOW_TEST_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"MAILFLOW_TEST_REQUIRE_CHROMIUM=1 but {reason}")
        pytest.skip(reason)
    with chromium.chromium() as driver:
        yield driver
