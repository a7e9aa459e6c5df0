"""One `mailflow ingest` run over mail server logs or trace files, without click.

The click command (``service.ingest.command``) reads the options and hands them here; so does
the plain entry of the common `mailflow ingest --dry-run FILE...` (``service.ingest.plain_entry``),
which does not pay for importing click. Usage errors are raised as ``UsageProblem`` before a
line is read, and the command reports them as click does.

Exit status (docs/ingestion.md lists the same):
- 0: every trace read was accepted or was already there (a duplicate); or nothing was sent
  (`--dry-run`, `--output`);
- 1: the API rejected some or all traces (the summary says which and why); the rest went in;
- 2: usage errors, including an unusable `--connectors` file (nothing is sent then);
- 3: traces were not delivered: the API stayed unreachable or busy through `--max-retries`,
  refused the key, or the run was stopped while the API was down. Running again is safe (ids).
3 wins over 1: traces that never got there matter more than traces the API refused.

The summary goes to stderr, so `--output ndjson` keeps stdout for the traces alone.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo

from service.ingest.checks import TlsLoggingCheck, date_report
from service.ingest.errors import SendError
from service.ingest.pipeline import CountingSink, FollowLoop, NdjsonSink, ingest_files, make_parser
from service.ingest.readers import Follower

# Not `typing.TYPE_CHECKING`: importing typing costs a dry run ~3 ms, for names only the type
# checker reads (mypy takes any constant of this name as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

    from service.ingest.client import SendStats, TraceSender
    from service.ingest.connector_map import ConnectorMap
    from service.ingest.pipeline import Parser, Sink

# The mapping, the HTTP client and the parsers are imported only when a run needs them:
# `--dry-run` on one rotated file is mostly interpreter start-up, so imports are its cost.

# The options' defaults, for the click command and the plain entry alike.
DEFAULT_FORMAT = "postfix"
DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_BATCH_SIZE = 5000
DEFAULT_TIMEZONE = "UTC"
DEFAULT_MAX_RETRIES = 8
DEFAULT_RETENTION_DAYS = 90
MAX_RETENTION_DAYS = 3650  # --retention-days takes 1..this (the plain entry checks the same)


class UsageProblem(Exception):
    """A usage error, found before any line is read: the command reports it as click's
    ``BadParameter`` when ``param_hint`` names the parameter, else as a ``UsageError``."""

    def __init__(self, message: str, param_hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param_hint = param_hint


EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_NOT_DELIVERED = 3  # (2 is click's status for usage errors)


class StopFlag:
    """Set by SIGINT/SIGTERM in follow mode; the loop and the sender's retries look at it."""

    def __init__(self) -> None:
        self.set = False

    def __call__(self) -> bool:
        return self.set


