"""The connector report grouped by day is joined from each day's kept rows: always exact.

The rows view and its selection are checked as plain data against the row-by-row forms they
replace; the store against a 90-day history whose truth is counted here in plain Python, while
traces keep being folded into today, into past days and into days that had no mail, while
definitions change and while days go by (the injected clock).
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from service.core.connectors import (
    SORT_COLUMNS,
    ConnectorRow,
    ConnectorRows,
    RowFilter,
    decode_row,
    encode_rows,
    select_rows,
)
from service.core.rows_view import (
    encode_day,
    join_rows_view,
    raw_view_of_days,
    select_raw,
    split_day,
)
from service.core.tls import TLS_VERSIONS
from service.core.transport_security import SECURITY_CLASSES
from service.reports.builders import build_rows_of_days
from service.reports.day_views import day_rows_view
from service.store import keys
from service.store.day_rows import HELD, DayPart, HeldParts, part_digest, read_day_rows
from service.store.local_cluster import LocalCluster
from tests import test_reports_window_sums
from tests.helpers import post_batches
from tests.test_reports_connectors import fetch_all
from tests.test_reports_window_sums import History

TENANT = "default"
# The same 90-day history (some days without mail) as the per-connector report's tests.
history = test_reports_window_sums.history

# -- the rows view, as plain data -------------------------------------------------------------


def _rows(rng: random.Random, days: list[str]) -> list[ConnectorRow]:
    rows = []
    for day in days:
        for n in range(rng.randrange(0, 12)):
            direction = rng.choice(("inbound", "outbound"))
            name = None if n == 0 else f"c{rng.randrange(20)}"
            counts = [rng.choice((0, 0, 1, 2, 5)) for _ in TLS_VERSIONS]
            # Transport security classes of the delivered messages (none: a row kept before
            # them), and blocked ones: the columns only a decoded row is sorted by.
            classes = [0] * len(SECURITY_CLASSES)
            for _ in range(sum(counts)):
                classes[rng.randrange(len(classes))] += 1
            security = classes if rng.random() < 0.8 else []
            rows.append(ConnectorRow(day, direction, name, rng.choice((None, "partner")),
                                     rng.random() < 0.3, rng.random() < 0.3, counts, security,
                                     rng.choice((0, 0, 1, 3))))  # fmt: skip
    unique = {(r.date, r.direction, r.name): r for r in rows}  # a row key is unique
    return list(unique.values())


@pytest.mark.parametrize("seed", range(5))
def test_the_joined_view_is_the_view_encoded_row_by_row(seed):
    rng = random.Random(seed)
    days = [f"2026-11-{d:02d}" for d in range(1, 9)]
    rows = _rows(rng, days)
    parts = [encode_day([r for r in rows if r.date == day]) for day in days]
    joined = join_rows_view(17, "2026-11-08T10:00:00Z", [p[0] for p in parts],
                            [p[1] for p in parts])  # fmt: skip
    ordered = sorted(rows, key=lambda r: (r.date, r.direction, r.name or ""))
    whole = ConnectorRows(17, "2026-11-08T10:00:00Z", ordered, [sum(r.counts) for r in ordered])
    assert joined == encode_rows(whole)
    assert join_rows_view(3, None, [b"", b""], [b"", b""]) == encode_rows(
        ConnectorRows(3, None, [], [])
    )


SORTS = [s for c in SORT_COLUMNS for s in (c, f"-{c}")]
ROW_FILTERS = [RowFilter(), RowFilter(direction="inbound"), RowFilter(name="C1"),
               RowFilter(type="internet"), RowFilter(forced_tls=True),
               RowFilter(security=frozenset({"blocked"})),
               RowFilter(security=frozenset({"dane", "none"}))]  # fmt: skip


@pytest.mark.parametrize("sort", SORTS)
def test_raw_selection_orders_rows_as_decoded_selection_does(sort):
    rng = random.Random(sort)
    days = [f"2026-11-{d:02d}" for d in range(1, 6)]
    rows = sorted(_rows(rng, days), key=lambda r: (r.date, r.direction, r.name or ""))
    with_messages = encode_rows(ConnectorRows(1, None, rows, [sum(r.counts) for r in rows]))
    without = encode_rows(ConnectorRows(1, None, rows))  # a view cached before the field
    for body in (with_messages, without):
        for row_filter in ROW_FILTERS:
            selected = select_raw(body, row_filter, sort)
            assert [decode_row(raw) for raw in selected.rows] == select_rows(rows, row_filter, sort)
    # The same view given as its days already split (a view joined in this process).
    parts = [encode_day([r for r in rows if r.date == day]) for day in days]
    body = join_rows_view(1, "2026-11-05T00:00:00Z", [p[0] for p in parts], [p[1] for p in parts])
    split = raw_view_of_days(1, "2026-11-05T00:00:00Z", [split_day(*p) for p in parts])
    for row_filter in ROW_FILTERS:
        selected = select_raw(body, row_filter, sort, split)
        assert selected == select_raw(body, row_filter, sort)
        assert [decode_row(raw) for raw in selected.rows] == select_rows(rows, row_filter, sort)


# -- the store, against a truth counted here --------------------------------------------------


def reported_by_day(client, start: date, end: date, **params) -> dict[tuple, dict[str, int]]:
    """(date, direction, name) -> messages per version, paged through with a cursor."""
    rows = fetch_all(client, start=start.isoformat(), end=end.isoformat(), group_by="day",
                     limit=150, **params)  # fmt: skip
    keys_seen = [(r["date"], r["direction"], r["name"]) for r in rows]
    assert len(keys_seen) == len(set(keys_seen))  # each row once, across pages
    return {
        (r["date"], r["direction"], r["name"]):
            {v: share["messages"] for v, share in r["tls"].items() if share["messages"]}
        for r in rows
    }  # fmt: skip


def expected_by_day(history: History, start: date, end: date) -> dict[tuple, dict[str, int]]:
    return {
        key: {v: n for v, n in counts.items() if n}
        for key, counts in history.truth.items()
        if start.isoformat() <= key[0] <= end.isoformat() and sum(counts.values())
    }


def check(client, history: History, today: date) -> None:
    for start, end in ((today - timedelta(days=89), today), (today - timedelta(days=6), today),
                       (today - timedelta(days=60), today - timedelta(days=30))):  # fmt: skip
        assert reported_by_day(client, start, end) == expected_by_day(history, start, end)
        assert reported_by_day(client, start, end, sort="-messages") == expected_by_day(
            history, start, end
        )


def test_rows_per_day_stay_exact_while_mail_arrives(client, clock, history):
    today = clock.now.date()
    check(client, history, today)
    history.add([today], 200, clock.now)  # today: its kept rows no longer hold
    check(client, history, today)
    history.add([today - timedelta(days=45)], 30, clock.now)  # a past day
    check(client, history, today)
    history.add([today - timedelta(days=40)], 30, clock.now)  # a day without counters until now
    check(client, history, today)
    history.add([today - timedelta(days=89), today - timedelta(days=1)], 30, clock.now)
    check(client, history, today)


def test_rows_per_day_stay_exact_from_one_day_to_the_next(client, clock, history):
    check(client, history, clock.now.date())
    for _ in range(3):
        clock.advance(days=1)
        today = clock.now.date()
        history.add([today, today - timedelta(days=1)], 100, clock.now)
        check(client, history, today)


def _stamps(redis_client, days: list[date]) -> dict[date, bytes | None]:
    return {d: redis_client.hget(keys.day_rows(TENANT, d.isoformat()), "stamp") for d in days}


def _alter_kept_rows(redis_client, day: date) -> None:
    """Add 1000 TLS1.2 messages to the first row of a day's kept rows, keeping its stamp."""
    key = keys.day_rows(TENANT, day.isoformat())
    first, *rest = _DAY_DECODER.decode(b"[" + redis_client.hget(key, "rows") + b"]")
    counts = list(first.counts)
    counts[TLS_VERSIONS.index("TLS1.2")] += 1000
    altered = msgspec.structs.replace(first, counts=counts)
    rows = msgspec.json.encode([altered, *rest])[1:-1]
    # Under the digest of what it now holds: an API process holding the day's rows in memory
    # takes them by that name (store.day_rows.HeldParts).
    digest = part_digest(rows, redis_client.hget(key, "messages"))
    redis_client.hset(key, mapping={"rows": rows, "digest": digest})


