"""The TLS-RPT reports, built from daily counters (``service.core.tlsrpt.counter_increments``):
per policy domain over a window, and one domain's days and failure details.

Sessions are the reports' summaries (successful + failed); failures by result type are the
reports' failure details. RFC 8460 does not make the two agree (Mail.ru's sample reports one
failed session and two failure details), so both are shown as reported, never reconciled.
Percentages are exact one-decimal shares that sum to 100.0 (``service.core.percent``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from service.core.percent import shares
from service.core.tlsrpt import KIND_DETAIL, KIND_FAILURE, KIND_RESULT, KIND_SUCCESS
from service.core.traces import FIELD_SEP

DayCounters = Mapping[str, Mapping[str, int]]  # day -> counter field -> sessions
CSV_COLUMNS = ("policy_domain", "sessions", "successful_sessions", "failed_sessions",
               "success_percent", "failure_percent", "reporters", "mx_hosts",
               "failures_by_result_type")  # fmt: skip


class _Domain:
    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self.types: dict[str, int] = {}
        self.reporters: dict[str, list[int]] = {}
        self.mx: dict[str, list[int]] = {}
        self.results: dict[str, int] = {}
        self.results_mx: dict[tuple[str, str], int] = {}

    def add_sessions(self, kind: str, policy_type: str, org: str, mx: str, count: int) -> None:
        slot = 0 if kind == KIND_SUCCESS else 1
        if slot == 0:
            self.ok += count
        else:
            self.failed += count
        self.types[policy_type] = self.types.get(policy_type, 0) + count
        self.reporters.setdefault(org, [0, 0])[slot] += count
        self.mx.setdefault(mx, [0, 0])[slot] += count

    def add_result(self, result_type: str, mx: str, count: int) -> None:
        self.results[result_type] = self.results.get(result_type, 0) + count
        self.results_mx[(result_type, mx)] = self.results_mx.get((result_type, mx), 0) + count

    def document(self, domain: str) -> dict[str, Any]:
        ok_percent, failed_percent = shares([self.ok, self.failed])
        result_percents = shares(list(self.results.values()))
        return {
            "policy_domain": domain,
            "sessions": self.ok + self.failed,
            "successful_sessions": self.ok,
            "failed_sessions": self.failed,
            "success_percent": ok_percent,
            "failure_percent": failed_percent,
            "policy_types": dict(sorted(self.types.items())),
            "failures_by_result_type": sorted(
                ({"result_type": t, "failed_sessions": n, "percent": p}
                 for (t, n), p in zip(self.results.items(), result_percents, strict=True)),
                key=lambda r: (-r["failed_sessions"], r["result_type"])),
            "failures_by_receiving_mx": sorted(
                ({"result_type": t, "receiving_mx_hostname": mx or None, "failed_sessions": n}
                 for (t, mx), n in self.results_mx.items()),
                key=lambda r: (-r["failed_sessions"], r["result_type"],
                               r["receiving_mx_hostname"] or "")),
            "reporters": [{"organization": org, "successful_sessions": ok, "failed_sessions": f}
                          for org, (ok, f) in sorted(self.reporters.items())],
            "mx_hosts": [{"mx_host": mx or None, "successful_sessions": ok, "failed_sessions": f}
                         for mx, (ok, f) in sorted(self.mx.items())],
        }  # fmt: skip


def _by_domain(counters: Iterable[Mapping[str, int]]) -> dict[str, _Domain]:
    domains: dict[str, _Domain] = {}
    for fields in counters:
        for field, count in fields.items():
            kind, domain, *rest = field.split(FIELD_SEP)
            if kind in (KIND_SUCCESS, KIND_FAILURE):
                policy_type, org, mx = rest
                domains.setdefault(domain, _Domain()).add_sessions(kind, policy_type, org, mx,
                                                                   count)  # fmt: skip
            elif kind == KIND_RESULT:
                result_type, mx = rest
                domains.setdefault(domain, _Domain()).add_result(result_type, mx, count)
    return domains


def domain_rows(days: DayCounters) -> list[dict[str, Any]]:
    """One row per policy domain over every day given, sorted by domain."""
    domains = _by_domain(days.values())
    return [domains[name].document(name) for name in sorted(domains)]


def domain_detail(domain: str, window_days: Iterable[str], days: DayCounters) -> dict[str, Any]:
    """One domain over the window: its row, a daily series (every day, zeros included) and
    its failure details (result type, receiving MX and IP, sending IP, reason code)."""
    total = _by_domain(_only(domain, fields) for fields in days.values()).get(domain, _Domain())
    series = []
    for day in window_days:
        one = _by_domain([_only(domain, days.get(day, {}))]).get(domain, _Domain())
        ok_percent, _ = shares([one.ok, one.failed])
        series.append({"date": day, "successful_sessions": one.ok,
                       "failed_sessions": one.failed, "success_percent": ok_percent,
                       "failures_by_result_type": dict(sorted(one.results.items()))})  # fmt: skip
    details: dict[tuple[str, ...], int] = {}
    for fields in days.values():
        for field, count in _only(domain, fields).items():
            parts = tuple(field.split(FIELD_SEP))
            if parts[0] == KIND_DETAIL:
                details[parts[2:]] = details.get(parts[2:], 0) + count
    return {
        **total.document(domain),
        "days": series,
        "failure_details": [
            {"result_type": key[0], "receiving_mx_hostname": key[1] or None,
             "receiving_ip": key[2] or None, "sending_mta_ip": key[3] or None,
             "failure_reason_code": key[4] or None, "failed_sessions": count}
            for key, count in sorted(details.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
    }  # fmt: skip


def _only(domain: str, fields: Mapping[str, int]) -> dict[str, int]:
    marker = FIELD_SEP + domain + FIELD_SEP
    return {field: count for field, count in fields.items()
            if field[1 : len(marker) + 1] == marker}  # fmt: skip


def csv_row(row: Mapping[str, Any]) -> list[Any]:
    """A domain row as CSV cells; lists as ``name=count`` joined by ``;``."""
    return [
        row["policy_domain"], row["sessions"], row["successful_sessions"],
        row["failed_sessions"], row["success_percent"], row["failure_percent"],
        ";".join(f"{r['organization']}={r['successful_sessions'] + r['failed_sessions']}"
                 for r in row["reporters"]),
        ";".join(f"{m['mx_host'] or ''}={m['successful_sessions'] + m['failed_sessions']}"
                 for m in row["mx_hosts"]),
        ";".join(f"{r['result_type']}={r['failed_sessions']}"
                 for r in row["failures_by_result_type"]),
    ]  # fmt: skip
