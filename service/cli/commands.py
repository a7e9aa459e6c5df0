"""The ``mailflow`` command: run everything, or the API, the worker and tools on their own."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from service.config import Settings

# Redis, Flask and the store are imported by the commands that use them: `mailflow ingest`
# runs beside a mail server, and a dry run on one log is mostly start-up time.


class LazyGroup(click.Group):
    """A group whose subcommands in ``lazy`` (name -> "module:attribute") are imported only
    when named (or listed by --help), so that running one command loads none of the others."""

    lazy: dict[str, str] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            import importlib

            module, _, attribute = self.lazy[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)


def _settings() -> Settings:
    from service.config import Settings

    try:
        return Settings.from_env()
    except ValueError as error:
        raise click.UsageError(str(error)) from None


@click.group(cls=LazyGroup)
@click.version_option(package_name="mailflow", message="mailflow %(version)s")
def cli() -> None:
    """mailflow: how your mail is protected in transit."""
    if click.get_current_context().invoked_subcommand == "ingest":
        return  # it reports on stderr itself and logs nothing: no logging set-up to pay for
    from service.telemetry.logging import configure_logging

    configure_logging(os.environ.get("MAILFLOW_LOG_LEVEL", "INFO"))


@cli.command()
@click.option("--burst", is_flag=True, help="Fold what is there, refresh views, and exit.")
@click.option("--name", default=None, help="Consumer name (default host:pid).")
@click.option("--check", is_flag=True,
              help="Exit 0 if the worker (--name, else any worker of this host) has a heartbeat "
                   "in Redis younger than MAILFLOW_WORKER_STALE_SECONDS, else 1: a container "
                   "health check.")  # fmt: skip
def worker(burst: bool, name: str | None, check: bool) -> None:
    """Fold ingested traces into the daily counters and keep report views fresh."""
    from service.store.connection import connect
    from service.worker.loop import Worker

    settings = _settings()
    if check:
        _check_worker(settings, name)
        return
    _require_store_format(settings)
    w = Worker(connect(settings), settings)
    if name:
        w.name = name
    w.install_signal_handlers()
    w.work(burst=burst)


@cli.command()
@click.option("--burst", is_flag=True, help="Send what is due, wait for the answers, and exit.")
def notifier(burst: bool) -> None:
    """Send insight webhooks: fan transitions out to subscriptions, sign, post, retry."""
    import signal as signals

    from service.store.connection import connect
    from service.worker.notifier import Notifier

    settings = _settings()
    n = Notifier(connect(settings), settings)
    signals.signal(signals.SIGTERM, n.request_stop)
    signals.signal(signals.SIGINT, n.request_stop)
    n.work(burst=burst)


def _check_worker(settings: Settings, name: str | None) -> None:
    import socket

    import redis

    from service.store import health
    from service.store.availability import describe
    from service.store.connection import connect

    # Without --name a worker is called host:pid, and its pid is not ours: any of this host.
    prefix = None if name else f"{socket.gethostname()}:"
    client = connect(settings)
    try:
        age = health.heartbeat_age(client, time.time(), name=name, prefix=prefix)
    except redis.RedisError as error:
        raise click.ClickException(f"cannot read worker heartbeats: {describe(error)}") from None
    finally:
        client.close()
    who = name or f"a worker of {prefix[:-1] if prefix else ''}"
    if age is None:
        raise click.ClickException(f"no heartbeat of {who} in Redis")
    if age > settings.worker_stale_seconds:
        raise click.ClickException(f"the last heartbeat of {who} is {age:.0f} s old")
    click.echo(f"ok: {who} beat {age:.1f} s ago")


def _gunicorn_command(settings: Settings, host: str, port: int) -> list[str]:
    # Everything else (workers, threads, logs, banner) is in service.gunicorn_conf, which a
    # container or a hand-run gunicorn uses as well.
    return [sys.executable, "-m", "gunicorn", "service.wsgi:app", "--bind", f"{host}:{port}",
            "--config", "python:service.gunicorn_conf"]  # fmt: skip


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Serve the API under gunicorn (Redis and a worker must run elsewhere)."""
    settings = _settings()
    _require_store_format(settings)
    os.execv(sys.executable, _gunicorn_command(settings, host, port))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--demo", is_flag=True, help="Load a realistic demo week first.")
