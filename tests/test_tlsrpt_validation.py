"""The TLS-RPT contract (service.core.tlsrpt): every RFC 8460 field checked and named, the
samples read as they are, the bounds, and the counters a report adds per policy."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import pytest

from service.core import tlsrpt
from service.core.tlsrpt import ReportError, counter_increments, parse_report
from tests.tlsrpt_reports import (
    TWO_POLICIES,
    changed,
    expected_sessions,
    json_of,
    report_on,
    shared_samples,
)

MAX = 1 << 20
DAY = datetime(2026, 11, 20, tzinfo=UTC)


def _refusal(document: object, status: int = 422, max_bytes: int = MAX) -> ReportError:
    with pytest.raises(ReportError) as caught:
        parse_report(json.dumps(document).encode(), max_bytes)
    assert caught.value.status == status, caught.value.message
    return caught.value


def _sessions(report: tlsrpt.TlsReport) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for field, count in counter_increments(report).items():
        kind, domain, *_ = field.split("\x1f")
        ok, failed = out.get(domain, (0, 0))
        if kind == "s":
            out[domain] = (ok + count, failed)
        elif kind == "f":
            out[domain] = (ok, failed + count)
    return out


def test_every_shared_sample_reads_with_its_own_numbers() -> None:
    for path in shared_samples():
        document = json_of(path)
        report = parse_report(json.dumps(document).encode(), MAX)
        assert _sessions(report) == expected_sessions(document), path.name


def test_two_policies_count_each_domain_apart() -> None:
    report = parse_report(TWO_POLICIES.read_bytes(), MAX)
    assert _sessions(report) == {"alpha.example": (900, 12), "beta.example": (40, 5)}
    results = {f: c for f, c in counter_increments(report).items() if f.startswith("r\x1f")}
    assert results == {
        "r\x1falpha.example\x1fcertificate-expired\x1fmx.alpha.example": 10,
        "r\x1falpha.example\x1fx-future-result\x1fmx.alpha.example": 2,  # kept as itself
        "r\x1fbeta.example\x1ftlsa-invalid\x1fmx.beta.example": 5,
    }


def test_gzip_is_read_by_its_magic_and_bounded() -> None:
    raw = TWO_POLICIES.read_bytes()
    assert parse_report(gzip.compress(raw), MAX).report_id == "two-policies-2026-11-20"
    bomb = gzip.compress(b" " * (8 * MAX))
    with pytest.raises(ReportError) as caught:
        parse_report(bomb, MAX)
    assert caught.value.status == 413
    with pytest.raises(ReportError) as caught:
        parse_report(gzip.compress(raw)[:-12], MAX)
    assert caught.value.status == 400
    with pytest.raises(ReportError) as caught:
        parse_report(gzip.compress(raw) + gzip.compress(raw), MAX)
    assert caught.value.status == 400 and "bytes follow" in caught.value.message


def test_identity_is_organization_and_report_id() -> None:
    one = parse_report(json.dumps(report_on(DAY, "x")).encode(), MAX)
    again = parse_report(json.dumps(report_on(DAY, "x", ok=99)).encode(), MAX)
    other = parse_report(json.dumps(report_on(DAY, "x", organization="Other")).encode(), MAX)
    assert one.identity == again.identity != other.identity
    assert one.day.isoformat() == "2026-11-20"


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("/report-id", ..., "/report-id"),
        ("/report-id", 7, "/report-id"),
        ("/organization-name", "", "/organization-name"),
        ("/contact-info", ["x"], "/contact-info"),
        ("/date-range", ..., "/date-range"),
        ("/date-range/start-datetime", "yesterday", "/date-range/start-datetime"),
        ("/date-range/end-datetime", "2026-11-19T00:00:00Z", "/date-range/end-datetime"),
        ("/date-range/start-datetime", "2026-02-30T00:00:00Z", "/date-range/start-datetime"),
        ("/policies", {}, "/policies"),
        ("/policies", [], "/policies"),
        ("/policies/0/policy/policy-type", "dane", "/policies/0/policy/policy-type"),
        ("/policies/0/policy/policy-domain", "not a domain", "/policies/0/policy/policy-domain"),
        ("/policies/0/policy/policy-domain", ..., "/policies/0/policy/policy-domain"),
        ("/policies/0/policy/policy-string", "mode: enforce", "/policies/0/policy/policy-string"),
        ("/policies/0/policy/policy-string", [1], "/policies/0/policy/policy-string/0"),
        ("/policies/0/policy/mx-host", [3], "/policies/0/policy/mx-host/0"),
        ("/policies/0/summary", ..., "/policies/0/summary"),
        ("/policies/0/summary/total-successful-session-count", -1,
         "/policies/0/summary/total-successful-session-count"),
        ("/policies/0/summary/total-failure-session-count", 10**13,
         "/policies/0/summary/total-failure-session-count"),
        ("/policies/0/summary/total-failure-session-count", "5",
         "/policies/0/summary/total-failure-session-count"),
        ("/policies/0/summary/total-failure-session-count", 1.5,
         "/policies/0/summary/total-failure-session-count"),
        ("/policies/0/summary/total-failure-session-count", True,
         "/policies/0/summary/total-failure-session-count"),
        ("/policies/0/failure-details", {}, "/policies/0/failure-details"),
        ("/policies/0/failure-details/0/result-type", ..., "/policies/0/failure-details/0/result-type"),
        ("/policies/0/failure-details/0/result-type", "Bad Type",
         "/policies/0/failure-details/0/result-type"),
        ("/policies/0/failure-details/0/sending-mta-ip", "300.1.1.1",
         "/policies/0/failure-details/0/sending-mta-ip"),
        ("/policies/0/failure-details/0/receiving-ip", 5, "/policies/0/failure-details/0/receiving-ip"),
        ("/policies/0/failure-details/0/receiving-mx-hostname", "mx..example",
         "/policies/0/failure-details/0/receiving-mx-hostname"),
        ("/policies/0/failure-details/0/receiving-mx-helo", {},
         "/policies/0/failure-details/0/receiving-mx-helo"),
        ("/policies/0/failure-details/0/failed-session-count", -3,
         "/policies/0/failure-details/0/failed-session-count"),
        ("/policies/0/failure-details/0/additional-information", "x" * 2000,
         "/policies/0/failure-details/0/additional-information"),
        ("/policies/0/failure-details/0/failure-reason-code", "a\x1fb",
         "/policies/0/failure-details/0/failure-reason-code"),
    ],
)  # fmt: skip
def test_a_bad_field_is_named(path: str, value: object, field: str) -> None:
    assert _refusal(changed(report_on(DAY), path, value)).field == field


def test_hostile_shapes_are_refused_not_followed() -> None:
    deep: object = 1
    for _ in range(200):
        deep = [deep]
    assert "deeper" in _refusal(changed(report_on(DAY), "/extension", deep)).message
    many = report_on(DAY, domains=tuple(f"d{n}.example" for n in range(10_000)), failed=0)
    assert _refusal(many, max_bytes=8 * MAX).field == "/policies"
    assert _refusal(many, status=413).field == ""  # at the default size limit, before parsing
    details = report_on(DAY, domains=("a.example", "b.example"))
    details["policies"][0]["failure-details"] *= tlsrpt.MAX_FAILURE_DETAILS
    details["policies"][1]["failure-details"] *= 1
    assert _refusal(details, max_bytes=8 * MAX).field == "/policies/1/failure-details"
    assert _refusal([report_on(DAY)]).field == "/"
    with pytest.raises(ReportError) as caught:
        parse_report(b"{" * 100_000, MAX)
    assert caught.value.status == 400
    with pytest.raises(ReportError) as caught:
        parse_report(b" " * (MAX + 1), MAX)
    assert caught.value.status == 413


def test_rfc_example_single_mx_string_and_registry() -> None:
    report = parse_report(json.dumps(changed(report_on(DAY), "/policies/0/policy/mx-host",
                                             "*.mail.a.example")).encode(), MAX)  # fmt: skip
    assert report.policies[0].mx_hosts == ("*.mail.a.example",)
    assert "sts-policy-fetch-error" in tlsrpt.RESULT_TYPES
    assert len(tlsrpt.RESULT_TYPES) == 11
