"""What `mailflow ingest` says before the API does: dates, retention, TLS logging, reasons."""

from __future__ import annotations

from datetime import timedelta

from click.testing import CliRunner

from service.core.traces import IngestWindow
from service.ingest.checks import TlsLoggingCheck, date_report, first_kept_day, utc_day
from service.ingest.command import ingest

from .support import FIXTURES, dated_fixture

LOG = FIXTURES / "postfix_scenarios.log"


def test_utc_day_of_timestamps_with_and_without_offsets() -> None:
    assert utc_day("2026-11-27T10:00:00Z") == "2026-11-27"
    assert utc_day("2026-11-27T00:30:00+01:00") == "2026-11-26"  # CET's first hour
    assert utc_day("2026-11-27T23:30:00-05:00") == "2026-11-28"
    assert utc_day("2026-11-27T10:00:00") is None  # no offset: the API refuses it too
    assert utc_day("yesterday") is None and utc_day(None) is None


def test_date_report_counts_what_retention_refuses(clock) -> None:  # type: ignore[no-untyped-def]
    today = clock.now.date()
    first_kept = today - timedelta(days=89)
    days = {(first_kept - timedelta(days=1)).isoformat(): 3, first_kept.isoformat(): 5,
            today.isoformat(): 7, (today + timedelta(days=1)).isoformat(): 2}  # fmt: skip
    report = date_report(days, 1, clock.now, 90)
    assert (report.too_old, report.too_new, report.undated) == (3, 2, 1)
    assert report.first == (first_kept - timedelta(days=1)).isoformat()
    assert report.earliest_kept == first_kept.isoformat()
    text = "\n".join(report.lines())
    assert "outside retention (90 days" in text and ": 5 traces (3 older, 2 after today)" in text
    inside = date_report({today.isoformat(): 4}, 0, clock.now, 90).lines()
    assert "all within retention" in inside[1]


def test_the_first_kept_day_is_the_servers_rule(clock) -> None:  # type: ignore[no-untyped-def]
    # Restated in checks so that a run does not load the server's trace contract: same days.
    for hours in range(0, 24 * 3, 5):
        now = clock.now + timedelta(hours=hours, minutes=hours)
        for retention in (1, 2, 30, 90, 366, 3650):
            assert first_kept_day(now, retention) == IngestWindow.at(now, retention).earliest.date()


def test_dry_run_prints_the_date_range_and_the_traces_outside_retention() -> None:
    # The fixture's March 3rd of 2025 is long out of any 90-day retention by now.
    result = CliRunner().invoke(ingest, [str(LOG), "--dry-run", "--year", "2025"])
    assert result.exit_code == 0, result.output
    assert "dates (UTC): 2025-03-03 .. 2025-03-03" in result.stderr
    assert (
        "outside retention (90 days" in result.stderr and ": 13 traces (13 older" in result.stderr
    )
    longer = CliRunner().invoke(ingest, [str(LOG), "--dry-run", "--year", "2025",
                                         "--retention-days", "3650"])  # fmt: skip
    assert "all within retention (3650 days" in longer.stderr


def test_a_postfix_log_without_tls_lines_gets_a_warning_naming_the_settings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stripped = tmp_path / "mail.log"
    stripped.write_text("".join(line for line in LOG.read_text().splitlines(True)
                                if "TLS connection established" not in line))  # fmt: skip
    warned = CliRunner().invoke(ingest, [str(stripped), "--dry-run", "--year", "2025"])
    assert "5 SMTP sessions said starttls=1" in warned.stderr
    assert "smtpd_tls_loglevel" in warned.stderr and "smtp_tls_loglevel" in warned.stderr
    fine = CliRunner().invoke(ingest, [str(LOG), "--dry-run", "--year", "2025"])
    assert "warning" not in fine.stderr


def test_tls_check_in_follow_mode_warns_once_when_the_evidence_is_there() -> None:
    check = TlsLoggingCheck()
    line = "Mar  3 10:00:05 mx1 postfix/smtpd[200]: disconnect from a[192.0.2.1] ehlo=1 starttls=1 quit=1\n"
    check.observe([line] * 19)
    assert check.warning_once() is None  # too few sessions to be sure yet
    check.observe([line])
    assert "smtpd_tls_loglevel" in (check.warning_once() or "")
    assert check.warning_once() is None  # once


def test_refused_traces_are_named_by_their_own_reason_once_each(live_api, tmp_path) -> None:  # type: ignore[no-untyped-def]
    old_day = live_api.clock.now - timedelta(days=200)
    log = dated_fixture(tmp_path, old_day)
    result = CliRunner().invoke(ingest, [str(log), "--key", live_api.key, "--url", live_api.url,
                                         "--year", str(old_day.year)])  # fmt: skip
    assert result.exit_code == 1
    assert "batch of" not in result.stderr and "refused:" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error at trace" in line]
    assert len(errors) == 1, result.stderr
    assert "timestamp: before the retention window" in errors[0]
    assert "(and 12 more traces like it)" in errors[0]
