"""The ingest command against a real running API and Redis: counted once, however often sent."""

from __future__ import annotations

from click.testing import CliRunner

from service.ingest.command import ingest

from .support import dated_fixture, get


def test_ingest_twice_counts_once(live_api, tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = dated_fixture(tmp_path, live_api.clock.now)
    args = [str(log), "--url", live_api.url, "--key", live_api.key,
            "--year", str(live_api.clock.now.year), "--batch-size", "5"]  # fmt: skip
    first = CliRunner().invoke(ingest, args)
    assert first.exit_code == 0, first.output
    assert "sent: 13  accepted: 13  duplicates: 0  rejected: 0  failed: 0" in first.stderr
    second = CliRunner().invoke(ingest, args)
    assert second.exit_code == 0, second.output
    assert "sent: 13  accepted: 0  duplicates: 13  rejected: 0  failed: 0" in second.stderr

    live_api.run_worker()
    snapshot = get(live_api, "/api/v1/mailflow/snapshot?days=1")
    counts = {
        direction: {tls: v["messages"] for tls, v in body["tls"].items() if v["messages"]}
        for direction, body in snapshot["directions"].items()
    }
    # The fixture's designed traffic (see test_ingest_postfix), each message exactly once.
    assert counts == {
        "inbound": {"TLS1.0": 1, "TLS1.1": 1, "TLS1.2": 1, "TLS1.3": 2, "none": 2},
        "outbound": {"TLS1.2": 2, "TLS1.3": 2, "none": 2},
    }


def test_ingest_again_with_another_timezone_counts_once(live_api, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The same BSD-syslog log read as UTC, then as UTC+14: every trace moves to the UTC day
    before, and is still the trace already accepted (its id does not depend on the zone)."""
    log = dated_fixture(tmp_path, live_api.clock.now)
    args = [str(log), "--url", live_api.url, "--key", live_api.key,
            "--year", str(live_api.clock.now.year), "--batch-size", "5"]  # fmt: skip
    first = CliRunner().invoke(ingest, [*args, "--timezone", "UTC"])
    assert "sent: 13  accepted: 13  duplicates: 0  rejected: 0  failed: 0" in first.stderr
    again = CliRunner().invoke(ingest, [*args, "--timezone", "Pacific/Kiritimati"])
    assert "sent: 13  accepted: 0  duplicates: 13  rejected: 0  failed: 0" in again.stderr

    live_api.run_worker()
    snapshot = get(live_api, "/api/v1/mailflow/snapshot?days=2")
    assert sum(body["messages"] for body in snapshot["directions"].values()) == 13
