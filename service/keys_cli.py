"""``mailflow keys``: create, list and revoke API keys in the store ``mailflow run`` uses.

With no ``MAILFLOW_REDIS_URL`` that is the embedded Redis of ``MAILFLOW_DATA_DIR``: used when it
runs, started for the duration of the command when it does not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import click
import redis

from service.auth import SCOPES, create_key, validate_tenant
from service.config import Settings
from service.core.text import TextError, checked_name
from service.store import api_keys
from service.store.connection import connect


@contextmanager
def open_store(settings: Settings) -> Iterator[redis.Redis]:
    """A client of the configured store, starting the embedded server only if it is down."""
    if settings.redis_url is not None or _embedded_answers(settings):
        client = connect(settings)
        try:
            yield client
        finally:
            client.close()
        return
    from service.store.embedded import EmbeddedRedis

    click.echo(f"starting the embedded Redis in {settings.data_path} for this command", err=True)
    server = EmbeddedRedis(settings.data_path, fsync=settings.redis_fsync).start()
    client = redis.Redis.from_url(server.url)
    try:
        yield client
    finally:
        client.close()
        server.stop()


def _embedded_answers(settings: Settings) -> bool:
    if not settings.embedded_socket.exists():
        return False
    client = redis.Redis.from_url(settings.effective_redis_url, socket_timeout=1)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
        return False
    finally:
        client.close()


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as error:
        raise click.UsageError(str(error)) from None


MAX_KEY_NAME = 128


@click.group("keys")
def keys_group() -> None:
    """Create, list and revoke API keys."""


@keys_group.command("create")
@click.option("--tenant", required=True, help="The tenant the key reads and writes.")
@click.option(
    "--scope",
    "scopes",
    required=True,
    multiple=True,
    type=click.Choice(SCOPES),
    help="ingest (POST traces), read (GET reports), admin (change settings); repeat.",
)
@click.option("--name", default="",
              help="A label for `keys list`: at most 128 characters, no control or format "
              "characters, no whitespace at either end.")  # fmt: skip
def create(tenant: str, scopes: tuple[str, ...], name: str) -> None:
    """Create a key and print it: the only time it is shown (stored as a hash)."""
    try:
        validate_tenant(tenant)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--tenant") from None
    try:
        name = checked_name(name, MAX_KEY_NAME) if name else ""
    except TextError as error:
        raise click.BadParameter(str(error), param_hint="--name") from None
    with open_store(_settings()) as client:
        key = create_key(client, tenant, scopes, name, datetime.now(UTC))
    click.echo(key)


@keys_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document per key.")
def list_keys(as_json: bool) -> None:
    """Every key: id, tenant, scopes, name, created, revoked (never the secret)."""
    with open_store(_settings()) as client:
        records = api_keys.all_records(client)
    for record in records:
        row = {"id": record.key_id, "tenant": record.tenant, "scopes": list(record.scopes),
               "name": record.name, "created_at": record.created_at,
               "revoked_at": record.revoked_at}  # fmt: skip
        if as_json:
            click.echo(json.dumps(row))
        else:
            state = f"revoked {record.revoked_at}" if record.revoked_at else "active"
            click.echo(f"{record.key_id}  {record.tenant:<20} {','.join(record.scopes):<20} "
                       f"{record.created_at}  {state}  {record.name}")  # fmt: skip


@keys_group.command("revoke")
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke a key by its id (the part after ``mf_``); effective on the next request."""
    if key_id.startswith("mf_"):
        key_id = key_id.split("_")[1]
    if not key_id.isalnum():
        raise click.BadParameter("not a key id", param_hint="KEY_ID")
    with open_store(_settings()) as client:
        found = api_keys.revoke(client, key_id, datetime.now(UTC).isoformat(timespec="seconds"))
    if not found:
        raise click.ClickException(f"no key with id {key_id}")
    click.echo(f"revoked {key_id}", err=True)
