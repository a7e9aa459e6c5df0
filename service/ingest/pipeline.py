"""Wiring lines to a parser and traces to a sink, for whole files and for followed logs.

Kept apart from the click command so that tests drive it with fake clocks and explicit polls
instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from datetime import tzinfo

from service.ingest.checks import utc_day
from service.ingest.readers import Follower, open_text
from service.ingest.traces import Trace

# Not typing's: a dry run does not import typing (~3 ms of its start-up); what needs it is
# for the type checker only (mypy takes any constant of this name as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO, Protocol

    from service.ingest.connector_map import ConnectorMap

    class Parser(Protocol):
        lines: int
        used: int
        kinds: dict[str, int]
        evicted: int

        def feed(self, line: str) -> None: ...
        def feed_lines(self, lines: Sequence[str]) -> None: ...
        def take(self) -> list[Trace]: ...
        def flush(self) -> list[Trace]: ...
        def advance(self, now: float) -> None: ...
        def state_size(self) -> int: ...

    class Sink(Protocol):
        def add(self, traces: list[Trace]) -> None: ...
        def flush(self) -> None: ...


FORMATS = ("postfix", "exim", "ndjson", "json", "csv")
READ_CHUNK = 1 << 20  # characters per readlines() call: amortises the per-line loop overhead


def make_parser(
    fmt: str,
    zone: tzinfo,
    year: int | None = None,
    connectors: ConnectorMap | None = None,
    host: str = "",
) -> Parser:
    """`host` names the server that wrote an Exim log (Postfix lines carry their own)."""
    # Imported per format: a short run (one rotated file from cron) is mostly start-up time.
    if fmt == "postfix":
        from service.ingest.postfix import PostfixParser
        from service.ingest.syslog import TimestampParser

        return PostfixParser(TimestampParser(zone=zone, year=year), connectors)
    if fmt == "exim":
        from service.ingest.exim import EximParser

        return EximParser(zone=zone, connectors=connectors, host=host)
    from service.ingest import tabular

    if fmt == "ndjson":
        return tabular.NdjsonParser(connectors)
    if fmt == "json":
        return tabular.JsonParser(connectors)
    if fmt == "csv":
        return tabular.CsvParser(connectors)
    raise ValueError(f"unknown format {fmt!r}")


class Tally:
    """What went through the sink, for the summary."""

    def __init__(self) -> None:
        self.traces = 0
        self.by_direction_tls: dict[tuple[str, str], int] = {}
        self.days: dict[str, int] = {}  # UTC day -> traces
        self.undated = 0

    def count(self, traces: list[Trace]) -> None:
        self.traces += len(traces)
        table = self.by_direction_tls
        days = self.days
        for t in traces:
            # A blocked record is mail that did not go: shown apart from the versions.
            tls = "blocked" if t.get("outcome") == "blocked" else t.get("tls_version") or "none"
            key = (str(t.get("direction")), str(tls))
            table[key] = table.get(key, 0) + 1
            day = utc_day(t.get("timestamp"))
            if day is None:
                self.undated += 1
            else:
                days[day] = days.get(day, 0) + 1


class CountingSink:
    """Counts traces, then hands them on (or drops them, for --dry-run)."""

    def __init__(self, inner: Sink | None) -> None:
        self.inner = inner
        self.tally = Tally()

    def add(self, traces: list[Trace]) -> None:
        if not traces:
            return
        self.tally.count(traces)
        if self.inner is not None:
            self.inner.add(traces)

    def flush(self) -> None:
        if self.inner is not None:
            self.inner.flush()


class NdjsonSink:
    """`--output ndjson`: the traces themselves, one per line, instead of sending them."""

    def __init__(self, stream: BinaryIO) -> None:
        import orjson  # here: a dry run serialises nothing

        self.dumps = orjson.dumps
        self.stream = stream

    def add(self, traces: list[Trace]) -> None:
        dumps = self.dumps
        self.stream.write(b"".join(dumps(t) + b"\n" for t in traces))

    def flush(self) -> None:
        self.stream.flush()


def ingest_files(
    paths: Iterable[str],
    parser: Parser,
    sink: Sink,
    on_chunk: Callable[[], None] = lambda: None,
    watch: Callable[[Sequence[str]], None] | None = None,
) -> None:
    """Read files in the order given (oldest first: state carries across rotated files).
    ``watch`` sees every chunk of lines too (``checks.TlsLoggingCheck``)."""
    for path in paths:
        with open_text(path) as fh:
            while True:
                chunk = fh.readlines(READ_CHUNK)
                if not chunk:
                    break
                if watch is not None:
                    watch(chunk)
                parser.feed_lines(chunk)
                sink.add(parser.take())
                on_chunk()
    sink.add(parser.flush())
    sink.flush()


class FollowLoop:
    """`--follow`: poll the followers, feed the parser, send as it goes.

    One `step()` is one round; `run()` repeats it until `should_stop()`. When the log is quiet
    the parser's expiry clock keeps running (log time of the last line plus the idle wall time),
    so waiting inbound traces are still emitted, and a partial batch goes out after
    `idle_flush` seconds so a quiet server's mail shows up within seconds.
    """

    def __init__(
        self,
        followers: list[Follower],
        parser: Parser,
        sink: Sink,
        clock: Callable[[], float] = time.monotonic,
        idle_flush: float = 1.0,
        watch: Callable[[Sequence[str]], None] | None = None,
    ) -> None:
        self.watch = watch
        self.followers = followers
        self.parser = parser
        self.sink = sink
        self.clock = clock
        self.idle_flush = idle_flush
        self._last_data = clock()
        self._log_now_at_data = 0.0
        self._dirty = False  # traces handed to the sink since its last flush

    def step(self) -> int:
        """One round; returns the number of lines read (0 = idle: the caller may sleep)."""
        got = 0
        for follower in self.followers:
            lines = follower.poll()
            got += len(lines)
            if self.watch is not None and lines:
                self.watch(lines)
            self.parser.feed_lines(lines)
        now = self.clock()
        if got:
            self._last_data = now
            self._log_now_at_data = getattr(self.parser, "now", 0.0)
        else:
            idle = now - self._last_data
            if self._log_now_at_data:
                self.parser.advance(self._log_now_at_data + idle)
        traces = self.parser.take()
        if traces:
            self.sink.add(traces)
            self._dirty = True
        if not got and self._dirty and now - self._last_data >= self.idle_flush:
            self.sink.flush()
            self._dirty = False
        return got

    def run(
        self,
        should_stop: Callable[[], bool],
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = 0.25,
        on_step: Callable[[], None] = lambda: None,
    ) -> None:
        try:
            while not should_stop():
                if not self.step():
                    sleep(poll_interval)
                on_step()
        finally:
            self.finish()

    def finish(self) -> None:
        self.sink.add(self.parser.flush())
        self.sink.flush()
        for follower in self.followers:
            follower.close()
