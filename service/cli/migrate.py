"""``mailflow migrate``: upgrade the store to the format of this release, in place."""

from __future__ import annotations

from datetime import UTC, date, datetime

import click

from service.cli.keys import _settings, open_store
from service.store import store_format
from service.store.migrations import pending_steps, run_migrations


@click.command("migrate")
@click.option(
    "--max-batches",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many batches (exit status 3); run again to go on.",
)
@click.option("--dry-run", is_flag=True, help="Say what would run, change nothing.")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, hidden=True,
              help="The UTC day of the service's clock (default: today).")  # fmt: skip
def migrate(max_batches: int | None, dry_run: bool, today: datetime | None) -> None:
    """Upgrade the store written by an older mailflow to this release's format.

    In place and resumable: progress is kept in the store, so an interrupted run goes on
    where it stopped. The older release may go on serving reads meanwhile; stop its ingest
    and workers first. The newer release refuses the store until this has finished.
    """
    settings = _settings()
    day: date = today.date() if today else datetime.now(UTC).date()
    with open_store(settings) as client:
        found = store_format.read_format(client)
        if dry_run:
            steps = pending_steps(found)
            click.echo(f"store format {found or 'new'}, this release {store_format.CURRENT}: "
                       f"{len(steps)} steps to run")  # fmt: skip
            for step in steps:
                click.echo(f"  {step.name}: {step.why}")
            return
        try:
            report = run_migrations(client, day, settings.retention_days, max_batches,
                                    progress=lambda line: click.echo(line, err=True),
                                    dedupe_days=settings.dedupe_days)  # fmt: skip
        except store_format.StoreFormatError as error:
            raise click.ClickException(str(error)) from None
    if not report.finished:
        click.echo(f"not finished after {report.batches} batches: run `mailflow migrate` "
                   "again to go on", err=True)  # fmt: skip
        raise SystemExit(3)
    if found == store_format.CURRENT:
        click.echo(f"the store is already of format {store_format.CURRENT}: nothing to do")
    else:
        click.echo(f"the store is now of format {store_format.CURRENT} "
                   f"(was {found or 'new'}; {report.batches} batches)")  # fmt: skip
