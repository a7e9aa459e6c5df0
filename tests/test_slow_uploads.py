"""Slow uploads under gunicorn: one tenant sending bodies byte by byte must neither hold a web
thread for longer than the body read timeout nor keep another tenant's reads waiting."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime

import pytest

from service.store import health
from service.web.body_reads import BodySlots, body_slots_for
from service.web.errors import Problem
from tests.helpers import gunicorn_server

SNAPSHOT = "/api/v1/mailflow/snapshot"
BODY_TIMEOUT_SECONDS = 3


def slow_upload(base: str, key: str) -> socket.socket:
    """Headers and the first byte of a declared 100 kB body, then nothing."""
    port = int(base.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        b"POST /api/v1/traces HTTP/1.1\r\nHost: localhost\r\n"
        + f"Authorization: Bearer {key}\r\n".encode()
        + b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n["
    )
    return sock


def timed_get(url: str, key: str | None = None) -> tuple[int, float]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    started = time.monotonic()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=3) as response:  # fmt: skip
            status = response.status
    except urllib.error.HTTPError as error:
        with error:
            status = error.code
    except TimeoutError:
        status = 0
    return status, time.monotonic() - started


def post_traces(base: str, key: str, times: int) -> list[int]:
    connection = http.client.HTTPConnection(base.removeprefix("http://"), timeout=3)
    body = json.dumps([{"timestamp": datetime.now(UTC).isoformat(), "direction": "inbound",
                        "tls_version": "TLS1.2"}])  # fmt: skip
    statuses = []
    try:
        for _ in range(times):
            connection.request("POST", "/api/v1/traces", body=body,
                               headers={"Authorization": f"Bearer {key}",
                                        "Content-Type": "application/json"})  # fmt: skip
            with connection.getresponse() as response:
                response.read()
                statuses.append(response.status)
    finally:
        connection.close()
    return statuses


def read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (or resets) the connection."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


@pytest.fixture
def server(redis_server, tmp_path) -> Iterator[str]:
    with gunicorn_server(redis_server.url, tmp_path / "gunicorn.log", web_workers="1", web_threads="4",
                         body_read_timeout_seconds=str(BODY_TIMEOUT_SECONDS)) as base:  # fmt: skip
        yield base


def test_slow_uploads_of_one_tenant_leave_other_tenants_served(server, make_key, redis_client):
    health.claim_instance(redis_client, None)  # /readyz: the store is initialised
    health.beat(redis_client, "a-worker", time.time())  # and a worker is alive
    slow_key = make_key("slowpoke", "ingest")
    reader_key = make_key("bystander", "read")
    with ExitStack() as stack:
        uploads = [stack.enter_context(slow_upload(server, slow_key)) for _ in range(16)]
        started = time.monotonic()
        results = [timed_get(server + SNAPSHOT, reader_key) for _ in range(5)]
        results.append(timed_get(server + "/readyz"))
        assert [status for status, _ in results] == [200] * 6
        assert max(seconds for _, seconds in results) < 2.0, results
        # Another tenant's uploads still go through, twice on one kept-alive connection.
        assert post_traces(server, make_key("shipper", "ingest"), times=2) == [202, 202]

        # Every slow upload ends: refused at once for being one too many, or cut off at the
        # body read timeout; none keeps its thread (or its connection) any longer.
        answers = [read_answer(sock) for sock in uploads]
        assert time.monotonic() - started < BODY_TIMEOUT_SECONDS + 3
    statuses = [answer.split(b" ", 2)[1] for answer in answers if answer]
    assert statuses and set(statuses) <= {b"408", b"429"}, answers
    assert b"408" in statuses and b"429" in statuses
    for answer in answers:
        if answer:
            head, _, body = answer.partition(b"\r\n\r\n")
            assert b"application/problem+json" in head
            assert json.loads(body)["status"] in (408, 429)
            if b" 429 " in head.split(b"\r\n")[0]:
                assert b"Retry-After:" in head


def test_a_trickled_body_is_cut_off_at_the_read_timeout(server, make_key):
    """A byte every half second never lets a socket timeout fire; the deadline still does."""
    key = make_key("trickler", "ingest")
    started = time.monotonic()
    with slow_upload(server, key) as sock:
        sock.settimeout(0.5)
        answer = b""
        while not answer and time.monotonic() - started < BODY_TIMEOUT_SECONDS + 3:
            try:
                sock.sendall(b" ")
                answer = sock.recv(65536)
                sock.settimeout(3)
                answer += read_answer(sock)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert BODY_TIMEOUT_SECONDS - 0.5 < elapsed < BODY_TIMEOUT_SECONDS + 1.5
    assert b'"type":"/problems/body-timeout"' in answer


def test_body_slots_refuse_past_slow_holders_and_wait_for_fast_ones():
    slots = BodySlots(total=2, per_tenant=1, grace_seconds=0.0)  # every holder counts as slow
    held = slots.take("a")
    assert isinstance(held, float)
    refused = slots.take("a")
    assert isinstance(refused, Problem) and refused.code == 429
    assert refused.fields["headers"]["Retry-After"] == "1"
    other = slots.take("b")
    assert isinstance(other, float)
    busy = slots.take("c")
    assert isinstance(busy, Problem) and busy.code == 503

    # A young holder (a fast upload of the same tenant): the next one waits for its slot.
    slots = BodySlots(total=2, per_tenant=1, grace_seconds=30.0)
    first = slots.take("a")
    assert isinstance(first, float)
    taken: list[float | Problem] = []
    waiter = threading.Thread(target=lambda: taken.append(slots.take("a")))
    waiter.start()
    slots.give_back("a", first)
    waiter.join(10)
    assert len(taken) == 1 and isinstance(taken[0], float)


def test_body_slots_leave_a_thread_for_requests_without_a_body():
    assert (body_slots_for(4, 0).total, body_slots_for(4, 0).per_tenant) == (3, 2)
    assert (body_slots_for(1, 0).total, body_slots_for(1, 0).per_tenant) == (1, 1)
    assert body_slots_for(8, 5).per_tenant == 5
