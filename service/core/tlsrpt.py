"""TLS-RPT (RFC 8460) aggregate reports: reading, checking every field, and the counters a
report adds. No Flask, no Redis: the API, the mail reader and the tests share this contract.

A report is refused as a whole (never half counted) when a field breaks the schema; the error
names the field by a JSON-pointer-like path (``/policies/0/summary/total-failure-session-count``).
What is bounded, and why (docs/tls-rpt.md repeats it for operators):

- the inflated JSON: ``max_bytes`` (MAILFLOW_TLSRPT_MAX_BYTES), gzip inflated only that far;
- nesting: ``MAX_DEPTH`` levels (a valid report has six), checked before any field is read;
- ``MAX_POLICIES`` policies and ``MAX_FAILURE_DETAILS`` failure details in all: a report with
  more is refused (422), not truncated, so nothing is counted in part;
- every session count: an integer from 0 to ``MAX_SESSIONS``.

Result types are the IANA "STARTTLS Validation Result Types" registry's; one not in it is kept
as itself (a reporter may be ahead of us), provided it is a short lower-case token.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from service.core.text import TextError, checked_text
from service.core.traces import FIELD_SEP

POLICY_TYPES = ("tlsa", "sts", "no-policy-found")
# The one scope of an intake token (service.store.tlsrpt_tokens): posting reports, nothing else.
INTAKE_SCOPE = "tlsrpt-intake"
INTAKE_PATH = "/api/v1/tlsrpt/intake/"
MEDIA_TYPES = ("application/tlsrpt+gzip", "application/tlsrpt+json", "application/json")
# https://www.iana.org/assignments/starttls-validation-result-types (RFC 8460 §4.3, §6.6).
RESULT_TYPES = (
    "starttls-not-supported",
    "certificate-host-mismatch",
    "certificate-expired",
    "tlsa-invalid",
    "dnssec-invalid",
    "dane-required",
    "certificate-not-trusted",
    "sts-policy-invalid",
    "sts-webpki-invalid",
    "validation-failure",
    "sts-policy-fetch-error",
)
MAX_POLICIES = 1000  # Google and Microsoft send one to a few per report
# In the whole report. With MAX_POLICIES it bounds a report's counter fields (4,000) and so
# the one Redis call that counts it (a few milliseconds; docs/tls-rpt.md).
MAX_FAILURE_DETAILS = 1000
MAX_POLICY_STRINGS = 100  # lines of an MTA-STS policy or TLSA records
MAX_MX_HOSTS = 100
MAX_SESSIONS = 10**12  # per count; sums of years of reports still fit Redis's 64 bits
MAX_DEPTH = 16
MAX_NAME = 256  # organization-name, report-id, contact-info, receiving-mx-helo
MAX_TEXT = 1024  # policy-string lines, additional-information, failure-reason-code
MAX_DOMAIN = 253
_RESULT_TYPE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# Domain labels; MX patterns of an MTA-STS policy may start with "*." (RFC 8461 §3.2).
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^(?:\*\.)?(?:{_LABEL}\.)*{_LABEL}\.?$")
_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$"
)
_GZIP_MAGIC = b"\x1f\x8b"

KIND_SUCCESS = "s"  # domain, policy type, organization, MX host -> successful sessions
KIND_FAILURE = "f"  # same fields -> failed sessions (the summary's)
KIND_RESULT = "r"  # domain, result type, receiving MX -> failed sessions (the details')
KIND_DETAIL = "d"  # domain, result type, receiving MX, receiving IP, sending IP, reason code


class ReportError(ValueError):
    """Why a report is refused: ``status`` 400 (unreadable), 413 (too large) or 422 (a field
    breaks the schema; ``field`` is its path)."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message


@dataclass(frozen=True)
class FailureDetail:
    result_type: str
    failed_sessions: int
    sending_mta_ip: str = ""
    receiving_mx_hostname: str = ""
    receiving_mx_helo: str = ""
    receiving_ip: str = ""
    additional_information: str = ""
    failure_reason_code: str = ""


