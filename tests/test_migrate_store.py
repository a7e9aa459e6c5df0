"""Upgrading a store written by the previous release (0.1.0, commit 9cb2646, format 1).

The fixture (tests/fixtures/store_9cb2646.json, made by make_store_9cb2646.py) holds every key
that release wrote and every report it answered at its own fixed clock. The store is restored
with each key's remaining time to live as a duration, and the clock of these tests is that
fixed clock (not the suite's), so they hold at any date.
"""

from __future__ import annotations

from datetime import datetime

import pytest
import redis
from click.testing import CliRunner

from service.app import close_app, create_app
from service.cli import cli
from service.store import keys, store_format
from service.store.migrations import STEPS
from tests.conftest import Clock
from tests.store_fixture import differences, fixture_now, load_dump, restore

DUMP = load_dump()
TENANTS = sorted({answer["tenant"] for answer in DUMP["answers"]})
# Reports of counters only: what a worker's evaluation at the fixed clock cannot change.
COUNTER_REPORTS = ("/api/v1/mailflow/tls", "/api/v1/connectors")


@pytest.fixture
def old_store(redis_client: redis.Redis) -> redis.Redis:
    restore(redis_client, DUMP)
    return redis_client


@pytest.fixture
def fixture_clock() -> Clock:
    return Clock(fixture_now(DUMP))


def mailflow(redis_url: str, *args: str, today: datetime | None = None):
    """The ``mailflow`` command, in this process, on the test store."""
    extra = ["--today", today.date().isoformat()] if today is not None else []
    return CliRunner().invoke(cli, [*args, *extra], env={"MAILFLOW_REDIS_URL": redis_url},
                              catch_exceptions=False)  # fmt: skip


def report_differences(app, paths: tuple[str, ...] = ()) -> list[str]:
    """Every difference between today's answers and the recorded ones (only the answers whose
    path starts with one of ``paths``, if given), asked with the keys 0.1.0 made."""
    readers = DUMP["api_keys"]
    http = app.test_client()
    found = []
    for answer in DUMP["answers"]:
        if paths and not answer["path"].startswith(paths):
            continue
        response = http.get(answer["path"],
                            headers={"Authorization": f"Bearer {readers[answer['tenant']]}"})  # fmt: skip
        where = f"{answer['tenant']} {answer['path']}"
        if response.status_code != 200:
            found.append(f"{where}: status {response.status_code}")
            continue
        found += [f"{where}{d}" for d in differences(_by_id(answer["body"]),
                                                     _by_id(response.get_json()))]  # fmt: skip
    return found


def _by_id(body: dict) -> dict:
    # The rule list of the new release holds the old rules and new ones: compared by id.
    if "rules" in body:
        return {**body, "rules": {rule["id"]: rule for rule in body["rules"]}}
    return body


def test_a_new_store_is_stamped_with_the_current_format(redis_client, client, clock) -> None:
    assert store_format.read_format(redis_client) is None
    trace = {"id": "t1", "timestamp": clock.now.isoformat(), "direction": "inbound",
             "tls_version": "TLSv1.3"}  # fmt: skip
    assert client.post("/api/v1/traces", json=[trace]).status_code == 202
    assert redis_client.get(keys.store_format()) == str(store_format.CURRENT).encode()


def test_a_store_of_the_previous_release_is_refused_naming_mailflow_migrate(
    old_store, redis_server, fixture_clock
) -> None:
    assert store_format.read_format(old_store) == 1
    app = create_app({"redis_url": redis_server.url, "CLOCK": fixture_clock})
    try:
        http = app.test_client()
        trace = {"id": "new-1", "timestamp": fixture_clock.now.isoformat(),
                 "direction": "inbound", "tls_version": "TLSv1.3"}  # fmt: skip
        refused = http.post("/api/v1/traces", json=[trace],
                            headers={"Authorization": f"Bearer {DUMP['api_keys']['acme']}"})  # fmt: skip
        assert refused.status_code == 503
        assert refused.mimetype == "application/problem+json"
        assert "`mailflow migrate`" in refused.json["detail"]
        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert ready.mimetype == "application/problem+json"
        assert "mailflow migrate" in ready.json["checks"]["store_format"]
    finally:
        close_app(app)
    for command in (("worker", "--burst"), ("serve",)):
        result = mailflow(redis_server.url, *command)
        assert result.exit_code == 1, command
        assert "run `mailflow migrate`" in result.output
    assert store_format.read_format(old_store) == 1  # refusing changed nothing


