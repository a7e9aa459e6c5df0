"""The per-connector report sums its window from cached sums of runs of days: always exact.

The plan (which runs of days are cached) is checked as plain data; the store against a 90-day
history whose truth is counted here in plain Python, while traces keep being folded into
today, into past days inside and outside cached blocks, and into days that had no mail.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta

import pytest

from service.core.connectors import unpack
from service.core.sum_plan import BLOCK_DAYS, RECENT_DAYS, CachedRun, Part, plan_window_sum
from service.core.traces import split_counter_field
from service.core.windows import Window
from service.store import keys
from service.store.local_cluster import LocalCluster
from service.store.window_sums import read_window_sum
from tests.helpers import post_batches

VERSIONS = ("none", "TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3", "SSL3")
CONNECTORS = [
    ("inbound", "Contoso Partner", "partner"),
    ("inbound", "HQ Exchange", "onpremises"),
    ("outbound", "HQ Exchange", "onpremises"),
    ("outbound", "Fabrikam", "partner"),
    ("inbound", None, None),
    ("outbound", None, None),
]
TENANT = "default"


# -- the plan ---------------------------------------------------------------------------------


def _days_of(part: Part) -> list[int]:
    if isinstance(part, CachedRun):
        return [day for inner in part.parts for day in _days_of(inner)]
    return [part]


def _runs(parts: list[Part]) -> list[CachedRun]:
    found = []
    for part in parts:
        if isinstance(part, CachedRun):
            found += [part, *_runs(list(part.parts))]
    return found


@pytest.mark.parametrize("end", [date(2026, 11, 27), date(2026, 11, 30), date(2027, 1, 3)])
def test_every_day_of_a_window_is_summed_exactly_once(end):
    for length in range(1, 121):
        window = Window(end - timedelta(days=length - 1), end)
        parts = plan_window_sum(window)
        assert sorted(day for part in parts for day in _days_of(part)) == list(range(length))
        for run in _runs(parts):
            assert _days_of(run) == list(range(run.first, run.last + 1))


@pytest.mark.parametrize("length", [7, 30, 90, 17])
def test_the_newest_days_are_never_cached_and_blocks_are_shared_by_every_window(length):
    end = date(2026, 11, 27)
    window = Window(end - timedelta(days=length - 1), end)
    runs = _runs(plan_window_sum(window))
    assert all(run.last < length - RECENT_DAYS for run in runs)
    blocks = [run for run in runs if run.last - run.first + 1 == BLOCK_DAYS]
    for block in blocks:
        assert date.fromisoformat(window.days[block.first]).toordinal() % BLOCK_DAYS == 0
    # Whole blocks cover all but the edges, which are shorter than a block.
    covered = {day for block in blocks for day in _days_of(block)}
    settled = set(range(length - RECENT_DAYS))
    assert len(settled - covered) <= 2 * (BLOCK_DAYS - 1)


# -- the store, against a truth counted here --------------------------------------------------


class History:
    """Traces posted so far and their truth per (day, direction, name) -> version -> messages."""

    def __init__(self, client, run_worker) -> None:
        self.client, self.run_worker = client, run_worker
        self.truth: dict[tuple[str, str, str | None], Counter[str]] = defaultdict(Counter)
        self.rng = random.Random(7)
        self.sent = 0

    def add(self, days: list[date], count: int, now: datetime) -> None:
        traces = []
        for _ in range(count):
            day = self.rng.choice(days)
            direction, name, ctype = self.rng.choice(CONNECTORS)
            version = self.rng.choices(VERSIONS, [5, 9, 3, 50, 30, 1])[0]
            midnight = datetime(day.year, day.month, day.day, tzinfo=now.tzinfo)
            span = min(86400.0, (now - midnight).total_seconds())
            when = midnight + timedelta(seconds=self.rng.uniform(0, span - 1))
            trace = {"id": f"w{self.sent}", "timestamp": when.isoformat(),
                     "direction": direction, "connector": name, "tls_version": version}  # fmt: skip
            if ctype:
                trace["connector_type"] = ctype
            traces.append(trace)
            self.truth[(day.isoformat(), direction, name)][version] += 1
            self.sent += 1
        assert post_batches(self.client, traces)["accepted"] == count
        self.run_worker()

    def expected(self, window: Window) -> dict[tuple[str, str | None], dict[str, int]]:
        days = set(window.days)
        totals: dict[tuple[str, str | None], Counter[str]] = defaultdict(Counter)
        for (day, direction, name), counts in self.truth.items():
            if day in days:
                totals[(direction, name)].update(counts)
        return {key: {v: n for v, n in counts.items() if n} for key, counts in totals.items()}


def reported(client, window: Window) -> dict[tuple[str, str | None], dict[str, int]]:
    response = client.get("/api/v1/connectors", query_string={
        "start": window.start.isoformat(), "end": window.end.isoformat(), "limit": 1000})  # fmt: skip
    assert response.status_code == 200, response.json
    assert response.json["next_cursor"] is None
    return {
        (row["direction"], row["name"]):
            {v: share["messages"] for v, share in row["tls"].items() if share["messages"]}
        for row in response.json["rows"]
    }  # fmt: skip


def windows_ending(today: date) -> list[Window]:
    return [Window(today - timedelta(days=n - 1), today) for n in (90, 30, 7, 45)] + [
        Window(today - timedelta(days=80), today - timedelta(days=20)),
    ]


@pytest.fixture
def history(client, clock, run_worker) -> History:
    """90 days of mail, but none on some days (their counters do not exist)."""
    today = clock.now.date()
    quiet = {today - timedelta(days=n) for n in (3, 12, 13, 40, 41, 42, 43, 44, 45, 46, 47, 70)}
    days = [today - timedelta(days=n) for n in range(90)]
    made = History(client, run_worker)
    made.add([d for d in days if d not in quiet], 3000, clock.now)
    return made


def check_windows(client, history: History, today: date) -> None:
    for window in windows_ending(today):
        assert reported(client, window) == history.expected(window), window


def test_reports_stay_exact_while_today_and_past_days_change(client, clock, history):
    today = clock.now.date()
    check_windows(client, history, today)
    history.add([today], 200, clock.now)  # today: no cached sum holds it
    check_windows(client, history, today)
    history.add([today - timedelta(days=30)], 50, clock.now)  # a day inside a cached block
    check_windows(client, history, today)
    history.add([today - timedelta(days=89), today - timedelta(days=4)], 50, clock.now)  # edges
    check_windows(client, history, today)
    history.add([today - timedelta(days=44)], 20, clock.now)  # a day without counters until now
    check_windows(client, history, today)
    history.add([today - timedelta(days=2)], 20, clock.now)  # the newest day of the cached run
    check_windows(client, history, today)


def test_reports_stay_exact_from_one_day_to_the_next(client, clock, history):
    check_windows(client, history, clock.now.date())
    for _ in range(3):
        clock.advance(days=1)
        today = clock.now.date()
        history.add([today, today - timedelta(days=1)], 100, clock.now)
        check_windows(client, history, today)


def _window_90(clock) -> Window:
    today = clock.now.date()
    return Window(today - timedelta(days=89), today)


def _alter_cached_sum(redis_client, key: str) -> tuple[str, int]:
    """Add 1000 TLS1.2 messages to one connector in a cached sum, keeping its stamp; the
    connector it changed and by how much."""
    field = "inbound\x1fContoso Partner\x1fpartner\x1fTLS1.2"
    packed = redis_client.hget(key, "sums").decode()
    sums = dict(line.split("\t") for line in packed.split("\n") if line)
    sums[field] = str(int(sums.get(field, 0)) + 1000)
    redis_client.hset(key, "sums", "\n".join(f"{f}\t{n}" for f, n in sums.items()))
    return field, 1000


def test_cached_sums_are_used_until_one_of_their_days_changes(client, clock, history, redis_client):
    # Proof that the cache is read at all (else the tests above prove nothing about it): a
    # cached sum altered in Redis shows in the report for exactly as long as it is valid.
    window = _window_90(clock)
    today = clock.now.date()
    connector = ("inbound", "Contoso Partner")
    assert reported(client, window) == history.expected(window)
    (run, *_recent) = plan_window_sum(window)
    assert isinstance(run, CachedRun)
    block = next(part for part in run.parts if isinstance(part, CachedRun))
    run_key = keys.block_sum(TENANT, window.days[run.first], window.days[run.last])
    block_key = keys.block_sum(TENANT, window.days[block.first], window.days[block.last])

    _alter_cached_sum(redis_client, run_key)
    history.add([today], 10, clock.now)  # a new data version, but no change to the run's days
    shown = reported(client, window)
    assert shown[connector]["TLS1.2"] == history.expected(window)[connector]["TLS1.2"] + 1000

    history.add([date.fromisoformat(window.days[run.last])], 10, clock.now)
    assert reported(client, window) == history.expected(window)  # the run summed again

    _alter_cached_sum(redis_client, block_key)
    edge = next(part for part in run.parts if isinstance(part, int))  # in the run, no block
    history.add([date.fromisoformat(window.days[edge])], 10, clock.now)  # the run summed again,
    # the block reused
    shown = reported(client, window)
    assert shown[connector]["TLS1.2"] == history.expected(window)[connector]["TLS1.2"] + 1000

    history.add([date.fromisoformat(window.days[block.first])], 10, clock.now)
    assert reported(client, window) == history.expected(window)  # the block summed again


def test_a_cached_sum_never_outlives_its_days(client, clock, history, redis_client):
    window = _window_90(clock)
    reported(client, window)
    (run, *_recent) = plan_window_sum(window)
    assert isinstance(run, CachedRun)
    for part in [run, *run.parts]:
        if not isinstance(part, CachedRun):
            continue
        days = window.days[part.first : part.last + 1]
        day_ttls = [
            t for t in (redis_client.pttl(keys.day_counts(TENANT, d)) for d in days) if t > 0
        ]
        sum_ttl = redis_client.pttl(keys.block_sum(TENANT, days[0], days[-1]))  # read after
        assert 0 < sum_ttl <= min([*day_ttls, part.life_seconds * 1000])


def test_at_the_memory_limit_sums_are_not_cached_and_still_exact(
    clock, history, redis_client, redis_server
):
    if isinstance(redis_server, LocalCluster):
        pytest.skip("one server's memory limit; on a cluster each master has its own")
    window = _window_90(clock)
    for key in redis_client.scan_iter(match=keys.block_sum(TENANT, "*", "*")):
        redis_client.delete(key)  # the sums the worker made: this read must make them anew
    redis_client.config_set("maxmemory", 1)  # every write refused: Redis answers OOM
    try:
        summed = read_window_sum(redis_client, TENANT, window)
    finally:
        redis_client.config_set("maxmemory", 0)
    totals: dict[tuple[str, str | None], Counter[str]] = defaultdict(Counter)
    for field, count in unpack(summed.packed[0]):
        direction, name, _, version = split_counter_field(field)
        totals[(direction, name)][version] += count
    assert {key: dict(counts) for key, counts in totals.items()} == history.expected(window)
    run = plan_window_sum(window)[0]
    assert isinstance(run, CachedRun)
    assert not redis_client.exists(keys.block_sum(TENANT, window.days[0], window.days[run.last]))


def test_the_worker_keeps_the_retention_windows_sums_current(client, clock, history, redis_client):
    """No report request pays for summing a history: the worker sums it after each fold."""
    window = _window_90(clock)  # the retention window: MAILFLOW_RETENTION_DAYS is 90
    (run, *_recent) = plan_window_sum(window)
    run_key = keys.block_sum(TENANT, window.days[run.first], window.days[run.last])
    assert redis_client.exists(run_key)  # summed, though no report was asked for yet
    stamp = redis_client.hget(run_key, "stamp")
    history.add([clock.now.date() - timedelta(days=30)], 10, clock.now)  # the worker runs
    assert redis_client.hget(run_key, "stamp") != stamp  # summed again, before any request
    assert reported(client, window) == history.expected(window)
