"""Grouping who keys into counter fields: the worker's fast path gives what adding each key's
domain and user one by one gives (``_add``), for every shape of key."""

from __future__ import annotations

import random

from service.core.traces import BLOCKED, FIELD_SEP, WHO_CLASS_SEP, who_key
from service.core.who import (
    AUTH_USERS,
    CONNECTOR_MARK,
    DOMAINS,
    EXTRAS_PER_NAME,
    SECURITY_MARK,
    TLS_MARK,
    GroupCounts,
    who_groups,
)


def _add(group: GroupCounts, name: str, tls: str, connector: str, extra: str, n: int) -> None:
    """One name's use, added the plain way: the meaning ``who_groups`` must keep."""
    counts = group.counts
    head = f"{group.direction}{FIELD_SEP}{name}{FIELD_SEP}"
    if WHO_CLASS_SEP in tls:  # the version, then the class (``traces.who_tls_segment``)
        tls, klass = tls.split(WHO_CLASS_SEP)
        field = f"{head}{SECURITY_MARK}{FIELD_SEP}{klass}"
        counts[field] = counts.get(field, 0) + n
    field = f"{head}{TLS_MARK}{FIELD_SEP}{tls}"
    counts[field] = counts.get(field, 0) + n
    if connector:
        field = f"{head}{CONNECTOR_MARK}{FIELD_SEP}{connector}"
        counts[field] = counts.get(field, 0) + n
    seen = group.extras.get(name)
    if seen is None:
        group.extras[name] = [extra] if extra else []
    elif extra and len(seen) < EXTRAS_PER_NAME and extra not in seen:
        seen.append(extra)


def _one_by_one(who: dict[str, int]) -> dict[tuple[str, str, str], GroupCounts]:
    groups: dict[tuple[str, str, str], GroupCounts] = {}
    for key, messages in who.items():
        day, rest = key.split("\x1e", 1)
        direction, domain, tls, connector, host, user, ip = rest.split("\x1f")
        if tls == BLOCKED:
            continue
        uses = [(DOMAINS.name, domain, host)] + ([(AUTH_USERS.name, user, ip)] if user else [])
        for kind, name, extra in uses:
            group = groups.setdefault((kind, day, direction), GroupCounts(direction))
            _add(group, name, tls, connector, extra, messages)
    return groups


def test_who_groups_equal_adding_each_key_alone():
    rng = random.Random(7)
    who: dict[str, int] = {}
    for _ in range(5000):
        day = rng.choice(("2026-01-01", "2026-01-02"))
        direction = rng.choice(("inbound", "outbound"))
        domain = rng.choice(["", *(f"d{i}.example" for i in range(40))])
        tls = rng.choice(("TLS1.2", "TLS1.3", "none", "TLS1.2:dane", "TLS1.3:authenticated",
                          BLOCKED))  # fmt: skip
        connector = rng.choice(("", "", "Partner 1", "Site 2"))
        host = rng.choice(["", *(f"mx{i}.example" for i in range(EXTRAS_PER_NAME + 5))])
        user = rng.choice(["", "", *(f"u{i}@example.com" for i in range(10))])
        ip = rng.choice(("", "192.0.2.1", "192.0.2.2"))
        key = who_key(day, direction, domain, tls, connector, host, user, ip)
        who[key] = who.get(key, 0) + rng.randint(1, 3)

    fast, reference = who_groups(who), _one_by_one(who)

    assert fast.keys() == reference.keys()
    assert any(kind == AUTH_USERS.name for kind, _, _ in fast)
    for group, counts in reference.items():
        assert fast[group].counts == counts.counts, group
        assert fast[group].extras == counts.extras, group
        assert fast[group].direction == counts.direction


def test_a_day_without_users_has_no_user_group():
    key = who_key("2026-01-01", "outbound", "d.example", "TLS1.2", "", "mx.d.example", "", "")
    assert list(who_groups({key: 3})) == [(DOMAINS.name, "2026-01-01", "outbound")]
