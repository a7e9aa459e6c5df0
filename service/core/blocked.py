"""Messages blocked by a TLS policy: their counters summed per connector, per recipient
domain, per day (the fold keeps them per day, direction, connector, policy, domain, reason)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from service.core.traces import split_blocked_field

BlockedDays = Mapping[str, Mapping[str, int]]  # day -> blocked field -> messages


def blocked_by_connector(
    days: Iterable[Mapping[str, int]],
) -> dict[tuple[str, str | None], dict[str, int]]:
    """(direction, connector) -> connector type named ("" for none) -> blocked messages, over
    the given days' counters."""
    totals: dict[tuple[str, str | None], dict[str, int]] = {}
    for counts in days:
        for field, count in counts.items():
            direction, connector, ctype, *_ = split_blocked_field(field)
            by_type = totals.setdefault((direction, connector), {})
            by_type[ctype or ""] = by_type.get(ctype or "", 0) + count
    return totals


MAX_BLOCKED_RECORDS = 10_000  # a day keeps at most MAILFLOW_BLOCKED_FIELDS_PER_DAY of them


def blocked_records(
    blocked: BlockedDays, days: Iterable[str], directions: tuple[str, ...], limit: int
) -> tuple[list[dict[str, Any]], int]:
    """The blocked counters of ``days`` as records, each day's with most messages first, at
    most ``limit`` of them; and how many there are in all."""
    records: list[dict[str, Any]] = []
    total = 0
    for day in days:
        rows: list[dict[str, Any]] = []
        for field, count in blocked.get(day, {}).items():
            direction, connector, ctype, policy, domain, reason = split_blocked_field(field)
            if direction in directions:
                rows.append({"date": day, "direction": direction, "connector": connector,
                             "connector_type": ctype, "policy": policy,
                             "recipient_domain": domain or None, "reason": reason,
                             "messages": count})  # fmt: skip
        total += len(rows)
        rows.sort(key=lambda r: (-r["messages"], r["direction"], r["connector"] or "",
                                 r["policy"] or "", r["recipient_domain"] or "", r["reason"]))  # fmt: skip
        records.extend(rows[: max(0, limit - len(records))])
    return records, total


def blocked_by_domain(blocked: BlockedDays, days: Iterable[str]) -> list[dict[str, Any]]:
    """Microsoft's blocked section: per direction, recipient domain and policy, the messages
    and the distinct errors logged for them; most messages first."""
    groups: dict[tuple[str, str, str], tuple[int, set[str]]] = {}
    for day in days:
        for field, count in blocked.get(day, {}).items():
            direction, _, _, policy, domain, reason = split_blocked_field(field)
            key = (direction, domain, policy or "")
            messages, reasons = groups.get(key, (0, set()))
            reasons.add(reason)
            groups[key] = (messages + count, reasons)
    ordered = sorted(groups.items(), key=lambda item: (-item[1][0], item[0]))
    return [
        {"direction": direction, "recipient_domain": domain or None, "policy": policy or None,
         "messages": messages, "errors": sorted(reasons)}
        for (direction, domain, policy), (messages, reasons) in ordered
    ]  # fmt: skip
