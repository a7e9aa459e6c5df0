"""The batched sender: body format, retries with Retry-After, 413 splitting, refusals."""

from __future__ import annotations

import gzip
import json

import pytest

from service.ingest.client import SendError, TraceSender


class FakeTransport:
    """Answers from a script of (status, headers, body) and records every request."""

    def __init__(self, answers) -> None:  # type: ignore[no-untyped-def]
        self.answers = list(answers)
        self.requests: list[tuple[str, list[dict], dict]] = []  # type: ignore[type-arg]

    def post(self, path, body, headers):  # type: ignore[no-untyped-def]
        traces = [json.loads(line) for line in gzip.decompress(body).splitlines()]
        self.requests.append((path, traces, headers))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(traces)
        return answer

    def close(self) -> None:
        pass


def ok(traces):  # type: ignore[no-untyped-def]
    body = {"accepted": len(traces), "duplicates": 0, "rejected": 0, "errors": []}
    return 202, {}, json.dumps(body).encode()


def traces(n: int) -> list[dict]:  # type: ignore[type-arg]
    return [{"id": f"t{i}", "direction": "inbound", "tls_version": "none"} for i in range(n)]


def test_batches_are_gzip_ndjson_with_bearer_key() -> None:
    t = FakeTransport([ok, ok, ok])
    s = TraceSender(t, "secret", batch_size=2)
    s.add(traces(5))
    assert len(t.requests) == 2  # full batches go out as soon as they are full
    s.close()
    assert [len(r[1]) for r in t.requests] == [2, 2, 1]
    path, sent, headers = t.requests[0]
    assert path == "/api/v1/traces"
    assert headers["Authorization"] == "Bearer secret"
    assert headers["Content-Type"] == "application/x-ndjson"
    assert headers["Content-Encoding"] == "gzip"
    assert sent[0]["id"] == "t0"
    assert s.stats.accepted == 5 and s.stats.batches == 3


def test_retry_after_and_backoff() -> None:
    slept: list[float] = []
    t = FakeTransport(
        [(503, {"retry-after": "7"}, b""), OSError("connection reset"), (429, {}, b""), ok]
    )
    s = TraceSender(t, "k", sleep=slept.append, jitter=lambda: 1.0)
    s.add(traces(3))
    s.flush()
    assert slept[0] == 7.0  # the server's Retry-After wins
    assert slept[1:] == [1.0, 2.0]  # then exponential backoff
    assert s.stats.retries == 3 and s.stats.accepted == 3 and s.stats.failed == 0
    # Every attempt carried the same ids: the API's dedupe makes the retries harmless.
    assert {tuple(x["id"] for x in r[1]) for r in t.requests} == {("t0", "t1", "t2")}


def test_gives_up_after_max_retries() -> None:
    t = FakeTransport([(503, {}, b"")] * 3)
    s = TraceSender(t, "k", max_retries=2, sleep=lambda _: None)
    s.add(traces(4))
    s.flush()
    assert s.stats.failed == 4
    assert "gave up" in s.stats.errors[0]["message"]


def test_413_halves_the_batch() -> None:
    too_big = (413, {}, b'{"title": "Payload Too Large"}')
    t = FakeTransport([too_big, ok, ok])
    s = TraceSender(t, "k")
    s.add(traces(4))
    s.flush()
    assert [len(r[1]) for r in t.requests] == [4, 2, 2]
    assert s.stats.accepted == 4


def test_partial_rejections_and_422() -> None:
    partial = (
        202,
        {},
        json.dumps(
            {
                "accepted": 1,
                "duplicates": 1,
                "rejected": 1,
                # NDJSON records are numbered by line from 1: line 3 is the third trace.
                "errors": [{"index": 3, "field": "timestamp", "message": "too old"}],
            }
        ).encode(),
    )
    nothing = (422, {}, b'{"title": "Unprocessable", "detail": "no acceptable trace"}')
    t = FakeTransport([partial, nothing])
    s = TraceSender(t, "k", batch_size=3)
    s.add(traces(6))
    s.flush()
    assert (s.stats.accepted, s.stats.duplicates, s.stats.rejected) == (1, 1, 4)
    assert s.stats.errors[0] == {"index": 2, "field": "timestamp", "message": "too old"}
    assert s.stats.errors[1]["index"] == 3  # indexes count across the whole run
    assert "no acceptable trace" in s.stats.errors[1]["message"]


