"""TLS-RPT intake: reports per second POSTed to a tenant's intake URL (as reporters send them:
application/tlsrpt+gzip, no Authorization header), each read, checked and counted once; then
the same reports again, which must all come back as duplicates and change no counter."""

from __future__ import annotations

import gzip
import http.client
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

import orjson

from bench.harness import gunicorn, median, redis_stack
from service.core.tlsrpt import INTAKE_PATH
from service.store import tlsrpt_store, tlsrpt_tokens


def make_reports(total: int, day: datetime) -> list[bytes]:
    """``total`` distinct reports of two policies and three failure details each (the shape of
    a large provider's daily report), gzip'd as sent."""
    start = day.strftime("%Y-%m-%dT00:00:00Z")
    end = day.strftime("%Y-%m-%dT23:59:59Z")
    bodies = []
    for n in range(total):
        report = {
            "organization-name": f"Sender {n % 50}", "contact-info": "tls@sender.example",
            "date-range": {"start-datetime": start, "end-datetime": end},
            "report-id": f"bench-{n}",
            "policies": [{
                "policy": {"policy-type": "sts", "policy-domain": f"d{(n + p) % 20}.example",
                           "policy-string": ["version: STSv1", "mode: enforce",
                                             f"mx: mx.d{(n + p) % 20}.example", "max_age: 86400"],
                           "mx-host": [f"mx.d{(n + p) % 20}.example"]},
                "summary": {"total-successful-session-count": 1000 + n,
                            "total-failure-session-count": 3},
                "failure-details": [
                    {"result-type": kind, "sending-mta-ip": "192.0.2.1",
                     "receiving-mx-hostname": f"mx.d{(n + p) % 20}.example",
                     "receiving-ip": "198.51.100.7", "failed-session-count": 1}
                    for kind in ("certificate-expired", "starttls-not-supported",
                                 "validation-failure")],
            } for p in range(2)],
        }  # fmt: skip
        bodies.append(gzip.compress(orjson.dumps(report)))
    return bodies


def post_all(url: str, bodies: list[bytes], threads: int) -> dict[str, int]:
    parsed = urlparse(url)
    queue = list(bodies)
    lock = threading.Lock()
    outcomes: dict[str, int] = {}

    def send() -> None:
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        headers = {"Content-Type": "application/tlsrpt+gzip"}
        while True:
            with lock:
                if not queue:
                    break
                body = queue.pop()
            connection.request("POST", parsed.path, body, headers)
            response = connection.getresponse()
            answer = response.read()
            outcome = orjson.loads(answer).get("outcome") if response.status == 202 else None
            with lock:
                key = str(outcome or response.status)
                outcomes[key] = outcomes.get(key, 0) + 1
        connection.close()

    pool = [threading.Thread(target=send) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return outcomes


def intake_rate(total: int, web_workers: int = 2, runs: int = 3) -> dict[str, float]:
    day = datetime.now(UTC) - timedelta(days=1)
    rates, again_rates = [], []
    for _ in range(runs):
        bodies = make_reports(total, day)
        with redis_stack() as stack:
            _, token = tlsrpt_tokens.create(stack.client, "bench", "bench", datetime.now(UTC))
            with gunicorn("service.wsgi:app", stack.env, workers=web_workers) as url:
                intake = url + INTAKE_PATH + token
                started = time.perf_counter()
                first = post_all(intake, bodies, threads=web_workers * 2)
                counted_at = time.perf_counter()
                counters = tlsrpt_store.read_days(stack.client, "bench", [day.date().isoformat()])
                again = post_all(intake, bodies, threads=web_workers * 2)
                done = time.perf_counter()
                if first != {"counted": total} or again != {"duplicate": total}:
                    raise RuntimeError(f"intake answered {first} then {again}")
                if tlsrpt_store.read_days(stack.client, "bench",
                                          [day.date().isoformat()]) != counters:  # fmt: skip
                    raise RuntimeError("posting the reports again changed the counters")
        rates.append(total / (counted_at - started))
        again_rates.append(total / (done - counted_at))
    return {"reports_per_second": median(rates), "duplicates_per_second": median(again_rates)}
