"""End-to-end ingest: traces/s through HTTP into the daily counters, and the fold rate alone."""

from __future__ import annotations

import http.client
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

import orjson

from bench.harness import Stack, gunicorn, make_key, median, redis_stack, workers
from service.config import Settings
from service.core.tls import TLS_VERSIONS
from service.core.traces import IngestWindow, normalize_trace
from service.store import aggregates
from service.store import traces as trace_store
from service.store.traces import DedupeWindow
from service.worker.loop import Worker

BATCH = 5000
CONNECTORS = [None] * 6 + [f"Partner {i}" for i in range(20)] + [f"Site {i}" for i in range(10)]


# MAILFLOW_BENCH_WHO: "domains" gives every trace one of 20,000 remote domains (and a remote
# host), "users" also one of 2,000 SMTP AUTH users: ingest with the per-domain and per-user
# counters busy (docs/domains.md); "realistic" one of 300 domains and one of 30 users, each
# trace's connector and TLS version drawn independently of them (nearly every trace a new
# counter field: the per-name counters' bad case). "every" turns every dimension on as mail
# has them: one of 300 domains and of 30 SMTP AUTH users on every trace, a transport security
# class, and per domain (and user) its own route, TLS version and policy (``EVERY_MIX``).
# Unset: one domain for all, as before.
WHO_SIZES = {"domains": (20_000, 0), "users": (20_000, 2_000), "realistic": (300, 30),
             "every": (300, 30)}  # fmt: skip
# The "every" mix: a domain's mail takes one route (connector) and its servers negotiate one TLS
# version, with EVERY_MIX["other_version"] of its messages at another (a second server, a
# fallback); a user's client one version likewise. Policies per domain: DANE, MTA-STS or
# opportunistic TLS, in these shares.
# Live ingest: a shipper following the logs sends mail of the last minutes.
LIVE_SPREAD_S = 600.0
EVERY_MIX = {"other_version": 0.1, "policies": (("dane", 0.1), ("mta-sts", 0.2), ("may", 0.7))}


def make_bodies(total: int, seed: int, prefix: str, who: str | None = None,
                spread_s: float = 6 * 86400) -> list[bytes]:  # fmt: skip
    """``total`` traces in batches of ``BATCH``, as JSON bodies, their times within the last
    ``spread_s`` seconds; ``who`` (default: the environment's ``MAILFLOW_BENCH_WHO``) picks
    their remote domains and users."""
    import os

    who = os.environ.get("MAILFLOW_BENCH_WHO", "") if who is None else who
    rng = random.Random(seed)
    now = datetime.now(UTC)
    bodies = []
    for start in range(0, total, BATCH):
        batch = []
        for i in range(start, min(start + BATCH, total)):
            connector = rng.choice(CONNECTORS)
            trace = {
                "id": f"{prefix}-{i}",
                "timestamp": (now - timedelta(seconds=rng.uniform(0, spread_s))).isoformat(),
                "direction": rng.choice(("inbound", "outbound")),
                "connector": connector,
                "tls_version": rng.choice(TLS_VERSIONS),
                "sender_domain": "example.org",
                "remote_ip": "192.0.2.7",
            }
            if connector:
                trace["connector_type"] = "partner" if connector.startswith("P") else "onpremises"
            domains, users = WHO_SIZES.get(who, (0, 0))
            if domains:
                domain = f"partner{rng.randrange(domains)}.example"
                trace["recipient_domain" if trace["direction"] == "outbound"
                      else "sender_domain"] = domain  # fmt: skip
                trace["remote_host"] = f"mx.{domain}"
            if users:
                trace["auth_user"] = f"user{rng.randrange(users)}@example.com"
            if who == "every":
                every_dimension(trace, rng)
            batch.append(trace)
        bodies.append(orjson.dumps(batch))
    return bodies


def every_dimension(trace: dict, rng: random.Random) -> None:
    """``trace`` (with its domain and user) given its domain's route, TLS version and policy,
    as ``EVERY_MIX`` says: each name's profile is drawn from a generator seeded by the name, so
    it is the same in every batch and run."""
    domain = trace["recipient_domain" if trace["direction"] == "outbound" else "sender_domain"]
    profile = random.Random(domain)
    connector = profile.choice(CONNECTORS)
    trace["connector"] = connector
    trace.pop("connector_type", None)
    if connector:
        trace["connector_type"] = "partner" if connector.startswith("P") else "onpremises"
    home = profile.choice(TLS_VERSIONS[:4])  # the versions servers still negotiate
    # The user's client decides the version of a submission; the domain's servers the rest.
    if trace["direction"] == "outbound" and trace.get("auth_user"):
        home = random.Random(trace["auth_user"]).choice(TLS_VERSIONS[:4])
    other = rng.random() < EVERY_MIX["other_version"]
    trace["tls_version"] = rng.choice(TLS_VERSIONS) if other else home
    draw, policy = profile.random(), "may"
    for name, share in EVERY_MIX["policies"]:
        if draw < share:
            policy = name
            break
        draw -= share
    if trace["tls_version"] != "none":
        trace["tls_policy"] = policy
        trace["tls_auth"] = "verified" if policy != "may" else "anonymous"