@dataclass(frozen=True)
class PolicyResult:
    policy_type: str
    policy_domain: str
    policy_strings: tuple[str, ...]
    mx_hosts: tuple[str, ...]
    successful_sessions: int
    failed_sessions: int
    failures: tuple[FailureDetail, ...]

    @property
    def mx_label(self) -> str:
        """The policy's MX hosts as one label: a policy's sessions are not split among its
        MX patterns (the report does not say how), so the set of them is one row."""
        return ",".join(self.mx_hosts)


@dataclass(frozen=True)
class TlsReport:
    organization: str
    report_id: str
    contact_info: str
    start: datetime
    end: datetime
    policies: tuple[PolicyResult, ...]

    @property
    def day(self) -> date:
        """The UTC day every session of the report is counted on: its range's start."""
        return self.start.astimezone(UTC).date()

    @property
    def identity(self) -> str:
        """What makes two postings one report: the organization and its report-id."""
        both = f"{self.organization}{FIELD_SEP}{self.report_id}".encode()
        return hashlib.sha256(both).hexdigest()[:32]

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(sorted({policy.policy_domain for policy in self.policies}))


def inflate_report(raw: bytes, max_bytes: int) -> bytes:
    """The report's JSON bytes: ``raw`` itself, or inflated when it is gzip (by its magic
    bytes, whatever it was labelled), never more than ``max_bytes`` (413)."""
    if len(raw) > max_bytes and not raw.startswith(_GZIP_MAGIC):
        raise ReportError(413, "", f"the report exceeds the limit of {max_bytes} bytes")
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(raw, max_bytes + 1)
    except zlib.error as error:
        raise ReportError(400, "", f"the gzip report does not inflate: {error}") from None
    if len(out) > max_bytes:
        raise ReportError(413, "", f"the inflated report exceeds the limit of {max_bytes} bytes")
    if not inflater.eof:
        raise ReportError(400, "", "the gzip report is truncated")
    if inflater.unused_data:  # a second member or trailing bytes: refused, never ignored
        raise ReportError(400, "", "bytes follow the gzip report; send one report per request")
    return out


def parse_report(raw: bytes, max_bytes: int) -> TlsReport:
    """Read and check one report (JSON, or gzip of it); ReportError says what is wrong."""
    return parse_json_report(inflate_report(raw, max_bytes))


def parse_json_report(document: bytes) -> TlsReport:
    """Read and check a report's JSON (already inflated, within the size limit)."""
    try:
        parsed = orjson.loads(document)
    except orjson.JSONDecodeError as error:
        raise ReportError(400, "", f"the report is not valid JSON: {error}") from None
    _check_depth(parsed)
    return check_report(parsed)