def test_bad_key_is_fatal() -> None:
    t = FakeTransport([(401, {}, b'{"title": "Unauthorized", "detail": "unknown key"}')])
    s = TraceSender(t, "wrong")
    with pytest.raises(SendError, match="unknown key"):
        s.add(traces(1))
        s.flush()


def test_keep_retrying_never_gives_up_and_backoff_stays_capped() -> None:
    # A day-long outage: more retries than 2**attempt survives as a float.
    t = FakeTransport([OSError("Connection refused")] * 1_500 + [ok])
    slept: list[float] = []
    warned: list[str] = []
    s = TraceSender(t, "k", max_retries=2, keep_retrying=True, sleep=slept.append,
                    jitter=lambda: 1.0, warn=warned.append, target="http://api")  # fmt: skip
    s.add(traces(2))
    s.flush()
    assert (s.stats.failed, s.stats.accepted, s.stats.retries) == (0, 2, 1_500)
    assert max(slept) == 60.0 and sum(slept) > 24 * 3600
    assert len(warned) == 2  # one line when the outage starts, one when it ends
    assert "http://api cannot be reached (Connection refused)" in warned[0]
    assert "answered again after 1500 failed attempts" in warned[1]


def test_a_stop_request_ends_the_retrying_and_counts_what_was_not_sent() -> None:
    t = FakeTransport([(503, {}, b"")] * 10)
    stop = {"now": False}
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        stop["now"] = len(slept) == 3  # SIGTERM arrives during the third second of waiting

    s = TraceSender(t, "k", batch_size=2, keep_retrying=True, sleep=sleep,
                    jitter=lambda: 1.0, should_stop=lambda: stop["now"])  # fmt: skip
    s.add(traces(3))  # the full batch of 2 is retried until the stop
    s.flush()  # the last trace: one try, no retries, once stopping
    assert slept == [0.5, 1.0, 1.0]  # waits are cut in slices of at most a second
    assert (s.stats.failed, s.stats.accepted) == (3, 0)
    assert [e["message"] for e in s.stats.errors] == ["stopped: HTTP 503"] * 2


class GatedTransport(FakeTransport):
    """Holds every post until the test lets it through, and notes how many were in flight."""

    def __init__(self, answers) -> None:  # type: ignore[no-untyped-def]
        super().__init__(answers)
        import threading

        self.arrived = threading.Semaphore(0)
        self.release = threading.Semaphore(0)
        self.in_flight = 0
        self.most_in_flight = 0

    def post(self, path, body, headers):  # type: ignore[no-untyped-def]
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.arrived.release()
        assert self.release.acquire(timeout=10), "the test never let the post through"
        try:
            return super().post(path, body, headers)
        finally:
            self.in_flight -= 1


def test_in_background_the_next_batch_is_built_while_one_is_posted() -> None:
    t = GatedTransport([ok, ok, ok])
    s = TraceSender(t, "k", batch_size=2, post_in_background=True)
    s.add(traces(2))
    assert t.arrived.acquire(timeout=10)  # the first batch is being posted ...
    s.add(traces(1))  # ... and the caller goes on reading meanwhile
    assert s.buffered == 1 and s.stats.batches == 0
    for _ in range(3):
        t.release.release()
    s.add(traces(2))
    s.close()
    assert t.most_in_flight == 1  # one at a time, in order
    assert [[x["id"] for x in r[1]] for r in t.requests] == [["t0", "t1"], ["t0", "t0"], ["t1"]]
    assert s.stats.accepted == 5 and s.stats.batches == 3


def test_in_background_a_refusal_reaches_the_caller_at_the_next_batch() -> None:
    t = FakeTransport([(401, {}, b'{"title": "Unauthorized", "detail": "unknown key"}'), ok])
    s = TraceSender(t, "wrong", batch_size=1, post_in_background=True)
    s.add(traces(1))  # posted in the background: the refusal is not known yet
    with pytest.raises(SendError, match="unknown key"):
        s.add(traces(1))
    assert len(t.requests) == 1 and s.stats.sent == 0  # the second batch was never posted
    s.flush()  # the error was handed over once; nothing is left in flight