_DAY_DECODER = msgspec.json.Decoder(list[ConnectorRow])


def test_kept_rows_are_used_until_their_day_or_the_definitions_change(
    client, clock, history, redis_client
):
    # Proof that the kept rows are read at all (else the tests above prove nothing about them):
    # rows altered in Redis show in the report for exactly as long as they hold.
    today = clock.now.date()
    start, past = today - timedelta(days=89), today - timedelta(days=20)
    assert reported_by_day(client, start, today) == expected_by_day(history, start, today)
    days = [today - timedelta(days=n) for n in range(90)]
    before = _stamps(redis_client, days)
    assert all(before.values())

    _alter_kept_rows(redis_client, past)
    history.add([today], 10, clock.now)  # a new data version; the past day did not change
    shown = reported_by_day(client, start, today)
    # Only today's rows were built again (by the worker or by this request).
    assert [d for d in days if _stamps(redis_client, days)[d] != before[d]] == [today]
    truth = expected_by_day(history, start, today)
    changed = [k for k in truth if shown.get(k) != truth[k]]
    assert len(changed) == 1 and changed[0][0] == past.isoformat()
    assert sum(shown[changed[0]].values()) == sum(truth[changed[0]].values()) + 1000

    history.add([past], 10, clock.now)
    assert reported_by_day(client, start, today) == expected_by_day(history, start, today)

    _alter_kept_rows(redis_client, past)
    response = client.put("/api/v1/connectors/inbound/Contoso Partner",
                          json={"type": "partner", "forced_tls": True})  # fmt: skip
    assert response.status_code == 200
    shown = reported_by_day(client, start, today)  # every day built again: exact
    assert {k: v for k, v in shown.items() if v} == expected_by_day(history, start, today)
    forced = client.get("/api/v1/connectors", query_string={
        "start": start.isoformat(), "end": today.isoformat(), "group_by": "day",
        "forced_tls": "true", "limit": 1000}).json  # fmt: skip
    assert forced["total_rows"] == 90  # the defined connector, on every day of the window


