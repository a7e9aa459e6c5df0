"""`mailflow ingest --format tlsrpt`: every report found (``tlsrpt_mail``) posted to
``POST /api/v1/tlsrpt``, one request per report, retried with backoff like trace batches.

Re-reading a mailbox is safe: the API counts a report once per organization and report-id, and
answers ``duplicate`` for the rest. The exit statuses are the trace run's: 1 when the API
refused a report (the summary names the file and the field), 3 when reports were not delivered.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from service.core.tlsrpt import ReportError, parse_report
from service.ingest.client import RETRY_STATUSES, Transport
from service.ingest.client import _json as json_object  # the answer's object, or {}
from service.ingest.errors import SendError
from service.ingest.tlsrpt_mail import Found, find_reports

# The API's default MAILFLOW_TLSRPT_MAX_BYTES: --dry-run checks reports against it.
DRY_RUN_MAX_BYTES = 1024 * 1024
MAX_ERRORS_SHOWN = 10


@dataclass
class TlsRptTally:
    found: int = 0  # reports found (parts of e-mails, files)
    not_reports: int = 0  # e-mails without a report part
    unreadable: int = 0
    counted: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed: int = 0  # not delivered: the API stayed unreachable or busy
    retries: int = 0
    errors: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.errors.append(text)

    def summary(self, seconds: float, sending: bool) -> str:
        lines = [f"mailflow ingest: {self.found:,} TLS-RPT reports found in {seconds:.2f} s"
                 f" ({self.not_reports:,} messages without a report, "
                 f"{self.unreadable:,} unreadable)"]  # fmt: skip
        if sending:
            lines.append(f"  counted: {self.counted:,}  duplicates: {self.duplicates:,}  "
                         f"rejected: {self.rejected:,}  not delivered: {self.failed:,}  "
                         f"(retries {self.retries:,})")  # fmt: skip
        else:
            lines.append(f"  dry run: nothing sent; {self.rejected:,} would be refused")
        lines += [f"    {text}" for text in self.errors[:MAX_ERRORS_SHOWN]]
        if len(self.errors) > MAX_ERRORS_SHOWN:
            lines.append(f"    ... {len(self.errors) - MAX_ERRORS_SHOWN} more")
        return "\n".join(lines)

    @property
    def exit_status(self) -> int:
        if self.failed:
            return 3
        return 1 if self.rejected or self.unreadable else 0


class ReportSender:
    """Posts one report at a time; raises SendError when going on is pointless (a refused
    key, a URL that is not mailflow)."""

    def __init__(self, transport: Transport, key: str, tally: TlsRptTally, *, max_retries: int,
                 sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
        self.transport = transport
        self.key = key
        self.tally = tally
        self.max_retries = max_retries
        self.sleep = sleep

    def send(self, found: Found) -> None:
        headers = {"Content-Type": found.media_type, "Authorization": f"Bearer {self.key}",
                   "Accept": "application/json"}  # fmt: skip
        attempt = 0
        while True:
            try:
                status, answer_headers, data = self.transport.post("/api/v1/tlsrpt", found.body,
                                                                   headers)  # fmt: skip
            except OSError as error:
                status, answer_headers, data = 0, {}, str(error).encode()
            if status == 202:
                outcome = json_object(data).get("outcome")
                if outcome == "duplicate":
                    self.tally.duplicates += 1
                else:
                    self.tally.counted += 1
                return
            if status in (400, 413, 415, 422):
                self.tally.rejected += 1
                self.tally.note(f"{found.source}: HTTP {status}: {_detail(data)}")
                return
            if status in (401, 403, 404, 405):
                raise SendError(f"HTTP {status} from the API: {_detail(data)}")
            if status not in RETRY_STATUSES and status != 0:
                raise SendError(f"unexpected HTTP {status} from the API: {_detail(data)}")
            if attempt >= self.max_retries:
                self.tally.failed += 1
                reason = f"HTTP {status}" if status else data.decode(errors="replace")
                self.tally.note(f"{found.source}: not delivered after {attempt} retries: {reason}")
                return
            attempt += 1
            self.tally.retries += 1
            wait = answer_headers.get("retry-after", "")
            self.sleep(float(wait) if wait.isdigit() else
                       min(30.0, 0.5 * 2 ** min(attempt, 6)) * (0.5 + random.random() / 2))  # fmt: skip


def ingest_reports(paths: tuple[str, ...], sender: ReportSender | None,
                   tally: TlsRptTally) -> None:  # fmt: skip
    """Send (or, without a sender, check) every report found in ``paths``, in order."""
    for found in find_reports(paths):
        if found.not_a_report:
            tally.not_reports += 1
            continue
        if found.problem is not None:
            tally.unreadable += 1
            tally.note(f"{found.source}: {found.problem}")
            continue
        tally.found += 1
        if sender is not None:
            sender.send(found)
            continue
        try:
            parse_report(found.body, DRY_RUN_MAX_BYTES)
        except ReportError as error:
            tally.rejected += 1
            where = f" {error.field}" if error.field else ""
            tally.note(f"{found.source}:{where} {error.message}")


def _detail(data: bytes) -> str:
    problem = json_object(data)
    errors = problem.get("errors") or []
    field_name = errors[0].get("field") if errors and isinstance(errors[0], dict) else None
    detail = str(
        problem.get("detail") or problem.get("title") or data[:200].decode(errors="replace")
    )
    return f"{field_name}: {detail}" if field_name and field_name not in detail else detail
