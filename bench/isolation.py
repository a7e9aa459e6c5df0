"""Isolation: one tenant's abuse must not take the service from another.

While tenant ``slow`` keeps 16 uploads open that declare 100 kB and send one byte, and tenant
``big`` (the documented maximum of distinct connectors, every day of the 90-day retention)
reads its 90-day reports in a loop, tenant ``probe`` sends uncached reads (windows and filters
no cache holds yet) and ``/readyz`` is polled; each answer counts when it is a 200 within 2 s.
The same probes run first with no load, for comparison.

    python -m bench.isolation            # 30 s under load (about 2 minutes in all)
    python -m bench.isolation --quick    # 10 s

Everything runs on loopback: an embedded Redis, one fold worker, gunicorn as ``mailflow serve``
runs it (2 processes x 4 threads), all stopped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import orjson

from bench.harness import Stack, gunicorn, make_key, redis_stack, workers
from bench.ingest import post_all
from service.config import Settings
from service.core.tls import TLS_VERSIONS
from service.store import aggregates

RETENTION_DAYS = 90
SLOW_UPLOADS = 16
PROBE_TIMEOUT_SECONDS = 5.0  # a probe counts as failed after 2 s anyway
REPORT_TIMEOUT_SECONDS = 30.0  # the big tenant waits for its reports: measured, not abandoned
WITHIN_SECONDS = 2.0
BATCH = 5000
Row = dict[str, Any]


def documented_max_connectors() -> int:
    """The per-tenant limit on distinct connectors, where this version of mailflow has one."""
    return int(getattr(Settings(), "max_connectors", 1000))


@dataclass
class Probe:
    kind: str
    status: int  # 0: no answer (timeout or connection error)
    seconds: float


@dataclass
class Outcomes:
    """What the background load saw (statuses), to show it really ran."""

    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    seconds: list[float] = field(default_factory=list)

    def add(self, outcome: str, seconds: float | None = None) -> None:
        with self.lock:
            self.counts[outcome] += 1
            if seconds is not None:
                self.seconds.append(seconds)


def connector_bodies(connectors: int, today: date) -> list[bytes]:
    """One inbound trace per connector per day of the retention window."""
    traces = []
    for day in range(RETENTION_DAYS):
        noon = datetime.combine(today - timedelta(days=day), datetime.min.time(), UTC)
        stamp = (noon + timedelta(hours=12) if day else noon + timedelta(minutes=1)).isoformat()
        for n in range(connectors):
            traces.append({"id": f"c{n}-d{day}", "timestamp": stamp, "direction": "inbound",
                           "connector": f"partner-{n:04d}", "connector_type": "partner",
                           "tls_version": TLS_VERSIONS[(n + day) % len(TLS_VERSIONS)]})  # fmt: skip
    return [orjson.dumps(traces[i : i + BATCH]) for i in range(0, len(traces), BATCH)]


def folded(stack: Stack, tenant: str, today: date) -> int:
    days = [(today - timedelta(days=i)).isoformat() for i in range(RETENTION_DAYS)]
    snapshot = aggregates.read_counters(stack.client, tenant, days)
    return sum(sum(day.values()) for day in snapshot.days.values())


def request(base: str, path: str, key: str | None, timeout: float = PROBE_TIMEOUT_SECONDS) -> Probe:
    parsed = urlparse(base)
    connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port,
                                            timeout=timeout)  # fmt: skip
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    started = time.perf_counter()
    try:
        connection.request("GET", path, headers=headers)
        with connection.getresponse() as response:
            response.read()
            status = response.status
    except OSError:
        status = 0
    finally:
        connection.close()
    return Probe("", status, time.perf_counter() - started)


def uncached_reads() -> Iterator[str]:
    """Report queries that neither the cached lane nor the view cache answers yet: every
    window length but the precomputed 7 and 30 days, on three reports, with filters."""
    lengths = [d for d in range(1, RETENTION_DAYS + 1) if d not in (7, 30)]
    for days in itertools.cycle(lengths):
        yield f"/api/v1/mailflow/snapshot?days={days}"
        yield f"/api/v1/mailflow/tls?days={days}&direction=inbound"
        yield f"/api/v1/connectors?days={days}&sort=-messages"


def big_tenant_reports() -> Iterator[str]:
    """The 90-day reports of the tenant with the most connectors, over and over."""
    queries = [
        "/api/v1/connectors?days=90",
        "/api/v1/connectors?days=90&group_by=day&limit=1000",
        "/api/v1/connectors?days=90&sort=-messages&limit=1000",
        "/api/v1/mailflow/tls?days=90",
        "/api/v1/mailflow/snapshot?days=90",
    ]
    for n in itertools.count():
        yield queries[n % len(queries)]
        yield f"/api/v1/connectors?days=90&name=partner-{n % 10}&limit=1000"


def probe_for(base: str, key: str, seconds: float) -> list[Probe]:
    """Alternate one uncached read and one /readyz, one at a time, for ``seconds``."""
    probes: list[Probe] = []
    reads = uncached_reads()
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        read = request(base, next(reads), key)
        probes.append(Probe("uncached read", read.status, read.seconds))
        ready = request(base, "/readyz", None)
        probes.append(Probe("/readyz", ready.status, ready.seconds))
    return probes


def slow_upload_loop(base: str, key: str, stop: threading.Event, seen: Outcomes) -> None:
    """Keep one slow upload open: headers and 1 byte of a declared 100 kB body, then nothing;
    when the server answers or closes it, open the next."""
    parsed = urlparse(base)
    head = (f"POST /api/v1/traces HTTP/1.1\r\nHost: {parsed.netloc}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            "Content-Length: 100000\r\n\r\n[").encode()  # fmt: skip
    while not stop.is_set():
        started = time.perf_counter()
        try:
            with socket.create_connection(
                (parsed.hostname or "127.0.0.1", parsed.port or 80), timeout=0.5
            ) as sock:
                sock.sendall(head)
                answer = b""
                while not stop.is_set() and not answer:
                    try:
                        answer = sock.recv(4096) or b"closed"
                    except TimeoutError:
                        continue
        except OSError:
            answer = b"reset"
        if stop.is_set():
            return
        outcome = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else answer
        seen.add(str(outcome), time.perf_counter() - started)
        stop.wait(0.1)  # a refused attacker comes straight back, but not in a hot loop


def report_loop(base: str, key: str, stop: threading.Event, seen: Outcomes) -> None:
    for path in big_tenant_reports():
        if stop.is_set():
            return
        result = request(base, path, key, timeout=REPORT_TIMEOUT_SECONDS)
        seen.add(str(result.status), result.seconds)


def summarise(phase: str, probes: list[Probe]) -> list[Row]:
    rows = []
    for kind in ("uncached read", "/readyz"):
        times = sorted(p.seconds for p in probes if p.kind == kind)
        good = sum(1 for p in probes if p.kind == kind and p.status == 200
                   and p.seconds <= WITHIN_SECONDS)  # fmt: skip
        rows.append({"phase": phase, "probe": kind, "requests": len(times),
                     "p50 ms": _ms(times, 0.50), "p95 ms": _ms(times, 0.95),
                     "max ms": round(times[-1] * 1000, 1) if times else None,
                     "200 within 2 s": f"{100 * good / max(1, len(times)):.1f} %"})  # fmt: skip
    return rows


def _ms(ordered: list[float], share: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000, 1)


def isolation(seconds: float = 30.0, quiet_seconds: float = 10.0) -> list[Row]:
    connectors = documented_max_connectors()
    today = datetime.now(UTC).date()
    with redis_stack() as stack:
        slow_key = make_key(stack, "slow")
        big_key = make_key(stack, "big")
        probe_key = make_key(stack, "probe")
        with gunicorn("service.wsgi:app", stack.env) as url, workers(stack.env, 1):
            big = connector_bodies(connectors, today)
            post_all(url, big_key, big, threads=2)
            post_all(url, probe_key, connector_bodies(20, today), threads=1)
            expected = connectors * RETENTION_DAYS
            deadline = time.monotonic() + 300
            while folded(stack, "big", today) < expected or folded(stack, "probe", today) < 20 * RETENTION_DAYS:  # fmt: skip
                if time.monotonic() > deadline:
                    raise RuntimeError("the worker did not fold the load in 5 minutes")
                time.sleep(0.5)
            while request(url, "/readyz", None).status != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError("/readyz never answered 200")
                time.sleep(0.2)
            quiet = probe_for(url, probe_key, quiet_seconds)

            stop = threading.Event()
            uploads, reports = Outcomes(), Outcomes()
            load = [threading.Thread(target=slow_upload_loop, args=(url, slow_key, stop, uploads))
                    for _ in range(SLOW_UPLOADS)]  # fmt: skip
            load += [threading.Thread(target=report_loop, args=(url, big_key, stop, reports))
                     for _ in range(2)]  # fmt: skip
            for thread in load:
                thread.start()
            try:
                time.sleep(1.0)  # let the uploads take every slot they can first
                loaded = probe_for(url, probe_key, seconds)
            finally:
                stop.set()
                for thread in load:
                    thread.join()
    rows = summarise("quiet", quiet) + summarise(
        f"{SLOW_UPLOADS} slow uploads + {connectors:,}-connector tenant reading 90 days", loaded
    )
    rows.append(_load_row("(load) big tenant's 90-day reports", "its own reads", reports))
    rows.append(_load_row("(load) slow uploads ended", "answer to the attacker", uploads))
    return rows


def _load_row(phase: str, probe: str, load: Outcomes) -> Row:
    """A row of the load's own answers: their times, and their statuses counted."""
    times = sorted(load.seconds)
    return {"phase": phase, "probe": probe, "requests": len(times), "p50 ms": _ms(times, 0.5),
            "p95 ms": _ms(times, 0.95),
            "max ms": round(times[-1] * 1000, 1) if times else None,
            "200 within 2 s": "statuses " + _counts(load.counts)}  # fmt: skip


def _counts(counts: Counter[str]) -> str:
    return ", ".join(f"{status}: {n}" for status, n in sorted(counts.items()))


def main() -> None:
    from bench.__main__ import markdown_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s under load instead of 30 s")
    args = parser.parse_args()
    rows = isolation(seconds=10 if args.quick else 30, quiet_seconds=5 if args.quick else 10)
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