class Progress:
    """One self-overwriting status line on a terminal; silent otherwise."""

    def __init__(
        self, stream: TextIO, enabled: bool, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stream = stream
        self.enabled = enabled
        self.clock = clock
        self.started = clock()
        self._last = 0.0
        self._shown = False

    def update(self, lines: int, traces: int, errors: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if not force and now - self._last < 0.2:
            return
        self._last = now
        rate = lines / max(now - self.started, 1e-9)
        self.stream.write(
            f"\r{lines:,} lines ({rate:,.0f}/s)  {traces:,} traces  {errors:,} errors\x1b[K"
        )
        self.stream.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def format_summary(
    parser: Parser,
    sink: CountingSink,
    seconds: float,
    mode: str,
    stats: SendStats | None,
    checks: Sequence[str] = (),
) -> str:
    """The end-of-run report: what was read, what it became, what a run can tell about it
    before the API does (``checks``: dates, retention, TLS logging), and what happened to it."""
    tally = sink.tally
    rate = parser.lines / seconds if seconds > 0 else 0.0
    out = [f"mailflow ingest: {parser.lines:,} lines read in {seconds:.2f} s ({rate:,.0f} lines/s)"]
    directions: dict[str, list[str]] = {}
    for (direction, tls), n in sorted(tally.by_direction_tls.items()):
        directions.setdefault(direction, []).append(f"{tls} {n:,}")
    out.append(f"  traces: {tally.traces:,}")
    for direction, parts in directions.items():
        out.append(f"    {direction}: {', '.join(parts)}")
    out.extend(checks)
    if stats is None:
        out.append(f"  {mode}: nothing sent")
    else:
        missing = not_delivered(sink, stats)
        out.append(
            f"  sent: {stats.sent:,}  accepted: {stats.accepted:,}  "
            f"duplicates: {stats.duplicates:,}  rejected: {stats.rejected:,}  "
            f"failed: {stats.failed:,}  (batches {stats.batches:,}, retries {stats.retries:,})"
        )
        out.extend(error_lines(stats))
        if missing:
            out.append(
                f"  not delivered: {missing:,} traces (the API did not take them; "
                "running again is safe, ids make resent traces duplicates)"
            )
    out.append(f"  lines used: {parser.used:,}")
    skipped = sum(parser.kinds.values())
    out.append(f"  lines not used: {skipped:,}")
    for kind, n in sorted(parser.kinds.items(), key=lambda kv: (-kv[1], kv[0])):
        out.append(f"    {kind:<22} {n:>10,}")
    # Log readers count TLS detail spellings they do not know (Tally has the rest).
    unrecognised: dict[str, int] = getattr(parser, "unrecognised", {})
    if unrecognised:
        out.append(f"  TLS details not recognised (field omitted): {sum(unrecognised.values()):,}")
        for kind, n in sorted(unrecognised.items(), key=lambda kv: (-kv[1], kv[0])):
            out.append(f"    {kind:<22} {n:>10,}")
    if parser.evicted:
        out.append(f"  correlation entries evicted at the memory caps: {parser.evicted:,}")
    return "\n".join(out)


def error_lines(stats: SendStats, shown: int = 10) -> list[str]:
    """Each reason the API (or the run) gave, once, with how many traces it concerns: a
    refused batch is named by its traces' own reasons, most frequent first."""
    out = []
    ordered = sorted(stats.reasons.items(), key=lambda kv: (-kv[1][0], kv[1][1]))
    for (field, message), (count, first) in ordered[:shown]:
        where = f" {field}" if field else ""
        more = f" (and {count - 1:,} more traces like it)" if count > 1 else ""
        out.append(f"    error at trace {first}{where}: {message}{more}")
    hidden = sum(count for _, (count, _) in ordered[shown:]) + stats.other_reasons
    if hidden:
        out.append(f"    ... {hidden:,} more errors, for other reasons")
    return out


def not_delivered(sink: CountingSink, stats: SendStats) -> int:
    """Traces read but never answered for: given up on, or still held when the run stopped."""
    return sink.tally.traces - stats.sent


def exit_status(sink: CountingSink, stats: SendStats | None, refused: bool) -> int:
    """`refused`: the API refused the key (or answered nonsense), so the run stopped early."""
    if refused or (stats is not None and not_delivered(sink, stats)):
        return EXIT_NOT_DELIVERED
    if stats is not None and stats.rejected:
        return EXIT_REJECTED
    return EXIT_OK


def make_sender(
    url: str,
    key: str,
    *,
    batch_size: int,
    max_retries: int,
    follow: bool,
    warn: Callable[[str], None],
    should_stop: Callable[[], bool] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> TraceSender:
    """The sender a run uses. Following a log it never gives a batch up: the log cannot be
    read again the way a file given on the command line can. Raises SendError for a bad URL."""
    from service.ingest.client import TraceSender
    from service.ingest.http import HttpTransport

    return TraceSender(
        HttpTransport(url),
        key,
        batch_size=batch_size,
        max_retries=max_retries,
        sleep=sleep,
        keep_retrying=follow,
        should_stop=should_stop,
        warn=warn,
        target=url,
        # A file is parsed while the API works on the previous batch; a followed log keeps one
        # batch in hand at a time, so that an outage stops the reading (the log is the spool).
        post_in_background=not follow,
    )


def _exim_host(fmt: str, host: str | None) -> str:
    """The server name in Exim trace ids: --host, else this machine's name (stable per host,
    so re-ingesting a log still dedupes). `--host ''` gives the ids of versions before it."""
    if fmt != "exim":
        return ""
    if host is not None:
        return host
    import socket  # only Exim runs need it

    return socket.gethostname()


def _zone(name: str) -> tzinfo:
    if name.upper() in ("UTC", "Z"):
        return UTC  # the default needs no zone database (zoneinfo costs a dry run 5-10 ms)
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageProblem(f"unknown time zone {name!r}", param_hint="--timezone") from exc


def ingest_logs(
    files: tuple[str, ...],
    *,
    echo: Callable[[str], None],
    fmt: str = DEFAULT_FORMAT,
    url: str = DEFAULT_URL,
    key: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    output: str | None = None,
    year: int | None = None,
    tz_name: str = DEFAULT_TIMEZONE,
    connectors_path: str | None = None,
    follow: bool = False,
    from_end: bool = False,
    host: str | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    retention_days: int = DEFAULT_RETENTION_DAYS,
    progress: bool | None = None,
) -> int:
    """Read mail server logs or trace files (not TLS-RPT reports) and send their traces, or
    with ``dry_run`` only count them; ``echo`` writes a line to stderr. Returns the exit status;
    raises ``UsageProblem`` before reading anything when the options do not fit together."""
    zone = _zone(tz_name)
    connectors: ConnectorMap | None = None
    if connectors_path:
        from service.ingest.connector_map import ConnectorMapError, load_connector_map

        try:
            connectors = load_connector_map(connectors_path)
        except ConnectorMapError as exc:
            raise UsageProblem(str(exc)) from exc
    if host is not None and fmt != "exim":
        raise UsageProblem("--host is for --format exim: Postfix lines name their host")
    if follow and "-" in files:
        raise UsageProblem("--follow reads files, not standard input")
    if not follow:
        for path in files:
            if path != "-":
                try:
                    open(path, "rb").close()
                except OSError as exc:
                    raise UsageProblem(f"{path}: {exc.strerror}", param_hint="FILE") from exc
    sending = not dry_run and output is None
    if sending and not key:
        raise UsageProblem("an API key is needed: --key or MAILFLOW_KEY (or use --dry-run)")

    parser = make_parser(fmt, zone, year, connectors, host=_exim_host(fmt, host))
    err = sys.stderr
    show = progress if progress is not None else err.isatty()
    bar = Progress(err, show)
    stop = StopFlag()

    def warn(text: str) -> None:
        bar.done()  # clear the progress line first
        echo(text)

    sender: TraceSender | None = None
    inner: Sink | None = None
    if sending:
        try:
            sender = make_sender(
                url,
                key or "",
                batch_size=batch_size,
                max_retries=max_retries,
                follow=follow,
                warn=warn,
                should_stop=stop if follow else None,
            )
        except SendError as exc:
            raise UsageProblem(str(exc)) from exc
        inner = sender
    elif output == "ndjson":
        inner = NdjsonSink(sys.stdout.buffer)
    sink = CountingSink(inner)

    tls_check = TlsLoggingCheck() if fmt == "postfix" else None
    watch = tls_check.observe if tls_check is not None else None

    def tick() -> None:
        errors = len(sender.stats.errors) if sender else 0
        bar.update(parser.lines, sink.tally.traces, errors)
        if follow and tls_check is not None and (found := tls_check.warning_once()):
            warn(f"mailflow ingest:{found[1:]}")

    started = time.monotonic()
    failure: str | None = None
    try:
        if follow:
            _run_follow(files, from_end, parser, sink, tick, stop, watch)
        else:
            ingest_files(files, parser, sink, on_chunk=tick, watch=watch)
        if sender is not None:
            sender.close()
    except SendError as exc:
        failure = str(exc)
    bar.done()
    seconds = time.monotonic() - started
    mode = "dry run" if dry_run else "ndjson output"
    tally = sink.tally
    checks = date_report(tally.days, tally.undated, datetime.now(UTC), retention_days).lines()
    if tls_check is not None and (tls_warning := tls_check.warning()):
        checks.append(tls_warning)
    stats = sender.stats if sender else None
    echo(format_summary(parser, sink, seconds, mode, stats, checks))
    if failure:
        echo(f"mailflow ingest: stopped: {failure}")
    return exit_status(sink, sender.stats if sender else None, failure is not None)


def _run_follow(
    files: tuple[str, ...],
    from_end: bool,
    parser: Parser,
    sink: Sink,
    tick: Callable[[], None],
    stop: StopFlag,
    watch: Callable[[Sequence[str]], None] | None = None,
) -> None:
    import signal  # only following a log installs handlers

    def request_stop(signum: int, frame: object) -> None:
        stop.set = True  # handlers only set a flag; the loop (and any retrying) ends cleanly

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        loop = FollowLoop([Follower(p, from_end=from_end) for p in files], parser, sink,
                          watch=watch)  # fmt: skip
        loop.run(stop, on_step=tick)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
