"""Nothing read is lost without saying so: outages, refused connections and the exit status.

The outages are real: `OutageGate` is an HTTP server in front of the live API that refuses
connections or answers 503 until the sender has slept long enough on the gate's test clock.
"""

from __future__ import annotations

import json
import math
import urllib.request
from datetime import UTC, timedelta

import pytest
from click.testing import CliRunner

from service.ingest.command import ingest, make_sender
from service.ingest.pipeline import CountingSink, FollowLoop, make_parser
from service.ingest.readers import Follower

from .outage import OutageGate
from .support import FIXTURES, dated_fixture

LOG = str(FIXTURES / "postfix_scenarios.log")


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(ingest, list(args))


def snapshot_total(live_api) -> int:  # type: ignore[no-untyped-def]
    live_api.run_worker()
    request = urllib.request.Request(
        live_api.url + "/api/v1/mailflow/snapshot?days=1",
        headers={"Authorization": f"Bearer {live_api.key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        snapshot = json.loads(response.read())
    return sum(body["messages"] for body in snapshot["directions"].values())


@pytest.mark.parametrize("refuse", [True, False], ids=["connection-refused", "http-503"])
def test_follow_keeps_every_trace_through_a_four_minute_outage(live_api, tmp_path, refuse) -> None:  # type: ignore[no-untyped-def]
    log = dated_fixture(tmp_path, live_api.clock.now)
    with OutageGate(live_api.url, up_at=240.0, refuse=refuse) as gate:
        # --max-retries 8 gives up after ~2 minutes of backoff; --follow must not.
        sender = make_sender(
            gate.url, live_api.key, batch_size=5, max_retries=8, follow=True,
            warn=gate.warn, sleep=gate.sleep,
        )  # fmt: skip
        parser = make_parser("postfix", UTC, live_api.clock.now.year)
        loop = FollowLoop([Follower(str(log))], parser, CountingSink(sender))
        loop.step()
        loop.finish()
        sender.close()
        assert gate.now >= 240.0  # the whole outage was waited out
        assert gate.forwarded == 3  # batches of 5, 5 and 3, each delivered once it was up
    assert (sender.stats.failed, sender.stats.accepted) == (0, 13)
    assert max(s for kind, s in gate.events if kind == "sleep") <= 60.0  # capped backoff
    # The first failure is reported at once, naming the URL, before any waiting.
    kind, text = gate.events[0 if refuse else 1]
    assert kind == "warn" and gate.url in str(text)
    assert "refused" in str(text) if refuse else "503" in str(text)
    warnings = [str(text) for kind, text in gate.events if kind == "warn"]
    assert len(warnings) == 2 and "again" in warnings[1]  # one line down, one line back up
    assert snapshot_total(live_api) == 13


def test_one_shot_says_what_was_not_delivered_and_exits_3(live_api) -> None:  # type: ignore[no-untyped-def]
    with OutageGate(live_api.url, up_at=math.inf, refuse=False) as gate:
        result = run(LOG, "--key", live_api.key, "--url", gate.url, "--year", "2025",
                     "--max-retries", "0")  # fmt: skip
        assert gate.answered_503 == 1  # the 13 traces fit one batch, tried once
    assert result.exit_code == 3, result.stderr
    assert "not delivered: 13" in result.stderr


def test_refused_connection_is_reported_at_once_naming_the_url() -> None:
    url = "http://127.0.0.1:9"  # nothing listens on the discard port
    result = run(LOG, "--key", "k", "--url", url, "--year", "2025", "--max-retries", "0")
    assert result.exit_code == 3
    first = result.stderr.splitlines()[0]
    assert url in first and "refused" in first
    assert "not delivered: 13" in result.stderr


def test_every_trace_rejected_exits_1(live_api, tmp_path) -> None:  # type: ignore[no-untyped-def]
    old_day = live_api.clock.now - timedelta(days=200)  # outside the 90-day retention
    log = dated_fixture(tmp_path, old_day)
    result = run(str(log), "--key", live_api.key, "--url", live_api.url,
                 "--year", str(old_day.year), "--batch-size", "5")  # fmt: skip
    assert "accepted: 0  duplicates: 0  rejected: 13  failed: 0" in result.stderr
    assert "error at trace 0 timestamp: before the retention window" in result.stderr
    assert result.exit_code == 1, result.stderr


def test_some_traces_rejected_exits_1(live_api, tmp_path) -> None:  # type: ignore[no-untyped-def]
    now = live_api.clock.now
    # Today's traces, then the same a day ahead (refused: in the future). Syslog has no year:
    # the day ahead rolls the year over by itself only when it is the 1st of January.
    today = dated_fixture(tmp_path, now).read_text()
    log = tmp_path / "two-days.log"
    log.write_text(today + dated_fixture(tmp_path, now + timedelta(days=1)).read_text())
    result = run(str(log), "--key", live_api.key, "--url", live_api.url,
                 "--year", str(now.year))  # fmt: skip
    assert "accepted: 13  duplicates: 0  rejected: 13  failed: 0" in result.stderr
    assert result.exit_code == 1, result.stderr
