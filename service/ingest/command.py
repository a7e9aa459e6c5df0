"""`mailflow ingest`: the click command. Its options are read here; the run itself is
``service.ingest.runner`` (exit statuses there), and TLS-RPT reports are sent from here.

The summary goes to stderr, so `--output ndjson` keeps stdout for the traces alone.
"""

from __future__ import annotations

import sys
import time

import click

from service.ingest.errors import SendError
from service.ingest.pipeline import FORMATS
from service.ingest.runner import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_FORMAT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETENTION_DAYS,
    DEFAULT_TIMEZONE,
    DEFAULT_URL,
    EXIT_NOT_DELIVERED,
    EXIT_OK,
    MAX_RETENTION_DAYS,
    Progress,
    UsageProblem,
    format_summary,
    ingest_logs,
    make_sender,
)

__all__ = ["Progress", "format_summary", "ingest", "make_sender"]


@click.command("ingest")
@click.argument("files", nargs=-1, required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice((*FORMATS, "tlsrpt")),
    default=DEFAULT_FORMAT,
    show_default=True,
    help="Input format: mail server logs, or traces as NDJSON/JSON/CSV; or tlsrpt: TLS-RPT "
    "reports (.json, .json.gz, report e-mails, mbox files, Maildir folders).",
)
@click.option(
    "--url",
    envvar="MAILFLOW_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="API base URL [env MAILFLOW_URL].",
)
@click.option(
    "--key", envvar="MAILFLOW_KEY", help="API key with the ingest scope [env MAILFLOW_KEY]."
)
@click.option(
    "--batch-size", type=click.IntRange(1, 100_000), default=DEFAULT_BATCH_SIZE, show_default=True
)
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
    default=DEFAULT_TIMEZONE,
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
    default=DEFAULT_MAX_RETRIES,
    show_default=True,
    help="Retries per batch before its traces count as not delivered (exit status 3). "
    "With --follow there is no limit: batches are retried until the API takes them.",
)
@click.option(
    "--retention-days",
    type=click.IntRange(1, MAX_RETENTION_DAYS),
    envvar="MAILFLOW_RETENTION_DAYS",
    default=DEFAULT_RETENTION_DAYS,
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
    try:
        status = ingest_logs(files, echo=_echo_err, fmt=fmt, url=url, key=key,
                             batch_size=batch_size, dry_run=dry_run, output=output, year=year,
                             tz_name=tz_name, connectors_path=connectors_path, follow=follow,
                             from_end=from_end, host=host, max_retries=max_retries,
                             retention_days=retention_days, progress=progress)  # fmt: skip
    except UsageProblem as exc:
        if exc.param_hint is not None:
            raise click.BadParameter(exc.message, param_hint=exc.param_hint) from exc
        raise click.UsageError(exc.message) from exc
    if status != EXIT_OK:
        sys.exit(status)


def _echo_err(text: str) -> None:
    click.echo(text, err=True)


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