def counted(stack: Stack, tenant: str) -> int:
    today = datetime.now(UTC).date()
    days = [(today - timedelta(days=i)).isoformat() for i in range(8)]
    snapshot = aggregates.read_counters(stack.client, tenant, days)
    return sum(sum(day.values()) for day in snapshot.days.values())


def post_all(url: str, key: str, bodies: list[bytes], threads: int) -> None:
    parsed = urlparse(url)
    queue = list(bodies)
    lock = threading.Lock()
    errors: list[str] = []

    def send() -> None:
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        while True:
            with lock:
                if not queue:
                    return
                body = queue.pop()
            connection.request("POST", "/api/v1/traces", body, headers)
            response = connection.getresponse()
            response.read()
            if response.status != 202:
                errors.append(str(response.status))

    pool = [threading.Thread(target=send) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if errors:
        raise RuntimeError(f"ingest failed: {errors[:5]}")


def end_to_end(total: int, web_workers: int = 2, fold_workers: int = 1, runs: int = 3) -> dict:
    return end_to_end_on((None,), total, web_workers, fold_workers, runs)[None]


def end_to_end_on(servers: tuple[str | None, ...], total: int, web_workers: int = 2,
                  fold_workers: int = 1, runs: int = 3) -> dict[str | None, dict]:  # fmt: skip
    """``end_to_end`` on each embedded server (None: the configured one), the servers taking
    turns run by run so that the machine's noise hits them alike."""
    rates: dict[str | None, list[float]] = {server: [] for server in servers}
    accept_rates: dict[str | None, list[float]] = {server: [] for server in servers}
    for run in range(runs):
        bodies = make_bodies(total, seed=run, prefix=f"e2e{run}")
        for server in servers:
            rate, accept_rate = _end_to_end_once(bodies, total, server, web_workers, fold_workers)
            rates[server].append(rate)
            accept_rates[server].append(accept_rate)
    return {server: {"traces_per_second": median(rates[server]),
                     "accept_per_second": median(accept_rates[server]),
                     "runs": runs, "traces": total} for server in servers}  # fmt: skip


def end_to_end_mixes(mixes: tuple[str, ...], total: int, runs: int = 3,
                     spread_s: float = LIVE_SPREAD_S) -> dict[str, dict]:  # fmt: skip
    """``end_to_end`` of each ``MAILFLOW_BENCH_WHO`` mix on the configured server, the mixes
    taking turns run by run (the same noise for all), each run's traces new to its stack and
    timed within the last ``spread_s`` seconds."""
    rates: dict[str, list[float]] = {mix: [] for mix in mixes}
    for run in range(runs):
        for mix in mixes:
            bodies = make_bodies(total, seed=run, prefix=f"mix{run}", who=mix, spread_s=spread_s)
            rates[mix].append(_end_to_end_once(bodies, total, None, 2, 1)[0])
    return {mix: {"traces_per_second": median(rates[mix]), "runs": runs, "traces": total}
            for mix in mixes}  # fmt: skip


def _end_to_end_once(bodies: list[bytes], total: int, server: str | None, web_workers: int,
                     fold_workers: int) -> tuple[float, float]:  # fmt: skip
    """(traces/s until the counters hold all ``total`` traces of ``bodies``, traces/s until the
    API accepted them), both from the first POST."""
    with redis_stack(server_name=server) as stack:
        key = make_key(stack)
        with gunicorn("service.wsgi:app", stack.env, workers=web_workers) as url, \
             workers(stack.env, fold_workers):  # fmt: skip
            started = time.perf_counter()
            post_all(url, key, bodies, threads=web_workers * 2)
            accepted_at = time.perf_counter()
            while counted(stack, "bench") < total:
                time.sleep(0.01)
            done = time.perf_counter()
    return total / (done - started), total / (accepted_at - started)


def fold_rate(total: int, runs: int = 3) -> dict:
    """The worker alone: traces already in the stream, folded by one burst worker."""
    return fold_rate_on((None,), total, runs)[None]


def fold_rate_on(servers: tuple[str | None, ...], total: int, runs: int = 3) -> dict:
    """``fold_rate`` on each embedded server (None: the configured one), taking turns."""
    rates: dict[str | None, list[float]] = {server: [] for server in servers}
    for run in range(runs):
        for server in servers:
            rates[server].append(fold_once(total, run, server))
    return {server: {"traces_per_second": median(rates[server]), "runs": runs, "traces": total}
            for server in servers}  # fmt: skip


def fold_once(total: int, run: int, server: str | None) -> float:
    """One burst worker's fold of ``total`` traces put in the stream beforehand: traces/s."""
    with redis_stack(server_name=server) as stack:
        now = datetime.now(UTC)
        window = IngestWindow.at(now, 90)
        trace_store.register_tenant(stack.client, "bench")
        for body in make_bodies(total, seed=run, prefix=f"fold{run}"):
            accepted = [normalize_trace(t, window) for t in orjson.loads(body)]
            trace_store.ingest(stack.client, "bench", accepted, DedupeWindow(now, 7))
        worker = Worker(stack.client, Settings(redis_url=stack.redis_url))
        started = time.perf_counter()
        worker.work(burst=True)
        elapsed = time.perf_counter() - started
        assert counted(stack, "bench") == total
    return total / elapsed


def off_the_batch_path(bodies: list[bytes], kind: str, known: dict) -> list[bytes]:
    """The batches as a shipper's retry or an odd log line makes them: each with one trace
    accepted before (``kind`` "duplicate": the store's exact path) or one id holding a quote,
    escaped in the JSON ("escape": the API's exact path); "none": as they are."""
    changed = []
    for body in bodies:
        traces = orjson.loads(body)
        if kind == "duplicate":
            traces[-1] = known
        elif kind == "escape":
            traces[0]["id"] += '"'
        changed.append(orjson.dumps(traces))
    return changed


def exact_path(total: int, kind: str, web_workers: int = 2, runs: int = 3) -> dict:
    """``end_to_end`` of batches that each leave the all-valid, all-new path at one trace
    (``off_the_batch_path``): every shipper retry is such a batch."""
    rates = []
    for run in range(runs):
        (first,) = make_bodies(1, seed=99, prefix=f"known{run}")
        known = orjson.loads(first)[0]
        bodies = off_the_batch_path(make_bodies(total, seed=run, prefix=f"x{run}"), kind, known)
        # The known trace, and every trace of the batches but the repeated ones.
        expected = 1 + total - (len(bodies) if kind == "duplicate" else 0)
        with redis_stack() as stack:
            key = make_key(stack)
            with gunicorn("service.wsgi:app", stack.env, workers=web_workers) as url, \
                 workers(stack.env, 1):  # fmt: skip
                post_all(url, key, [first], threads=1)
                while counted(stack, "bench") < 1:
                    time.sleep(0.01)
                started = time.perf_counter()
                post_all(url, key, bodies, threads=web_workers * 2)
                while counted(stack, "bench") < expected:
                    time.sleep(0.01)
                done = time.perf_counter()
                assert counted(stack, "bench") == expected
        rates.append(total / (done - started))
    return {"traces_per_second": median(rates), "runs": runs, "traces": total, "kind": kind}


if __name__ == "__main__":
    print("fold only", fold_rate(200_000))
    print("end to end", end_to_end(300_000))


def log_into_service(messages: int) -> dict:
    """`mailflow ingest` of a generated Postfix log into a running service, until counted."""
    import os
    import subprocess
    import sys
    import tempfile

    from service.ingest.synthetic import postfix_lines

    start_at = datetime.now(UTC) - timedelta(hours=messages / 3600 + 1)
    with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as log:
        lines = 0
        for line in postfix_lines(messages, start_at):
            log.write(line)
            lines += 1
    try:
        with redis_stack() as stack:
            key = make_key(stack)
            with gunicorn("service.wsgi:app", stack.env) as url, workers(stack.env, 1):
                env = dict(os.environ, MAILFLOW_URL=url, MAILFLOW_KEY=key)
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "service.cli", "ingest", log.name,
                                "--format", "postfix", "--no-progress"], env=env, check=True,
                               stderr=subprocess.DEVNULL)  # fmt: skip
                sent_at = time.perf_counter()
                while stack.client.xlen(keys_stream("bench")):
                    time.sleep(0.01)
                total = counted(stack, "bench")
                done = time.perf_counter()
    finally:
        os.unlink(log.name)
    return {"what": "mailflow ingest of a generated log into a running service, until counted",
            "lines": lines, "median_s": round(done - started, 2),
            "lines_per_s": round(lines / (done - started)), "traces": total,
            "note": f"traces/s {total / (done - started):,.0f}; sending done at "
                    f"{sent_at - started:.2f} s"}  # fmt: skip


def keys_stream(tenant: str) -> str:
    from service.store import keys

    return keys.stream(tenant)