def run(host: str, port: int, demo: bool) -> None:
    """Redis (embedded unless MAILFLOW_REDIS_URL), a worker, the notifier and the API, in one
    command.

    It supervises them: a child that dies is restarted (with backoff, logged), so the API keeps
    serving. The embedded store is made in MAILFLOW_DATA_DIR if there is none.
    """
    from service.cli.supervisor import ChildProcess, Supervised, Supervisor
    from service.config import Settings
    from service.store.embedded import DataDirLocked, DataDirTooNew, EmbeddedRedis

    settings = _settings()
    # A port in use is a mistake to report, not a death to restart gunicorn after forever.
    _require_free_port(host, port)
    embedded = None
    env = dict(os.environ)
    supervisor = Supervisor()
    if settings.redis_url is None:
        embedded = EmbeddedRedis(
            settings.data_path, fsync=settings.redis_fsync, server=settings.embedded_server
        )
        try:
            embedded.start()
        except (DataDirLocked, DataDirTooNew) as error:
            raise click.ClickException(str(error)) from None
        env["MAILFLOW_REDIS_URL"] = embedded.url
        click.echo(f"embedded Redis: {embedded.url} (AOF, appendfsync {settings.redis_fsync})",
                   err=True)  # fmt: skip
        server = embedded
        supervisor.add(Supervised("embedded redis-server", server.start,
                                  lambda: server.process.poll() if server.process else 1),
                       time.monotonic())  # fmt: skip
    worker = ChildProcess([sys.executable, "-m", "service.cli", "worker"], env)
    notifier = ChildProcess([sys.executable, "-m", "service.cli", "notifier"], env)
    api = ChildProcess(_gunicorn_command(settings, host, port), env)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        _require_store_format(Settings.from_env(env))
        demo_keys = _load_demo(Settings.from_env(env)) if demo else None
        for name, child in (("worker", worker), ("notifier", notifier),
                            ("API (gunicorn)", api)):  # fmt: skip
            child.start()
            supervisor.add(Supervised(name, child.start, child.exit_code), time.monotonic())
        if demo_keys is not None:
            click.echo(demo_commands(f"http://{host}:{port}", demo_keys, datetime.now(UTC)))
        while not stopping:
            supervisor.check(time.monotonic())
            time.sleep(0.2)
    finally:
        # API first (no new traces), then the worker (finishes its batch), then Redis (AOF).
        api.stop()
        worker.stop()
        notifier.stop()  # waits for the posts in flight and records them
        if embedded is not None:
            embedded.stop()
        click.echo("mailflow stopped", err=True)


def _require_store_format(settings: Settings) -> None:
    """Refuse to start on a store of another format, naming ``mailflow migrate``; a store
    that does not answer yet is left to /readyz and the API's own check."""
    import redis

    from service.store import store_format
    from service.store.connection import connect

    client = connect(settings)
    try:
        store_format.require_current(client)
    except store_format.StoreFormatError as error:
        raise click.ClickException(str(error)) from None
    except redis.RedisError:
        pass
    finally:
        client.close()


def _require_free_port(host: str, port: int) -> None:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            raise click.ClickException(f"cannot listen on {host}:{port}: {error}") from None


