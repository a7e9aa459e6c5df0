"""TLS-RPT reports for tests: the shared samples (when /work/shared is there), our own
fixtures (always), and builders of valid and hostile reports with known numbers."""

from __future__ import annotations

import copy
import gzip
import json
import os
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED

# ../shared next to the checkout; MAILFLOW_TEST_SHARED names it when the checkout is elsewhere.
SAMPLES = Path(os.environ.get("MAILFLOW_TEST_SHARED") or SHARED) / "samples" / "tlsrpt"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "tlsrpt"
TWO_POLICIES = FIXTURES / "two_policies.json"


def shared_samples() -> list[Path]:
    """The shared sample reports (JSON and the report e-mail); the test skips without them."""
    if not SAMPLES.is_dir():
        pytest.skip("the shared samples (../shared/samples/tlsrpt) are not here")
    return sorted(p for p in SAMPLES.iterdir() if p.suffix in (".json", ".eml"))


def body_of(path: Path) -> tuple[bytes, str]:
    """What a reporter would POST for a sample file, and its Content-Type: the JSON itself,
    or an e-mail's gzip attachment as it is."""
    if path.suffix == ".eml":
        from email import message_from_bytes, policy

        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        for part in message.walk():
            if part.get_content_type() == "application/tlsrpt+gzip":
                return part.get_content(), "application/tlsrpt+gzip"
        raise AssertionError(f"no application/tlsrpt+gzip part in {path}")
    return path.read_bytes(), "application/tlsrpt+json"


def json_of(path: Path) -> dict[str, Any]:
    """The report in a sample file."""
    body, kind = body_of(path)
    return json.loads(gzip.decompress(body) if kind.endswith("gzip") else body)


def expected_sessions(report: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Per policy domain, (successful, failed) sessions, summed from the report by hand."""
    out: dict[str, tuple[int, int]] = {}
    for item in report["policies"]:
        domain = item["policy"]["policy-domain"].lower()
        ok, failed = out.get(domain, (0, 0))
        out[domain] = (ok + item["summary"]["total-successful-session-count"],
                       failed + item["summary"]["total-failure-session-count"])  # fmt: skip
    return out


def day_after(report: dict[str, Any]) -> datetime:
    """A moment the day after the report's range starts: a clock at which it is current."""
    start = datetime.fromisoformat(report["date-range"]["start-datetime"].replace("Z", "+00:00"))
    return start.astimezone(UTC).replace(hour=6, minute=0, second=0) + timedelta(days=1)


def report_on(day: datetime, report_id: str = "r1", domains: tuple[str, ...] = ("a.example",),
              ok: int = 10, failed: int = 1, result_type: str = "certificate-expired",
              organization: str = "Sender Inc.") -> dict[str, Any]:  # fmt: skip
    """A valid report for ``day`` with one policy per domain, each with the same numbers."""
    start = day.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "organization-name": organization,
        "date-range": {"start-datetime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                       "end-datetime": (start + timedelta(seconds=86399))
                       .strftime("%Y-%m-%dT%H:%M:%SZ")},
        "contact-info": "tls@sender.example",
        "report-id": report_id,
        "policies": [{
            "policy": {"policy-type": "sts", "policy-domain": domain,
                       "mx-host": [f"mx.{domain}"]},
            "summary": {"total-successful-session-count": ok,
                        "total-failure-session-count": failed},
            "failure-details": [{"result-type": result_type, "receiving-mx-hostname": f"mx.{domain}",
                                 "failed-session-count": failed}] if failed else [],
        } for domain in domains],
    }  # fmt: skip


def two_policies_on(day: datetime) -> dict[str, Any]:
    """The two-policies fixture moved to ``day``."""
    report = json.loads(TWO_POLICIES.read_bytes())
    moved = report_on(day)
    report["date-range"] = moved["date-range"]
    return report


def changed(report: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``report`` with the value at ``path`` (``/policies/0/summary/...``) set;
    ``...`` deletes it."""
    out = copy.deepcopy(report)
    parts = [int(p) if p.isdigit() else p for p in path.strip("/").split("/")]
    target = out
    for part in parts[:-1]:
        target = target[part]
    if value is ...:
        del target[parts[-1]]
    else:
        target[parts[-1]] = value
    return out


def report_email(report: dict[str, Any], domain: str = "a.example") -> bytes:
    """An RFC 8460 §5.3 report e-mail: multipart/report; report-type=tlsrpt, gzip attached."""
    message = EmailMessage()
    message["From"] = "noreply-tls@sender.example"
    message["To"] = "tlsrpt@receiver.example"
    message["Subject"] = f"Report Domain: {domain} Submitter: sender.example"
    message["TLS-Report-Domain"] = domain
    message["TLS-Report-Submitter"] = "sender.example"
    message.set_content("This is an aggregate TLS report from sender.example\n")
    message.add_attachment(gzip.compress(json.dumps(report).encode()), maintype="application",
                           subtype="tlsrpt+gzip", filename="report.json.gz")  # fmt: skip
    message.replace_header("Content-Type", message["Content-Type"].replace(
        "multipart/mixed", "multipart/report") + '; report-type="tlsrpt"')  # fmt: skip
    return bytes(message)
