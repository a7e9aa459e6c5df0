"""Sending traces to `POST /api/v1/traces`: gzip'd NDJSON batches, retried with backoff.

Retrying is safe because every trace carries a stable id: a batch that reached Redis before
the connection broke comes back as duplicates, not as double counts. HTTP itself is in
`service.ingest.http` (standard library only).

Nothing is dropped silently: a one-shot run gives a batch up after `max_retries` and counts it
in `failed`, which the command reports and turns into its exit status; a followed log
(`keep_retrying`) never gives up, since the log cannot be read again later the way a file can,
and holding the batch stops the reading (the log itself is the spool). The first failure of
an outage is reported at once through `warn`, and so is the recovery.
"""

from __future__ import annotations

import gzip
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from service.ingest.errors import SendError
from service.ingest.traces import Trace

__all__ = ["SendError", "SendStats", "TraceSender", "Transport"]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_ERRORS_KEPT = 100  # error details kept for the summary; counts are always complete
MAX_REASONS = 100  # distinct error reasons counted one by one
STOP_CHECK_SECONDS = 1.0  # a stop request ends a backoff wait within this long


class Transport(Protocol):
    """One HTTP POST; returns (status, lower-cased headers, body). Raises OSError on I/O."""

    def post(
        self, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict, bytes]: ...  # pragma: no cover

    def close(self) -> None: ...  # pragma: no cover


@dataclass
class SendStats:
    sent: int = 0  # traces the API answered for (accepted + duplicates + rejected)
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed: int = 0  # traces given up on after all retries (or when asked to stop): not delivered
    batches: int = 0
    retries: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    # Every error, grouped by its reason (field, message) -> [traces, first trace index]: the
    # summary names each reason once, with how many traces it refused, however many there are.
    reasons: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    other_reasons: int = 0  # errors whose reason came after MAX_REASONS others

    def note_error(self, error: dict[str, Any]) -> None:
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(error)
        reason = (str(error.get("field") or ""), str(error.get("message")))
        found = self.reasons.get(reason)
        if found is not None:
            found[0] += 1
        elif len(self.reasons) < MAX_REASONS:
            index = error.get("index")
            self.reasons[reason] = [1, index if isinstance(index, int) else -1]
        else:
            self.other_reasons += 1


