"""Folding the per-domain and per-user counters (docs/domains.md), exactly once and bounded.

The counts are folded by the same atomic call as the daily counters (``aggregates.fold`` with
``extra``), so a trace's domain and user are counted exactly when its message is. What that
call adds is decided just before it: which names of each day and direction are counted by
name (``admit_names.lua``, idempotent, in calls of at most ``ADMIT_CHUNK`` names); the others go to
the ``(other ...)`` row. Entries are folded in groups of at most ``WHO_LINES_PER_FOLD`` who
keys, so that no single call keeps Redis long (one entry of a big batch is a group alone).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

import redis

from service.config import Settings
from service.core.fold import EntryIncrements
from service.core.who import (
    AUTH_USERS,
    DOMAINS,
    EXTRAS_PER_NAME,
    UNKNOWN,
    who_groups,
)
from service.store import aggregates, keys
from service.store.scripts import script

ADMIT_CHUNK = 4000
WHO_LINES_PER_FOLD = 5000
_US = "\x1f"
_ALL_SENT = "="  # admit_names.lua's answer for a name admitted with every extra it was sent
_NONE: frozenset[str] = frozenset()


def fold(
    client: redis.Redis,
    tenant: str,
    consumer: str,
    entries: Sequence[EntryIncrements],
    settings: Settings,
    now: datetime,
    zone: tzinfo = UTC,
) -> aggregates.FoldResult:
    """``aggregates.fold`` of ``entries`` with their per-domain and per-user counters, in
    groups of bounded size; the results added up."""
    entries_done = traces = skipped = 0
    for group in _groups(entries):
        result = aggregates.fold(client, tenant, consumer, group, settings.retention_days, now,
                                 settings.blocked_fields_per_day,
                                 lambda chosen: extra_counters(client, tenant, chosen, settings,
                                                               now, zone), zone)  # fmt: skip
        entries_done += result.entries
        traces += result.traces
        skipped += result.skipped
    return aggregates.FoldResult(entries_done, traces, skipped)


def _groups(entries: Sequence[EntryIncrements]) -> Iterator[list[EntryIncrements]]:
    group: list[EntryIncrements] = []
    lines = 0
    for entry in entries:
        if group and lines + len(entry.who) > WHO_LINES_PER_FOLD:
            yield group
            group, lines = [], 0
        group.append(entry)
        lines += len(entry.who)
    if group:
        yield group


def extra_counters(
    client: redis.Redis,
    tenant: str,
    entries: Sequence[EntryIncrements],
    settings: Settings,
    now: datetime,
    zone: tzinfo = UTC,
) -> list[aggregates.ExtraCounters]:
    """The per-kind, per-day counter increments of ``entries``, names admitted first."""
    if len(entries) == 1:  # the usual group (a big batch): its keys as they are
        who = entries[0].who
    else:
        who = {}
        for entry in entries:
            for key, n in entry.who.items():
                who[key] = who.get(key, 0) + n
    limits = {DOMAINS.name: settings.domain_limit, AUTH_USERS.name: settings.auth_user_limit}
    groups = who_groups(who)
    # A reset of a day deletes its names sets: what this process remembers of them is then
    # void, so the memo is kept per reset generation of the day.
    resets = {_text(day): int(n) for day, n in client.hgetall(keys.dedupe_resets(tenant)).items()}
    asks = [Ask(keys.who_names(tenant, kind, direction, day), group.extras, limits[kind],
                aggregates.day_lifetime_ms(day, settings.domain_retention_days, now, zone),
                resets.get(day, 0))
            for (kind, day, direction), group in groups.items()]  # fmt: skip
    per_day: dict[tuple[str, str], dict[str, int]] = {}
    for ((kind, day, _), group), admitted in zip(groups.items(), admit(client, asks),
                                                 strict=True):  # fmt: skip
        fields = group.fields(admitted)
        counts = per_day.get((kind, day))
        if counts is None:  # the day's first direction: its fields as they are
            per_day[(kind, day)] = fields
            continue
        for counter, n in fields.items():  # distinct from the other direction's: no overlap
            counts[counter] = n
    return [
        aggregates.ExtraCounters(
            keys.who_counts(tenant, kind, day),
            keys.who_version(tenant, kind, day),
            aggregates.day_lifetime_ms(day, settings.domain_retention_days, now, zone),
            counts,
        )  # fmt: skip
        for (kind, day), counts in per_day.items()
    ]


@dataclass(frozen=True)
class Ask:
    """The names of one group (kind, day, direction) to admit to its set."""

    names_key: str
    names: dict[str, list[str]]  # each with its extras
    limit: int
    lifetime_ms: int
    generation: int = 0  # how often the day was reset (tenants reset): a new memo each time


def admit(client: redis.Redis, asks: Sequence[Ask]) -> list[dict[str, frozenset[str]]]:
    """Per ask, its admitted names -> their admitted extras (absent: not admitted). Traces
    without a name (``UNKNOWN``) are always counted as such, without extras. Names this
    process knows the answer for are not asked again; the others are asked in calls of at
    most ``ADMIT_CHUNK`` names, each call for as many groups as fit."""
    results: list[dict[str, frozenset[str]]] = []
    chunks: list[tuple[int, list[str]]] = []  # (position of the ask, names to ask Redis)
    for position, ask in enumerate(asks):
        admitted: dict[str, frozenset[str]] = {}
        memo = _memo(client, ask)
        asked = []
        for name, extras in ask.names.items():
            if name == UNKNOWN:
                admitted[UNKNOWN] = _NONE
                continue
            known = memo.get(name, _ASK)
            if known is None:
                continue  # refused: a day's set only grows, so it stays full
            if known is not _ASK and (known is _FULL or known.issuperset(extras)):
                admitted[name] = known
            else:
                asked.append(name)
        results.append(admitted)
        chunks += [(position, asked[at : at + ADMIT_CHUNK])
                   for at in range(0, len(asked), ADMIT_CHUNK)]  # fmt: skip
    call: list[tuple[int, list[str]]] = []
    for chunk in chunks:
        if call and sum(len(names) for _, names in call) + len(chunk[1]) > ADMIT_CHUNK:
            _ask(client, asks, call, results)
            call = []
        call.append(chunk)
    if call:
        _ask(client, asks, call, results)
    return results


def _ask(
    client: redis.Redis,
    asks: Sequence[Ask],
    call: list[tuple[int, list[str]]],
    results: list[dict[str, frozenset[str]]],
) -> None:
    """One admit_names.lua call for the chunks of ``call``; its answers into ``results`` and
    the memo."""
    args: list[object] = [EXTRAS_PER_NAME]
    sent: list[list[str]] = []  # per chunk, each name's extras as sent (joined)
    for position, chunk in call:
        ask = asks[position]
        sent.append(list(map(_US.join, map(ask.names.__getitem__, chunk))))
        args += [ask.limit, ask.lifetime_ms, "\n".join(chunk) + "\n",
                 "\n".join(sent[-1]) + "\n"]  # fmt: skip
    replies = script(client, "admit_names")(keys=[asks[p].names_key for p, _ in call], args=args)
    for (position, chunk), wanted, reply in zip(call, sent, replies, strict=True):
        ask, admitted = asks[position], results[position]
        memo = _memo(client, ask)
        text = reply.decode() if isinstance(reply, bytes) else str(reply)
        grants: dict[str, frozenset[str]] = {}  # extras joined -> their set: many names share one
        for name, answer, joined in zip(chunk, text.split("\n"), wanted, strict=True):
            if answer == _ALL_SENT:  # the usual answer: no extras to read back
                some_refused = False
            elif answer[0] == "1":
                joined, some_refused = answer[1:], True  # maybe: seen below
            else:
                memo[name] = None
                continue
            granted = grants.get(joined)
            if granted is None:
                granted = grants[joined] = frozenset(joined.split(_US)) if joined else _NONE
            admitted[name] = granted
            # Some extra refused: the name has all it may have, none is worth asking for.
            if some_refused and len(granted) < len(ask.names[name]):
                memo[name] = _FULL
            else:
                had = memo.get(name)  # extras admitted before: a set (asked names are not full)
                memo[name] = granted | had if had else granted


# What this process knows was admitted (or refused) already, so that a name seen again costs
# no script call: per client (a test's new store gets a new client), bounded in size. Both
# answers are final for a day: a name stays admitted, and a full set stays full.
_ASK: frozenset[str] = frozenset({"\x00ask"})
_FULL: frozenset[str] = frozenset({"\x00full"})
MEMO_NAMES = 200_000


def _memo(client: redis.Redis, ask: Ask) -> dict[str, frozenset[str] | None]:
    memos: dict[tuple[str, int, int], dict[str, frozenset[str] | None]] | None = getattr(
        client, "_mailflow_admitted", None
    )
    if memos is None or sum(map(len, memos.values())) > MEMO_NAMES:
        memos = {}
        client._mailflow_admitted = memos  # type: ignore[attr-defined]
    return memos.setdefault((ask.names_key, ask.limit, ask.generation), {})


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
