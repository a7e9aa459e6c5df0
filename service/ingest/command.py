"""`mailflow ingest`: mail server logs (or trace files) into the mailflow API.

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
from typing import TYPE_CHECKING, TextIO

import click

from service.ingest.checks import TlsLoggingCheck, date_report
from service.ingest.errors import SendError
from service.ingest.pipeline import (
    FORMATS,
    CountingSink,
    FollowLoop,
    NdjsonSink,
    Parser,
    Sink,
    ingest_files,
    make_parser,
)
from service.ingest.readers import Follower

if TYPE_CHECKING:
    from service.ingest.client import SendStats, TraceSender
    from service.ingest.connector_map import ConnectorMap

# The mapping, the HTTP client and the parsers are imported only when a run needs them:
# `--dry-run` on one rotated file is mostly interpreter start-up, so imports are its cost.

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
        raise click.BadParameter(f"unknown time zone {name!r}", param_hint="--timezone") from exc


@click.command("ingest")
@click.argument("files", nargs=-1, required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice((*FORMATS, "tlsrpt")),
    default="postfix",
    show_default=True,
    help="Input format: mail server logs, or traces as NDJSON/JSON/CSV; or tlsrpt: TLS-RPT "
    "reports (.json, .json.gz, report e-mails, mbox files, Maildir folders).",
)
@click.option(
    "--url",
    envvar="MAILFLOW_URL",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="API base URL [env MAILFLOW_URL].",
)
@click.option(
    "--key", envvar="MAILFLOW_KEY", help="API key with the ingest scope [env MAILFLOW_KEY]."
)
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=5000, show_default=True)
@click.option("--dry-run", is_flag=True, help="Parse and print the summary; send nothing.")
@click.option(
    "--output",
    type=click.Choice(["ndjson"]),
    help="Write the traces to stdout instead of sending them.",
)
@click.option(
    "--year", type=click.IntRange(1970, 9999), help="Year of the first BSD-syslog timestamp."
)
@click.option(
    "--timezone",
    "tz_name",
    default="UTC",
    show_default=True,
    help="Zone of timestamps that carry none (BSD syslog, Exim).",
)
@click.option(
    "--connectors",
    "connectors_path",
    type=click.Path(dir_okay=False),
    help="TOML connector mapping (ordered rules, first match wins).",
)
@click.option("--follow", is_flag=True, help="Keep reading as the log grows (like tail -F).")
@click.option("--from-end", is_flag=True, help="With --follow: skip what the log holds now.")
@click.option(
    "--host",
    help="Exim only: the server that wrote the log, part of every trace id so that two "
    "servers' Exim ids never collide [default: this machine's hostname].",
)
@click.option(
    "--max-retries",
    type=click.IntRange(0, 100),
    default=8,
    show_default=True,
    help="Retries per batch before its traces count as not delivered (exit status 3). "
    "With --follow there is no limit: batches are retried until the API takes them.",
)
@click.option(
    "--retention-days",
    type=click.IntRange(1, 3650),
    envvar="MAILFLOW_RETENTION_DAYS",
    default=90,
    show_default=True,
    help="The server's retention period [env MAILFLOW_RETENTION_DAYS, as the server reads it]: "
    "the summary counts the traces outside it, which the API refuses.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress line on stderr (default: when stderr is a terminal).",
)
def ingest(
    files: tuple[str, ...],
    fmt: str,
    url: str,
    key: str | None,
    batch_size: int,
    dry_run: bool,
    output: str | None,
    year: int | None,
    tz_name: str,
    connectors_path: str | None,
    follow: bool,
    from_end: bool,
    host: str | None,
    max_retries: int,
    retention_days: int,
    progress: bool | None,
) -> None:
    """Read mail server logs (Postfix, Exim) or trace files and send their traces to mailflow.

    FILE may be plain, gzip, xz or bzip2 compressed, or `-` for standard input. Give rotated
    logs oldest first: correlation state carries from one file to the next.
    """
    if fmt == "tlsrpt":
        _ingest_tlsrpt(files, url, key, dry_run or output is not None, max_retries, follow)
        return
    zone = _zone(tz_name)
    connectors: ConnectorMap | None = None
    if connectors_path:
        from service.ingest.connector_map import ConnectorMapError, load_connector_map

        try:
            connectors = load_connector_map(connectors_path)
        except ConnectorMapError as exc:
            raise click.UsageError(str(exc)) from exc
    if host is not None and fmt != "exim":
        raise click.UsageError("--host is for --format exim: Postfix lines name their host")
    if follow and "-" in files:
        raise click.UsageError("--follow reads files, not standard input")
    if not follow:
        for path in files:
            if path != "-":
                try:
                    open(path, "rb").close()
                except OSError as exc:
                    raise click.BadParameter(f"{path}: {exc.strerror}", param_hint="FILE") from exc
    sending = not dry_run and output is None
    if sending and not key:
        raise click.UsageError("an API key is needed: --key or MAILFLOW_KEY (or use --dry-run)")

    parser = make_parser(fmt, zone, year, connectors, host=_exim_host(fmt, host))
    err = sys.stderr
    show = progress if progress is not None else err.isatty()
    bar = Progress(err, show)
    stop = StopFlag()

    def warn(text: str) -> None:
        bar.done()  # clear the progress line first
        click.echo(text, err=True)

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
            raise click.UsageError(str(exc)) from exc
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
    click.echo(format_summary(parser, sink, seconds, mode, stats, checks), err=True)
    if failure:
        click.echo(f"mailflow ingest: stopped: {failure}", err=True)
    status = exit_status(sink, sender.stats if sender else None, failure is not None)
    if status != EXIT_OK:
        sys.exit(status)


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


def _ingest_tlsrpt(
    files: tuple[str, ...], url: str, key: str | None, dry_run: bool, max_retries: int,
    follow: bool,
) -> None:  # fmt: skip
    """TLS-RPT reports from files, e-mails and mailboxes to POST /api/v1/tlsrpt."""
    from service.ingest.http import HttpTransport
    from service.ingest.tlsrpt_send import ReportSender, TlsRptTally, ingest_reports

    if follow or "-" in files:
        raise click.UsageError("--format tlsrpt reads files, mailboxes and Maildir folders; "
                               "run it again (from cron) to pick up new mail")  # fmt: skip
    if not dry_run and not key:
        raise click.UsageError("an API key is needed: --key or MAILFLOW_KEY (or use --dry-run)")
    tally = TlsRptTally()
    sender = None
    if not dry_run:
        try:
            sender = ReportSender(HttpTransport(url), key or "", tally, max_retries=max_retries)
        except SendError as exc:
            raise click.UsageError(str(exc)) from exc
    started = time.monotonic()
    failure = None
    try:
        ingest_reports(files, sender, tally)
    except SendError as exc:
        failure = str(exc)
    finally:
        if sender is not None:
            sender.transport.close()
    click.echo(tally.summary(time.monotonic() - started, sender is not None), err=True)
    if failure:
        click.echo(f"mailflow ingest: stopped: {failure}", err=True)
        sys.exit(EXIT_NOT_DELIVERED)
    if tally.exit_status != EXIT_OK:
        sys.exit(tally.exit_status)