def _check_depth(document: Any) -> None:
    """Iteratively, so a hostile nesting costs a loop, not the stack."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ReportError(422, "", f"the report nests deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            stack.extend((child, depth + 1) for child in value.values())
        elif isinstance(value, list):
            stack.extend((child, depth + 1) for child in value)


def check_report(document: Any) -> TlsReport:
    """The report of a parsed JSON document, every RFC 8460 §4.4 field checked."""
    report = _object(document, "")
    start = _datetime(report, "/date-range", "start-datetime")
    end = _datetime(report, "/date-range", "end-datetime")
    if end < start:
        raise ReportError(422, "/date-range/end-datetime", "is before start-datetime")
    policies = _array(report.get("policies"), "/policies", MAX_POLICIES, required=True)
    if not policies:
        raise ReportError(422, "/policies", "must name at least one policy")
    details_seen = 0
    results = []
    for index, item in enumerate(policies):
        result = _policy(item, f"/policies/{index}", MAX_FAILURE_DETAILS - details_seen)
        details_seen += len(result.failures)
        results.append(result)
    return TlsReport(
        organization=_text(report, "", "organization-name", MAX_NAME, required=True),
        report_id=_text(report, "", "report-id", MAX_NAME, required=True),
        contact_info=_text(report, "", "contact-info", MAX_NAME),
        start=start,
        end=end,
        policies=tuple(results),
    )


def _policy(value: Any, path: str, details_left: int) -> PolicyResult:
    item = _object(value, path)
    policy = _object(item.get("policy"), f"{path}/policy")
    where = f"{path}/policy"
    policy_type = _text(policy, where, "policy-type", 32, required=True)
    if policy_type not in POLICY_TYPES:
        raise ReportError(422, f"{where}/policy-type", f"must be one of {', '.join(POLICY_TYPES)}")
    strings = _array(policy.get("policy-string"), f"{where}/policy-string", MAX_POLICY_STRINGS)
    mx_hosts = policy.get("mx-host")
    if isinstance(mx_hosts, str):  # RFC 8460's own example sends one MX as a string
        mx_hosts = [mx_hosts]
    mx_list = _array(mx_hosts, f"{where}/mx-host", MAX_MX_HOSTS)
    summary = _object(item.get("summary"), f"{path}/summary")
    details = _array(item.get("failure-details"), f"{path}/failure-details", None)
    if len(details) > details_left:
        raise ReportError(422, f"{path}/failure-details", "the report has more than "
                          f"{MAX_FAILURE_DETAILS} failure details in all")  # fmt: skip
    return PolicyResult(
        policy_type=policy_type,
        policy_domain=_domain(policy, where, "policy-domain", required=True),
        policy_strings=tuple(_line(s, f"{where}/policy-string/{n}") for n, s in enumerate(strings)),
        mx_hosts=tuple(
            sorted({domain_value(m, f"{where}/mx-host/{n}") for n, m in enumerate(mx_list)})
        ),  # fmt: skip
        successful_sessions=_count(summary, f"{path}/summary", "total-successful-session-count"),
        failed_sessions=_count(summary, f"{path}/summary", "total-failure-session-count"),
        failures=tuple(_failure(d, f"{path}/failure-details/{n}") for n, d in enumerate(details)),
    )


def _failure(value: Any, path: str) -> FailureDetail:
    detail = _object(value, path)
    result_type = _text(detail, path, "result-type", 64, required=True)
    if not _RESULT_TYPE.match(result_type):
        raise ReportError(422, f"{path}/result-type", "must be a lower-case token such as "
                          "certificate-expired (letters, digits, hyphens)")  # fmt: skip
    return FailureDetail(
        result_type=result_type,
        failed_sessions=_count(detail, path, "failed-session-count"),
        sending_mta_ip=_ip(detail, path, "sending-mta-ip"),
        receiving_mx_hostname=_domain(detail, path, "receiving-mx-hostname"),
        receiving_mx_helo=_text(detail, path, "receiving-mx-helo", MAX_NAME),
        receiving_ip=_ip(detail, path, "receiving-ip"),
        additional_information=_text(detail, path, "additional-information", MAX_TEXT),
        failure_reason_code=_text(detail, path, "failure-reason-code", MAX_TEXT),
    )


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        raise ReportError(422, path, "is required")
    if not isinstance(value, dict):
        raise ReportError(422, path or "/", "must be a JSON object")
    return value


def _array(value: Any, path: str, limit: int | None, required: bool = False) -> list[Any]:
    if value is None:
        if required:
            raise ReportError(422, path, "is required")
        return []
    if not isinstance(value, list):
        raise ReportError(422, path, "must be a JSON array")
    if limit is not None and len(value) > limit:
        raise ReportError(422, path, f"has {len(value)} entries; at most {limit} are accepted")
    return value


def _text(parent: Mapping[str, Any], path: str, name: str, limit: int,
          required: bool = False) -> str:  # fmt: skip
    value = parent.get(name)
    if value is None:
        if required:
            raise ReportError(422, f"{path}/{name}", "is required")
        return ""
    return _checked(value, f"{path}/{name}", limit, required)


def _checked(value: Any, path: str, limit: int, required: bool = True) -> str:
    if not isinstance(value, str):
        raise ReportError(422, path, "must be a string")
    if required and not value.strip():
        raise ReportError(422, path, "must not be empty")
    if len(value) > limit:
        raise ReportError(422, path, f"is longer than {limit} characters")
    try:
        return checked_text(value)
    except TextError as error:
        raise ReportError(422, path, str(error)) from None


def _line(value: Any, path: str) -> str:
    return _checked(value, path, MAX_TEXT, required=False)


def _domain(parent: Mapping[str, Any], path: str, name: str, required: bool = False) -> str:
    value = parent.get(name)
    if value is None:
        if required:
            raise ReportError(422, f"{path}/{name}", "is required")
        return ""
    return domain_value(value, f"{path}/{name}")


def domain_value(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ReportError(422, path, "must be a string")
    lowered = value.strip().lower()
    if len(lowered) > MAX_DOMAIN + 1 or not lowered.isascii() or not _DOMAIN.match(lowered):
        raise ReportError(422, path, "is not a valid domain name (use the ASCII xn-- form)")
    return lowered.rstrip(".")


def _ip(parent: Mapping[str, Any], path: str, name: str) -> str:
    value = parent.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ReportError(422, f"{path}/{name}", "must be a string")
    try:
        return str(ipaddress.ip_address(value.strip().strip("[]")))
    except ValueError:
        raise ReportError(422, f"{path}/{name}", "is not an IPv4 or IPv6 address") from None


def _count(parent: Mapping[str, Any], path: str, name: str) -> int:
    value = parent.get(name)
    where = f"{path}/{name}"
    if value is None:
        raise ReportError(422, where, "is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReportError(422, where, "must be an integer")
    if value < 0:
        raise ReportError(422, where, "must not be negative")
    if value > MAX_SESSIONS:
        raise ReportError(422, where, f"is more than {MAX_SESSIONS} sessions")
    return value


def _datetime(report: Mapping[str, Any], path: str, name: str) -> datetime:
    where = f"{path}/{name}"
    date_range = _object(report.get("date-range"), path)
    value = date_range.get(name)
    if value is None:
        raise ReportError(422, where, "is required")
    if not isinstance(value, str) or not _DATETIME.match(value):
        raise ReportError(422, where, "must be an RFC 3339 date-time with an offset")
    try:
        return datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(422, where, "is not a real date and time") from None


def check_day(report: TlsReport, now: datetime, retention_days: int) -> None:
    """Refuse a report whose day is outside the retention window (its counters would already
    be gone) or more than a day ahead of ``now`` (a reporter's clock, or a typo)."""
    today = now.astimezone(UTC).date()
    where = "/date-range/start-datetime"
    if report.day < today - timedelta(days=retention_days - 1):
        raise ReportError(422, where, f"starts on {report.day}, before the {retention_days} "
                          "days kept (MAILFLOW_RETENTION_DAYS)")  # fmt: skip
    if report.day > today + timedelta(days=1):
        raise ReportError(422, where, f"starts on {report.day}, in the future")


def counter_increments(report: TlsReport) -> dict[str, int]:
    """The daily counter fields the report adds to, per policy (never summed across
    policies: each policy's sessions count for its own domain only)."""
    out: dict[str, int] = {}

    def add(field: str, amount: int) -> None:
        out[field] = out.get(field, 0) + amount

    for policy in report.policies:
        dims = (policy.policy_domain, policy.policy_type, report.organization, policy.mx_label)
        add(FIELD_SEP.join((KIND_SUCCESS, *dims)), policy.successful_sessions)
        add(FIELD_SEP.join((KIND_FAILURE, *dims)), policy.failed_sessions)
        for failure in policy.failures:
            mx = failure.receiving_mx_hostname
            add(FIELD_SEP.join((KIND_RESULT, policy.policy_domain, failure.result_type, mx)),
                failure.failed_sessions)  # fmt: skip
            add(FIELD_SEP.join((KIND_DETAIL, policy.policy_domain, failure.result_type, mx,
                                failure.receiving_ip, failure.sending_mta_ip,
                                failure.failure_reason_code)), failure.failed_sessions)  # fmt: skip
    return out
