"""``mailflow tenants``: list, show, reset and delete tenants, on the store ``mailflow run``
uses (found as ``mailflow keys`` finds it: MAILFLOW_REDIS_URL or MAILFLOW_DATA_DIR)."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime

import click

from service.cli.keys import _settings, open_store
from service.core.api_keys import validate_tenant
from service.store import tenant_zone, tenants
from service.telemetry.logging import log_admin_action


def _tenant_argument(tenant: str) -> str:
    try:
        return validate_tenant(tenant)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="TENANT") from None


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name for this uid (a container)
        return "cli"


@click.group("tenants")
def tenants_group() -> None:
    """List, show, reset and delete tenants; set their time zone."""


@tenants_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document per tenant.")
def list_tenants(as_json: bool) -> None:
    """Every tenant that has ingested or has a key."""
    with open_store(_settings()) as client:
        for tenant in tenants.known_tenants(client):
            click.echo(json.dumps({"tenant": tenant}) if as_json else tenant)


@tenants_group.command("show")
@click.argument("tenant")
@click.option("--json", "as_json", is_flag=True, help="As one JSON document.")
def show(tenant: str, as_json: bool) -> None:
    """A tenant's keys, days with counters, messages, and what waits to be folded."""
    tenant = _tenant_argument(tenant)
    with open_store(_settings()) as client:
        found = tenants.summary(client, tenant)
    document = found.as_document()
    if as_json:
        click.echo(json.dumps(document))
        return
    days = found.messages_per_day
    span = f"{min(days)} .. {max(days)}" if days else "none"
    click.echo(f"tenant {tenant}: {found.messages} messages on {len(days)} days ({span}), "
               f"{found.waiting_entries} batches waiting to be folded")  # fmt: skip
    click.echo(f"  time zone {found.time_zone} (its days are local days there)")
    for day, messages in days.items():
        click.echo(f"  {day}  {messages}")
    for record in found.keys:
        state = f"revoked {record.revoked_at}" if record.revoked_at else "active"
        click.echo(f"  key {record.key_id}  {','.join(record.scopes):<20} {state}  {record.name}")


@tenants_group.command("reset")
@click.argument("tenant")
@click.option("--start", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="First trace day to reset (the tenant's local day, inclusive).")  # fmt: skip
@click.option("--end", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="Last trace day to reset (the tenant's local day, inclusive).")  # fmt: skip
def reset(tenant: str, start: datetime, end: datetime) -> None:
    """Remove the counters and the seen trace ids of these days, so the same logs can be
    ingested again (with a new connector mapping, say). Reset every day your log covers."""
    tenant = _tenant_argument(tenant)
    settings = _settings()
    where = {"start": start.date().isoformat(), "end": end.date().isoformat()}
    with open_store(settings) as client:
        try:
            result = tenants.reset_days(client, tenant, start.date(), end.date(),
                                        datetime.now(UTC), settings.retention_days,
                                        settings.refresh_seconds,
                                        tenant_zone.zone_of(client, tenant))  # fmt: skip
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--start/--end") from None
        except tenants.TenantBusy as error:
            log_admin_action("tenant.reset", tenant, _actor(), outcome="refused",
                             reason=str(error), **where)  # fmt: skip
            raise click.ClickException(str(error)) from None
    log_admin_action("tenant.reset", tenant, _actor(), outcome="done",
                     messages_removed=result.messages_removed, **where)  # fmt: skip
    click.echo(f"reset {len(result.days)} days of {tenant}: {result.messages_removed} "
               "messages removed; ingest the logs again", err=True)  # fmt: skip


@tenants_group.command("set-time-zone")
@click.argument("tenant")
@click.argument("zone")
def set_time_zone(tenant: str, zone: str) -> None:
    """Count the tenant's days in ZONE (an IANA name: Europe/Berlin; UTC is the default) from
    now on. Days folded before the change stay as they were folded."""
    tenant = _tenant_argument(tenant)
    with open_store(_settings()) as client:
        try:
            before, after = tenants.set_time_zone(client, tenant, zone)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="ZONE") from None
    log_admin_action("tenant.time_zone", tenant, _actor(), outcome="done",
                     time_zone=after, previous=before)  # fmt: skip
    click.echo(f"time zone of {tenant}: {after} (was {before}); days folded before keep "
               "their days", err=True)  # fmt: skip


@tenants_group.command("delete")
@click.argument("tenant")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(tenant: str, yes: bool) -> None:
    """Delete the tenant: its API keys and all its data. There is no undo."""
    tenant = _tenant_argument(tenant)
    if not yes:
        click.confirm(f"Delete tenant {tenant}, its keys and all its data?", abort=True)
    settings = _settings()
    with open_store(settings) as client:
        try:
            result = tenants.delete_tenant(client, tenant, settings.refresh_seconds)
        except tenants.TenantBusy as error:
            log_admin_action("tenant.delete", tenant, _actor(), outcome="refused",
                             reason=str(error))  # fmt: skip
            raise click.ClickException(str(error)) from None
    log_admin_action("tenant.delete", tenant, _actor(), outcome="done",
                     api_keys_deleted=result.api_keys_deleted,
                     keys_deleted=result.keys_deleted)  # fmt: skip
    click.echo(f"deleted tenant {tenant}: {result.api_keys_deleted} API keys, "
               f"{result.keys_deleted} stored keys", err=True)  # fmt: skip