def test_kept_rows_never_outlive_their_days(client, clock, history, redis_client):
    today = clock.now.date()
    reported_by_day(client, today - timedelta(days=89), today)
    for n in range(90):
        day = (today - timedelta(days=n)).isoformat()
        kept = redis_client.pttl(keys.day_rows(TENANT, day))
        counters = redis_client.pttl(keys.day_counts(TENANT, day))  # read after
        assert kept > 0
        if counters > 0:
            assert kept <= counters


def test_at_the_memory_limit_rows_are_not_kept_and_still_exact(
    client, clock, history, redis_client, redis_server
):
    if isinstance(redis_server, LocalCluster):
        pytest.skip("one server's memory limit; on a cluster each master has its own")
    today = clock.now.date()
    start = today - timedelta(days=89)
    for key in redis_client.scan_iter(match=keys.day_rows(TENANT, "*")):
        redis_client.delete(key)
    redis_client.config_set("maxmemory", 1)  # every write refused: Redis answers OOM
    try:
        days = [(start + timedelta(days=n)).isoformat() for n in range(90)]
        read = read_day_rows(redis_client, TENANT, days,
                             lambda stale: build_rows_of_days(redis_client, TENANT, stale))  # fmt: skip
    finally:
        redis_client.config_set("maxmemory", 0)
    assert sum(int(m) for part in read.messages for m in part.split(b",") if m) == history.sent
    assert list(redis_client.scan_iter(match=keys.day_rows(TENANT, "*"))) == []


