"""Helpers shared by the ingest tests."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from service.ingest.traces import Trace

FIXTURES = Path(__file__).parent / "fixtures"
# The real sample logs live next to the repository (not in it); a fresh clone has none.
# MAILFLOW_TEST_SHARED points elsewhere (a checkout that is not next to them, e.g. a worktree).
SHARED = Path(
    os.environ.get("MAILFLOW_TEST_SHARED") or Path(__file__).resolve().parents[2].parent / "shared"
)


def feed_all(parser: Any, lines: Iterable[str]) -> list[Trace]:
    out: list[Trace] = []
    for line in lines:
        parser.feed(line)
        out.extend(parser.take())
    out.extend(parser.flush())
    return out


def dated_fixture(tmp_path: Path, day: datetime) -> Path:
    """The Postfix scenario log moved to `day` (the API refuses traces outside retention)."""
    text = (FIXTURES / "postfix_scenarios.log").read_text()
    path = tmp_path / "mail.log"
    path.write_text(text.replace("Mar  3 ", day.strftime("%b %e ")))
    return path


def get(live_api: Any, path: str) -> Any:
    """GET `path` from the live API (tests.conftest.LiveApi) with its key, as JSON."""
    return json.loads(get_text(live_api, path))


def get_text(live_api: Any, path: str) -> str:
    request = urllib.request.Request(
        live_api.url + path, headers={"Authorization": f"Bearer {live_api.key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.read().decode())