def test_mailflow_migrate_resumes_and_every_report_equals_the_previous_release(
    old_store, redis_server, fixture_clock
) -> None:
    url, today = redis_server.url, fixture_clock.now
    dry = mailflow(url, "migrate", "--dry-run")
    assert dry.exit_code == 0 and f"{len(STEPS)} steps to run" in dry.output

    # Interrupted after every single batch (mid-step too: a step of several batches records its
    # cursor) and started again each time, until it is done; the store refused meanwhile.
    runs = []
    while not runs or runs[-1].exit_code == 3:
        assert len(runs) < 100
        runs.append(mailflow(url, "migrate", "--max-batches", "1", today=today))
        if runs[-1].exit_code == 3:
            assert "run `mailflow migrate` again" in runs[-1].output
            assert store_format.read_format(old_store) == 1
        if len(runs) == len(TENANTS) + 1:  # into the second step, a cursor in the middle
            assert old_store.hget(keys.migration_progress(TENANTS[0], STEPS[1].name),
                                  "cursor") == b"31"  # fmt: skip
    resumed = runs[-1]
    assert resumed.exit_code == 0, resumed.output
    # Each tenant: one batch to drop caches (a small store), three of 31 days of counters,
    # one for the seen ids and one to signal the workers.
    assert len(runs) == len(TENANTS) * 6
    assert f"now of format {store_format.CURRENT}" in resumed.output
    assert store_format.read_format(old_store) == store_format.CURRENT
    assert not list(old_store.scan_iter(match="mf:*migrate*", count=1000))
    # The previous release's caches are gone; its counters, definitions and insights stay.
    for tenant in TENANTS:
        assert not list(old_store.scan_iter(match=keys.tenant_pattern(tenant, "view:*")))
        assert not list(old_store.scan_iter(match=keys.tenant_pattern(tenant, "blocksum:*")))
    known = {m.decode() for m in old_store.zrange(keys.connector_registry("acme"), 0, -1)}
    assert known == {"inbound\x1fpartner-a", "inbound\x1frelay-1", "outbound\x1fsmarthost",
                     "outbound\x1fpartner-b"}  # fmt: skip
    assert old_store.sismember(keys.tenants_with_entries(), "acme") == bool(
        old_store.xlen(keys.stream("acme"))
    )
    assert old_store.zscore(keys.tenants_to_check(), "globex") is not None

    again = mailflow(url, "migrate", today=today)
    assert again.exit_code == 0 and "nothing to do" in again.output

    app = create_app({"redis_url": url, "CLOCK": fixture_clock})
    try:
        assert report_differences(app) == []
    finally:
        close_app(app)


def test_after_the_migration_the_new_worker_keeps_the_counters_equal(
    old_store, redis_server, fixture_clock, settings
) -> None:
    from service.store.connection import connect_url
    from service.worker.loop import Worker

    assert mailflow(redis_server.url, "migrate", today=fixture_clock.now).exit_code == 0
    worker_client = connect_url(redis_server.url)
    try:
        Worker(worker_client, settings, clock=fixture_clock).work(burst=True)
    finally:
        worker_client.close()
    app = create_app({"redis_url": redis_server.url, "CLOCK": fixture_clock})
    try:
        assert report_differences(app, COUNTER_REPORTS) == []
    finally:
        close_app(app)


def test_after_the_migration_new_traces_add_to_the_old_counters(
    old_store, redis_server, fixture_clock, settings
) -> None:
    from service.store.connection import connect_url
    from service.worker.loop import Worker

    assert mailflow(redis_server.url, "migrate", today=fixture_clock.now).exit_code == 0
    path = "/api/v1/mailflow/snapshot?days=1"
    before = next(a["body"] for a in DUMP["answers"]
                  if a["tenant"] == "globex" and a["path"] == path)  # fmt: skip
    new = [{"id": f"after-{direction}-{n}", "timestamp": fixture_clock.now.isoformat(),
            "direction": direction, "connector": name, "connector_type": kind,
            "tls_version": "TLSv1.2"}
           for n in range(5) for direction, name, kind in (("inbound", "partner-a", "partner"),
                                                            ("outbound", "smarthost", "onpremises"))]  # fmt: skip
    app = create_app({"redis_url": redis_server.url, "CLOCK": fixture_clock})
    try:
        http = app.test_client()
        answer = http.post("/api/v1/traces", json=new,
                           headers={"Authorization": f"Bearer {DUMP['api_keys']['globex']}"})  # fmt: skip
        assert answer.status_code == 202, answer.data
        assert answer.json["accepted"] == 10
        worker_client = connect_url(redis_server.url)
        try:
            Worker(worker_client, settings, clock=fixture_clock).work(burst=True)
        finally:
            worker_client.close()
        after = http.get(path, headers={"Authorization": f"Bearer {DUMP['api_keys']['globex']}"})
        for direction in ("inbound", "outbound"):
            old, now = before["directions"][direction], after.json["directions"][direction]
            assert now["messages"] == old["messages"] + 5
            assert now["encrypted_messages"] == old["encrypted_messages"] + 5
            assert now["tls"]["TLS1.2"]["messages"] == old["tls"]["TLS1.2"]["messages"] + 5
    finally:
        close_app(app)


def test_migrate_stamps_a_new_store_and_refuses_a_newer_one(redis_client, redis_server) -> None:
    done = mailflow(redis_server.url, "migrate")
    assert done.exit_code == 0, done.output
    assert store_format.read_format(redis_client) == store_format.CURRENT
    redis_client.set(keys.store_format(), store_format.CURRENT + 1)
    refused = mailflow(redis_server.url, "migrate")
    assert refused.exit_code == 1
    assert "written by a newer mailflow" in refused.output
    worker = mailflow(redis_server.url, "worker", "--burst")
    assert worker.exit_code == 1 and "newer mailflow" in worker.output


def test_ids_the_previous_release_accepted_stay_duplicates_after_the_migration(
    old_store, redis_server, fixture_clock
) -> None:
    """0.1.0 named its seen-sets by the traces' days, which may lie days before their
    acceptance; its promise was the dedupe window after the last acceptance. Three days after
    the fixture's clock, every id acme sent three days before it is still known."""
    from datetime import timedelta

    from tests.fixtures.make_store_9cb2646 import traces

    assert mailflow(redis_server.url, "migrate", today=fixture_clock.now).exit_code == 0
    first_sent = fixture_clock.now - timedelta(days=3)  # as make_store_9cb2646 sent them
    again = traces("acme", 1, first_sent, days=3, count=60)
    later = Clock(fixture_clock.now + timedelta(days=3))
    app = create_app({"redis_url": redis_server.url, "CLOCK": later})
    try:
        answer = app.test_client().post(
            "/api/v1/traces",
            json=again,
            headers={"Authorization": f"Bearer {DUMP['api_keys']['acme']}"},
        )
        assert answer.status_code == 202, answer.data
        assert (answer.json["accepted"], answer.json["duplicates"]) == (0, 60)
    finally:
        close_app(app)
