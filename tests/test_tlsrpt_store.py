"""The TLS-RPT store: a report counts once however often it is stored, per policy, with its
original kept and its keys living as long as its day. Also run on a Redis Cluster."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta

from service.core.tlsrpt import ReportError, check_day, parse_report
from service.store import keys, tlsrpt_store
from service.store.tlsrpt_store import COUNTED, DAY_FULL, DUPLICATE, REPORTS_FULL, DayLimits
from tests.tlsrpt_reports import report_on, two_policies_on

LIMITS = DayLimits(fields=1000, reports=100)


def _store(redis_client, clock, document, tenant="t1", limits=LIMITS):
    raw = json.dumps(document).encode()
    report = parse_report(raw, 1 << 20)
    check_day(report, clock.now, 90)
    return tlsrpt_store.store_report(redis_client, tenant, report, raw, limits, 90, clock.now)


def test_a_report_counts_once_per_organization_and_id(redis_client, clock) -> None:
    day = clock.now - timedelta(days=1)
    assert _store(redis_client, clock, report_on(day, "r1", ok=7, failed=2)) == COUNTED
    assert _store(redis_client, clock, report_on(day, "r1", ok=7, failed=2)) == DUPLICATE
    # the same id from another organization is another report
    assert _store(redis_client, clock, report_on(day, "r1", organization="B")) == COUNTED
    counts = tlsrpt_store.read_days(redis_client, "t1", [day.date().isoformat()])
    fields = counts[day.date().isoformat()]
    assert fields["s\x1fa.example\x1fsts\x1fSender Inc.\x1fmx.a.example"] == 7
    assert fields["f\x1fa.example\x1fsts\x1fSender Inc.\x1fmx.a.example"] == 2
    assert fields["r\x1fa.example\x1fcertificate-expired\x1fmx.a.example"] == 2 + 1
    assert tlsrpt_store.read_days(redis_client, "t2", [day.date().isoformat()]) == {}


def test_two_policies_count_to_their_own_domains(redis_client, clock) -> None:
    day = clock.now - timedelta(days=2)
    assert _store(redis_client, clock, two_policies_on(day)) == COUNTED
    fields = tlsrpt_store.read_days(redis_client, "t1", [day.date().isoformat()])
    sessions = {(f.split("\x1f")[0], f.split("\x1f")[1]): c
                for f, c in fields[day.date().isoformat()].items() if f[0] in "sf"}  # fmt: skip
    assert sessions == {("s", "alpha.example"): 900, ("f", "alpha.example"): 12,
                        ("s", "beta.example"): 40, ("f", "beta.example"): 5}  # fmt: skip


def test_the_original_is_kept_and_listed_for_as_long_as_its_day(redis_client, clock) -> None:
    day = clock.now - timedelta(days=3)
    document = two_policies_on(day)
    _store(redis_client, clock, document)
    [stored] = tlsrpt_store.list_reports(redis_client, "t1", [day.date().isoformat()])
    assert stored.domains == ("alpha.example", "beta.example")
    assert stored.report_id == "two-policies-2026-11-20"
    kept = tlsrpt_store.original(redis_client, "t1", stored.identity)
    assert kept is not None and json.loads(gzip.decompress(kept)) == document
    assert tlsrpt_store.original(redis_client, "t2", stored.identity) is None
    lifetime = timedelta(days=90 + 1) - (clock.now - day.replace(hour=0, minute=0, second=0))
    for key in (keys.tlsrpt_report("t1", stored.identity),
                keys.tlsrpt_day("t1", day.date().isoformat()),
                keys.tlsrpt_day_reports("t1", day.date().isoformat())):  # fmt: skip
        assert abs(redis_client.pttl(key) - lifetime / timedelta(milliseconds=1)) < 60_000


def test_a_full_day_refuses_the_report_whole(redis_client, clock) -> None:
    day = clock.now - timedelta(days=1)
    small = DayLimits(fields=6, reports=2)
    assert _store(redis_client, clock, report_on(day, "a"), limits=small) == COUNTED  # 4 fields
    wide = report_on(day, "b", domains=("b.example",))
    assert _store(redis_client, clock, wide, limits=small) == DAY_FULL
    assert _store(redis_client, clock, report_on(day, "c"), limits=small) == COUNTED  # same fields
    assert _store(redis_client, clock, report_on(day, "d"), limits=small) == REPORTS_FULL
    fields = tlsrpt_store.read_days(redis_client, "t1", [day.date().isoformat()])
    assert not any("b.example" in f for f in fields[day.date().isoformat()])
    assert redis_client.exists(keys.tlsrpt_report("t1", parse_report(
        json.dumps(wide).encode(), 1 << 20).identity)) == 0  # fmt: skip


def test_a_day_outside_retention_or_ahead_is_refused(clock) -> None:
    old = parse_report(json.dumps(report_on(clock.now - timedelta(days=90))).encode(), 1 << 20)
    ahead = parse_report(json.dumps(report_on(clock.now + timedelta(days=2))).encode(), 1 << 20)
    for report in (old, ahead):
        try:
            check_day(report, clock.now, 90)
        except ReportError as error:
            assert error.field == "/date-range/start-datetime"
        else:
            raise AssertionError("accepted")
    check_day(parse_report(json.dumps(report_on(clock.now - timedelta(days=89))).encode(),
                           1 << 20), clock.now, 90)  # fmt: skip


def test_the_same_report_posted_at_once_by_many_counts_once(redis_server, redis_client,
                                                             clock) -> None:  # fmt: skip
    import threading

    from service.store.connection import connect_url

    day = clock.now - timedelta(days=1)
    raw = json.dumps(report_on(day, "race", ok=11, failed=0)).encode()
    report = parse_report(raw, 1 << 20)
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def post() -> None:
        client = connect_url(redis_server.url)
        try:
            start.wait()
            outcomes.append(tlsrpt_store.store_report(client, "t1", report, raw, LIMITS, 90,
                                                      clock.now))  # fmt: skip
        finally:
            client.close()

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [COUNTED] + [DUPLICATE] * 7
    fields = tlsrpt_store.read_days(redis_client, "t1", [day.date().isoformat()])
    assert (
        fields[day.date().isoformat()]["s\x1fa.example\x1fsts\x1fSender Inc.\x1fmx.a.example"] == 11
    )


def test_a_report_at_the_limits_counts_whole(redis_client, clock) -> None:
    from service.core.tlsrpt import MAX_FAILURE_DETAILS, MAX_POLICIES

    day = clock.now - timedelta(days=1)
    document = report_on(day, "max", domains=tuple(f"d{n}.example" for n in range(MAX_POLICIES)),
                         ok=2, failed=1)  # fmt: skip
    assert sum(len(p["failure-details"]) for p in document["policies"]) == MAX_FAILURE_DETAILS
    raw = json.dumps(document).encode()
    report = parse_report(raw, 1 << 20)
    limits = DayLimits(fields=4 * MAX_POLICIES, reports=1)
    assert tlsrpt_store.store_report(redis_client, "t1", report, raw, limits, 90,
                                     clock.now) == COUNTED  # fmt: skip
    fields = tlsrpt_store.read_days(redis_client, "t1", [day.date().isoformat()])
    counts = fields[day.date().isoformat()]
    assert len(counts) == 4 * MAX_POLICIES
    assert sum(c for f, c in counts.items() if f.startswith("s\x1f")) == 2 * MAX_POLICIES
    assert sum(c for f, c in counts.items() if f.startswith("r\x1f")) == MAX_FAILURE_DETAILS


def test_a_cached_report_lasts_until_the_next_counted_report(redis_client, clock) -> None:
    builds: list[int] = []

    def build() -> bytes:
        builds.append(1)
        return str(len(builds)).encode()

    def read() -> bytes:
        return tlsrpt_store.cached(redis_client, "t1", ("rows", "x"), build, 60)

    assert read() == b"1" and read() == b"1"
    _store(redis_client, clock, report_on(clock.now - timedelta(days=1), "new"))
    assert read() == b"2" and read() == b"2"
    _store(redis_client, clock, report_on(clock.now - timedelta(days=1), "new"))  # a duplicate
    assert read() == b"2"
    assert 0 < redis_client.ttl(keys.view("t1", "tlsrpt", "rows", "x")) <= 60
    assert tlsrpt_store.cached(redis_client, "t1", ("rows", "x"), build, 0) == b"3"