def _blocked_trace(n: int, day: date, direction: str, name: str | None, ctype: str | None) -> dict:
    when = datetime(day.year, day.month, day.day, 1, n % 60, tzinfo=UTC)
    trace = {"id": f"blk{n}", "timestamp": when.isoformat(), "direction": direction,
             "tls_version": None, "outcome": "blocked", "blocked_reason": "no STARTTLS",
             "recipient_domain": "example.net", "tls_policy": "encrypt"}  # fmt: skip
    if name is not None:
        trace.update(connector=name, connector_type=ctype)
    return trace


def test_blocked_mail_on_a_kept_day_shows_in_the_report(
    client, clock, history, redis_client, run_worker
):
    # Mail blocked by a TLS policy goes to the day's blocked counters only: the fold moves the
    # day's blocked version, not its version. The kept rows must not hold past it, on a day
    # with mail (its rows kept with counts) as on a day that had none.
    today = clock.now.date()
    start, past, quiet = (
        today - timedelta(days=89),
        today - timedelta(days=20),
        today - timedelta(days=41),
    )
    reported_by_day(client, start, today)  # every day's rows kept
    before = _stamps(redis_client, [past, quiet])
    assert all(before.values())
    versions = [redis_client.get(keys.day_version(TENANT, d.isoformat())) for d in (past, quiet)]
    targets = [(past, "outbound", "Fabrikam", "partner")] * 3 + [(past, "outbound", None, None)] * 2
    targets += [(quiet, "inbound", "HQ Exchange", "onpremises")]
    blocked = [_blocked_trace(n, *target) for n, target in enumerate(targets)]
    assert post_batches(client, blocked)["accepted"] == len(targets)
    run_worker()
    assert [redis_client.get(keys.day_version(TENANT, d.isoformat()))
            for d in (past, quiet)] == versions  # fmt: skip
    truth = {(day.isoformat(), direction, name): targets.count((day, direction, name, ctype))
             for day, direction, name, ctype in targets}  # fmt: skip
    for sort in ("date", "-messages", "-blocked"):  # raw orders, and one decoding every row
        rows = fetch_all(client, start=start.isoformat(), end=today.isoformat(),
                         group_by="day", sort=sort, limit=150)  # fmt: skip
        assert {(r["date"], r["direction"], r["name"]): r["blocked"]
                for r in rows if r["blocked"]} == truth, sort  # fmt: skip
        assert sum(r["messages"] for r in rows) == history.sent
    after = _stamps(redis_client, [past, quiet])
    assert all(after[d] and after[d] != before[d] for d in (past, quiet))  # kept again, anew


def _read_all(redis_client, days: list[str]):
    return read_day_rows(redis_client, TENANT, days,
                         lambda stale: build_rows_of_days(redis_client, TENANT, stale))  # fmt: skip


def test_rows_held_in_memory_are_not_sent_again_and_stay_exact(
    client, clock, history, redis_client
):
    today = clock.now.date()
    days = [(today - timedelta(days=n)).isoformat() for n in range(89, -1, -1)]
    first = _read_all(redis_client, days)  # every day kept, and held here
    assert all(HELD.get(TENANT, day) == part for day, part in zip(days, first.parts, strict=True))
    # The script leaves out exactly the rows whose digest the caller sends.
    names = [keys.meta(TENANT)]
    for day in days[:3]:
        names += [keys.day_version(TENANT, day), keys.day_blocked_version(TENANT, day),
                  keys.day_rows(TENANT, day)]  # fmt: skip
    held = [first.parts[0].digest, b"", b"not this one"]
    _, _, *per_day = redis_client.eval(_READ_SCRIPT, len(names), *names, *held)
    assert per_day[2:4] == [None, None]
    assert per_day[6:8] == [first.parts[1].rows, first.parts[1].messages]
    assert per_day[10:12] == [first.parts[2].rows, first.parts[2].messages]

    # Rows changed in Redis under a new digest are taken; a day that changed is built again.
    history.add([today], 20, clock.now)
    again = _read_all(redis_client, days)
    assert again.parts[:-1] == first.parts[:-1] and again.parts[-1] != first.parts[-1]
    assert sum(int(m) for part in again.messages for m in part.split(b",") if m) == history.sent
    assert HELD.get(TENANT, days[-1]) == again.parts[-1]


