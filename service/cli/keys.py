"""``mailflow keys``: create, list and revoke API keys in the store ``mailflow run`` uses.

With no ``MAILFLOW_REDIS_URL`` that is the embedded Redis of ``MAILFLOW_DATA_DIR``. When a server
owns that data dir (it holds the dir's lock), the command talks to it and to nothing else: if it
does not answer, the command fails and changes nothing; it never starts a second server on the
same files. When none runs, the command starts one for its own duration, on a store that exists:
a new, empty store is made only with ``--init`` (a store the running service does not read would
hold keys that work nowhere).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import click
import redis

from service.config import Settings
from service.core.api_keys import SCOPES, validate_tenant
from service.core.text import TextError, checked_name
from service.store import api_keys
from service.store.api_keys import create_key
from service.store.availability import describe
from service.store.connection import connect_url
from service.store.embedded import DataDirLock, DataDirLocked, EmbeddedRedis, store_exists

# A person waits for this command: longer than the API's 1 s, so a brief stall passes, short
# enough to say "it does not answer" instead of hanging.
STORE_ANSWER_SECONDS = 3.0

_INIT = click.option("--init", is_flag=True,
                     help="Create a new, empty store in MAILFLOW_DATA_DIR if there is none.")  # fmt: skip


@contextmanager
def open_store(settings: Settings, init: bool = False) -> Iterator[redis.Redis]:
    """A client of the configured store; any Redis failure inside becomes a clear error."""
    try:
        with _store_client(settings, init) as client:
            yield client
    except redis.RedisError as error:
        raise click.ClickException(
            f"the store at {settings.effective_redis_url} stopped answering during the command "
            f"({describe(error)}: {error}); it may or may not have taken effect: check with "
            "`mailflow keys list` once the store answers, and run it again"
        ) from None


@contextmanager
def _store_client(settings: Settings, init: bool) -> Iterator[redis.Redis]:
    if settings.redis_url is not None:
        with _answering(settings.redis_url, "the store at MAILFLOW_REDIS_URL") as client:
            yield client
        return
    data_dir = settings.data_path
    if not store_exists(data_dir) and not init:
        raise click.ClickException(
            f"no mailflow store in {data_dir}: set MAILFLOW_DATA_DIR (or MAILFLOW_REDIS_URL) to "
            "the store `mailflow run` uses, or pass --init to create a new, empty one here"
        )
    lock = DataDirLock(data_dir)
    try:
        if data_dir.exists():
            lock.acquire()
    except DataDirLocked as running:
        # A live server owns the dir: use it, and only it.
        with _answering(settings.effective_redis_url, str(running)) as client:
            yield client
        return
    server = EmbeddedRedis(
        data_dir, fsync=settings.redis_fsync, lock=lock, server=settings.embedded_server
    )
    try:
        server.start()
    except DataDirLocked as running:  # a server that holds no lock (an older mailflow's)
        lock.release()
        with _answering(settings.effective_redis_url, str(running)) as client:
            yield client
        return
    except RuntimeError as error:  # it would not start: its log says why
        lock.release()
        raise click.ClickException(str(error)) from None
    click.echo(f"started the embedded Redis in {data_dir} for this command", err=True)
    try:
        client = redis.Redis.from_url(server.url, socket_timeout=STORE_ANSWER_SECONDS)
        try:
            yield client
        finally:
            client.close()
    finally:
        server.stop()  # releases the lock too


@contextmanager
def _answering(url: str, what: str) -> Iterator[redis.Redis]:
    client = connect_url(url, STORE_ANSWER_SECONDS)
    try:
        try:
            client.ping()
        except redis.RedisError as error:
            raise click.ClickException(
                f"{what}, but it does not answer within {STORE_ANSWER_SECONDS:g} s "
                f"({describe(error)}); nothing was changed. Check it (a stalled or overloaded "
                "Redis?) and run the command again."
            ) from None
        yield client  # type: ignore[misc]
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
@_INIT
def create(tenant: str, scopes: tuple[str, ...], name: str, init: bool) -> None:
    """Create a key and print it: the only time it is shown (stored as a hash)."""
    try:
        validate_tenant(tenant)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--tenant") from None
    try:
        name = checked_name(name, MAX_KEY_NAME) if name else ""
    except TextError as error:
        raise click.BadParameter(str(error), param_hint="--name") from None
    with open_store(_settings(), init) as client:
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