def _load_demo(settings: Settings, now: datetime | None = None) -> dict[str, str]:
    """Load the demo week into tenant ``demo``; return its read, ingest and admin keys."""
    from service.cli.demo import DEMO_TENANT, demo_keys, demo_traces
    from service.core.traces import IngestWindow, normalize_trace
    from service.store import traces as trace_store
    from service.store.connection import connect

    now = now or datetime.now(UTC)
    window = IngestWindow.at(now, settings.retention_days)
    accepted = [normalize_trace(t, window) for t in demo_traces(now)]
    totals = [0, 0]
    with closing(connect(settings)) as client:
        trace_store.register_tenant(client, DEMO_TENANT)
        dedupe = trace_store.DedupeWindow(now, settings.dedupe_days)
        for start in range(0, len(accepted), settings.max_batch):
            result = trace_store.ingest(client, DEMO_TENANT,
                                        accepted[start : start + settings.max_batch],
                                        dedupe)  # fmt: skip
            totals[0] += result.accepted
            totals[1] += result.duplicates
        keys = demo_keys(client, settings.data_path / "demo-keys.json", now)
    click.echo(f"demo week: {totals[0]} traces accepted, {totals[1]} already there", err=True)
    return keys


def demo_commands(base: str, keys: dict[str, str], now: datetime) -> str:
    """The commands ``run --demo`` prints; each works as printed (tests run the first)."""
    read = f"-H 'Authorization: Bearer {keys['read']}'"
    ingest = f"-H 'Authorization: Bearer {keys['ingest']}'"
    admin = f"-H 'Authorization: Bearer {keys['admin']}'"
    return (
        f"\nmailflow is serving on {base}  (Ctrl-C stops it); tenant 'demo'\n"
        f"  read key:   {keys['read']}\n"
        f"  ingest key: {keys['ingest']}\n"
        f"  admin key:  {keys['admin']}   (connector definitions, rule settings, tenant)\n\n"
        f"  curl -s {read} {base}/api/v1/mailflow/snapshot\n"
        f"  curl -s {read} '{base}/api/v1/mailflow/snapshot?days=1'\n"
        f"  curl -s -X POST {base}/api/v1/traces {ingest} -H 'Content-Type: application/json' \\\n"
        f'       -d \'[{{"timestamp": "{now.isoformat(timespec="seconds")}", '
        f'"direction": "inbound", "tls_version": "TLSv1.2"}}]\'\n'
        f"  curl -s -X PUT {admin} -H 'Content-Type: application/json' \\\n"
        f"       {base}/api/v1/connectors/inbound/Contoso%20Partner "
        f'-d \'{{"type": "partner", "forced_tls": true}}\'\n'
        f"  curl -s {base}/readyz\n"
        f"  open {base}/ for the dashboard (sign in with the read key)\n"
        f"  open {base}/docs for the API reference\n"
    )


@cli.command()
@click.option("--output", default="openapi/openapi.json", show_default=True, type=click.Path())
def openapi(output: str) -> None:
    """Write the OpenAPI spec generated from the code."""
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(spec_json() + "\n")
    click.echo(f"wrote {output}", err=True)


def spec_json() -> str:
    from service.app import close_app, create_app
    from service.web.context import state_of

    # The spec never needs Redis: a client is built but not connected.
    app = create_app({"redis_url": "redis://127.0.0.1:1/0"})
    openapi = state_of(app).openapi
    assert openapi is not None, "create_app documents the API"
    with app.app_context():
        spec = openapi.to_dict()
    close_app(app)
    return json.dumps(spec, indent=2, sort_keys=True)


def _register_commands() -> None:
    LazyGroup.lazy["ingest"] = "service.ingest.command:ingest"
    LazyGroup.lazy["migrate"] = "service.cli.migrate:migrate"


_register_commands()


def main() -> None:
    cli()


def _register_groups() -> None:
    LazyGroup.lazy["keys"] = "service.cli.keys:keys_group"
    LazyGroup.lazy["tenants"] = "service.cli.tenants:tenants_group"
    LazyGroup.lazy["tlsrpt-tokens"] = "service.cli.tlsrpt_tokens:tlsrpt_tokens_group"


_register_groups()


if __name__ == "__main__":
    main()