class TraceSender:
    """Collects traces and posts them in batches of `batch_size`.

    `keep_retrying` (follow mode) retries a batch until the API takes it, with backoff capped
    at `max_backoff`; otherwise a batch is given up after `max_retries`. `should_stop` (a
    signal's flag) ends the retrying: the batch in hand and any later one that the API does
    not take at the first try are counted as failed. `warn` gets one line when an outage
    starts and one when it ends; `target` names the API in them.
    """

    def __init__(
        self,
        transport: Transport,
        key: str,
        batch_size: int = 5000,
        max_retries: int = 8,
        max_backoff: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        keep_retrying: bool = False,
        should_stop: Callable[[], bool] | None = None,
        warn: Callable[[str], None] = lambda _: None,
        target: str = "the API",
        post_in_background: bool = False,
    ) -> None:
        self.transport = transport
        self.key = key
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.max_backoff = max_backoff
        self.sleep = sleep
        self.jitter = jitter
        self.keep_retrying = keep_retrying
        self.should_stop = should_stop
        self.warn = warn
        self.target = target
        self.stats = SendStats()
        self._buffer: list[Trace] = []
        self._index = 0  # position of the next trace in the whole run, for error reports
        self._outage_failures = 0  # failed attempts since the API last answered
        # With post_in_background one batch is posted (and retried) by a thread while the
        # caller reads on and builds the next: the log is parsed while the API works. Never
        # more than one in flight, so batches keep their order and memory stays at two
        # batches; the next batch, flush() and close() wait for it and raise what it raised.
        self.post_in_background = post_in_background
        self._in_flight: threading.Thread | None = None
        self._in_flight_error: BaseException | None = None

    def add(self, traces: list[Trace]) -> None:
        self._buffer.extend(traces)
        while len(self._buffer) >= self.batch_size:
            batch = self._buffer[: self.batch_size]
            del self._buffer[: self.batch_size]
            self._send(batch)

    def flush(self) -> None:
        """Send what is buffered, even a partial batch (end of input, or idle in follow mode),
        and wait until the API has answered for all of it."""
        if self._buffer:
            batch, self._buffer = self._buffer, []
            self._send(batch)
        self._wait_in_flight()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def _send(self, batch: list[Trace]) -> None:
        start = self._index
        self._index += len(batch)
        if not self.post_in_background:
            self._post_batch(batch, start)
            return
        self._wait_in_flight()
        self._in_flight = threading.Thread(
            target=self._post_in_background, args=(batch, start), name="mailflow-post", daemon=True
        )
        self._in_flight.start()

    def _post_in_background(self, batch: list[Trace], start: int) -> None:
        try:
            self._post_batch(batch, start)
        except BaseException as exc:  # handed to the caller's thread by _wait_in_flight
            self._in_flight_error = exc

    def _wait_in_flight(self) -> None:
        if self._in_flight is not None:
            self._in_flight.join()
            self._in_flight = None
        if self._in_flight_error is not None:
            error, self._in_flight_error = self._in_flight_error, None
            raise error

    def _post_batch(self, batch: list[Trace], start: int) -> None:
        body = gzip.compress(b"\n".join(orjson.dumps(t) for t in batch) + b"\n", compresslevel=5)
        headers = {
            "Content-Type": "application/x-ndjson",
            "Content-Encoding": "gzip",
            "Authorization": f"Bearer {self.key}",
            "Accept": "application/json",
        }
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                status, resp_headers, data = self.transport.post("/api/v1/traces", body, headers)
            except OSError as exc:
                status, resp_headers, data = 0, {}, str(exc).encode()
            if status != 0 and status not in RETRY_STATUSES:
                self._recovered()  # an answer, whatever it says, ends an outage
            if status == 202:
                self._count(_json(data), len(batch), start)
                return
            if status == 413 and len(batch) > 1:
                # Over the server's limits: halve until it fits (ids keep this idempotent).
                half = len(batch) // 2
                self._post_batch(batch[:half], start)
                self._post_batch(batch[half:], start + half)
                return
            if status in (413, 422, 400):
                # Nothing in the batch is acceptable; retrying would not change that.
                self.stats.batches += 1
                self.stats.sent += len(batch)
                self.stats.rejected += len(batch)
                problem = _json(data)
                if not problem.get("errors"):
                    # No trace named: the batch's own reason (unreadable, over the limits).
                    # Otherwise each trace's reason says it all (a 422 names every trace).
                    self.stats.note_error(
                        {
                            "index": start,
                            "field": None,
                            "message": f"HTTP {status}: batch of {len(batch)} refused: "
                            + str(
                                problem.get("detail") or problem.get("title") or _body_excerpt(data)
                            ),
                        }
                    )
                self._note_errors(problem, start)
                return
            if status in (401, 403, 404, 405):
                problem = _json(data)
                detail = problem.get("detail") or problem.get("title") or _body_excerpt(data)
                raise SendError(f"HTTP {status} from the API: {detail}")
            if status not in RETRY_STATUSES and status != 0:
                raise SendError(f"unexpected HTTP {status} from the API: {_body_excerpt(data)}")
            reason = f"HTTP {status}" if status else data.decode(errors="replace")
            stopping = self.should_stop is not None and self.should_stop()
            giving_up = stopping or (not self.keep_retrying and attempt >= self.max_retries)
            self._failing(status, reason, giving_up)
            if giving_up:
                self.stats.failed += len(batch)
                why = "stopped" if stopping else f"gave up after {attempt} retries"
                self.stats.note_error(
                    {"index": start, "field": None, "message": f"{why}: {reason}"}
                )
                return
            retry_after = _retry_after(resp_headers.get("retry-after"))
            # The exponent is capped: 2**attempt as a float overflows after ~1,000 retries,
            # which a followed log reaches in a day-long outage.
            backoff = min(self.max_backoff, 0.5 * 2 ** min(attempt, 16))
            delay = retry_after if retry_after is not None else backoff * (0.5 + self.jitter() / 2)
            attempt += 1
            self.stats.retries += 1
            self._wait(min(delay, self.max_backoff))

    def _failing(self, status: int, reason: str, giving_up: bool) -> None:
        """Say so on the first failure of an outage: a wrong --url must not look like a hang."""
        if self._outage_failures:
            self._outage_failures += 1
            return
        self._outage_failures = 1
        what = f"answered {reason}" if status else f"cannot be reached ({reason})"
        if giving_up:
            then = "not retrying"
        elif self.keep_retrying:
            then = f"retrying until it answers (backoff up to {self.max_backoff:g} s)"
        else:
            then = f"retrying up to {self.max_retries} times"
        self.warn(f"mailflow ingest: {self.target} {what}; {then}")

    def _recovered(self) -> None:
        if self._outage_failures:
            self.warn(
                f"mailflow ingest: {self.target} answered again "
                f"after {self._outage_failures} failed attempts"
            )
            self._outage_failures = 0

    def _wait(self, seconds: float) -> None:
        if self.should_stop is None:
            self.sleep(seconds)
            return
        while seconds > 0 and not self.should_stop():  # a stop request cuts the wait short
            step = min(seconds, STOP_CHECK_SECONDS)
            self.sleep(step)
            seconds -= step

    def _count(self, answer: dict[str, Any], size: int, start: int) -> None:
        accepted = int(answer.get("accepted", 0))
        duplicates = int(answer.get("duplicates", 0))
        rejected = int(answer.get("rejected", size - accepted - duplicates))
        self.stats.batches += 1
        self.stats.sent += size
        self.stats.accepted += accepted
        self.stats.duplicates += duplicates
        self.stats.rejected += rejected
        self._note_errors(answer, start)

    def _note_errors(self, answer: dict[str, Any], start: int) -> None:
        # The API numbers NDJSON records by line from 1; the batch has one trace per line,
        # so line n is trace start + n - 1 of the run.
        for err in answer.get("errors", []) or []:
            if isinstance(err, dict):
                line = err.get("index")
                index = start + int(line) - 1 if isinstance(line, int) and line > 0 else start
                self.stats.note_error({**err, "index": index})


def _body_excerpt(data: bytes) -> str:
    return data[:200].decode("utf-8", "replace")


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _retry_after(value: str | None) -> float | None:
    """Retry-After is delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils  # rare path; keeps the module light to import

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