_READ_SCRIPT = (Path(__file__).parent.parent / "service/store/lua/read_day_rows.lua").read_text()


def test_held_rows_are_bounded_in_bytes():
    held = HeldParts(max_bytes=120)
    parts = [DayPart(b"x" * 30, b"1" * 10, part_digest(b"x" * 30, b"1" * 10)) for _ in range(4)]
    for n, part in enumerate(parts):
        held.put("t", f"2026-11-0{n + 1}", part)
    assert held.get("t", "2026-11-01") is None  # the oldest went first
    assert [held.get("t", f"2026-11-0{n}") for n in (2, 3, 4)] == parts[1:]
    held.put("t", "2026-11-05", DayPart(b"y" * 200, b"", b"big"))  # larger than the bound
    assert held.get("t", "2026-11-05") is None and held.get("t", "2026-11-04") == parts[3]


def test_by_day_report_answers_304_until_mail_arrives_and_cursors_hold(client, clock, history):
    # The rows view of a window nobody precomputes is tagged from its days' digests: the
    # page's ETag holds while nothing changed and moves with new mail; a cursor handed out
    # before the mail keeps paging the rows it was cut from.
    today = clock.now.date()
    params = {"start": (today - timedelta(days=89)).isoformat(), "end": today.isoformat(),
              "group_by": "day", "sort": "-messages", "limit": 50}  # fmt: skip
    first = client.get("/api/v1/connectors", query_string=params)
    assert first.status_code == 200 and first.json["next_cursor"]
    etag = first.headers["ETag"]
    again = client.get("/api/v1/connectors", query_string=params, headers={"If-None-Match": etag})
    assert again.status_code == 304
    sent_before = history.sent
    history.add([today], 7, clock.now)
    changed = client.get("/api/v1/connectors", query_string=params,
                         headers={"If-None-Match": etag})  # fmt: skip
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    rows, cursor = list(first.json["rows"]), first.json["next_cursor"]
    while cursor:
        page = client.get("/api/v1/connectors", query_string=params | {"cursor": cursor}).json
        rows += page["rows"]
        cursor = page["next_cursor"]
    assert sum(r["messages"] for r in rows) == sent_before
    assert [r["messages"] for r in rows] == sorted((r["messages"] for r in rows), reverse=True)


def test_a_by_day_view_is_joined_here_not_stored_and_tagged_by_its_days(
    client, clock, history, redis_client
):
    today = clock.now.date()
    start = today - timedelta(days=89)
    params = {"start": start.isoformat(), "end": today.isoformat(), "group_by": "day"}
    assert client.get("/api/v1/connectors", query_string=params).status_code == 200
    # No copy of the joined rows (megabytes for a large tenant) is written to Redis (the worker
    # keeps the 7- and 30-day windows built, as every report's).
    stored = keys.view(TENANT, "connectors", start.isoformat(), today.isoformat(), "day")
    assert list(redis_client.scan_iter(match=f"{stored}*")) == []
    days = [(start + timedelta(days=n)).isoformat() for n in range(90)]
    read = _read_all(redis_client, days)
    view = day_rows_view(TENANT, read, "2026-01-01T00:00:00Z")
    assert day_rows_view(TENANT, _read_all(redis_client, days), "2026-01-01T00:00:00Z") is view
    assert view.body == join_rows_view(read.version, "2026-01-01T00:00:00Z", read.rows,
                                       read.messages)  # fmt: skip
    # Another day's content, another tenant, another time of the newest data: another tag.
    other_day = replace(read, parts=[*read.parts[:-1], DayPart(b"", b"", b"\0" * 16)])
    assert day_rows_view(TENANT, other_day, "2026-01-01T00:00:00Z").etag != view.etag
    assert day_rows_view("another", read, "2026-01-01T00:00:00Z").etag != view.etag
    assert day_rows_view(TENANT, read, "2026-01-02T00:00:00Z").etag != view.etag
