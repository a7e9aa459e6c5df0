"""Tenants: list, show, reset days (counters and dedupe) and delete, by CLI and API.

Runs on a single Redis and (``make test``) on a Redis Cluster: every key a reset or a delete
touches carries the tenant's hash tag.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from datetime import timedelta

from click.testing import CliRunner

from service.cli.commands import cli
from service.ingest.command import ingest
from service.store import keys, refresh_lease
from tests.ingest.support import FIXTURES, dated_fixture


def _api(live_api, method, path, key, body=None):  # type: ignore[no-untyped-def]
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(live_api.url + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {key}",
                                              "Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def _connector_rows(live_api):  # type: ignore[no-untyped-def]
    _, report = _api(live_api, "GET", "/api/v1/connectors?days=2", live_api.key)
    return {(row["direction"], row["name"]): row["messages"] for row in report["rows"]}


def test_reset_then_ingest_again_with_a_mapping_shows_it_with_equal_totals(
    live_api, make_key, tmp_path, caplog
) -> None:  # type: ignore[no-untyped-def]
    log = dated_fixture(tmp_path, live_api.clock.now)
    args = [str(log), "--url", live_api.url, "--key", live_api.key,
            "--year", str(live_api.clock.now.year), "--timezone", "UTC"]  # fmt: skip
    first = CliRunner().invoke(ingest, args)
    assert "accepted: 13  duplicates: 0" in first.stderr, first.output
    live_api.run_worker()
    before = _connector_rows(live_api)
    assert set(before) == {("inbound", None), ("outbound", None)}

    mapped = [*args, "--connectors", str(FIXTURES / "connectors.toml")]
    refused = CliRunner().invoke(ingest, mapped)  # without a reset: all duplicates
    assert "accepted: 0  duplicates: 13" in refused.stderr, refused.output

    admin = make_key("default", "admin")
    day = live_api.clock.now.date().isoformat()
    with caplog.at_level(logging.WARNING, logger="mailflow.admin"):
        status, result = _api(live_api, "POST", "/api/v1/tenant/reset", admin,
                              {"start": day, "end": day})  # fmt: skip
    assert status == 200, result
    assert result == {"tenant": "default", "days": [day], "messages_removed": 13}
    (line,) = [r for r in caplog.records if r.name == "mailflow.admin"]
    assert (line.admin_action, line.tenant, line.outcome) == ("tenant.reset", "default", "done")
    assert line.actor.startswith("key:") and admin.split("_", 2)[2] not in line.getMessage()
    assert _connector_rows(live_api) == {}  # no stale view survives the reset

    again = CliRunner().invoke(ingest, mapped)
    assert "accepted: 13  duplicates: 0" in again.stderr, again.output
    live_api.run_worker()
    after = _connector_rows(live_api)
    assert ("inbound", "Alpha partner") in after and ("outbound", "Eta outbound") in after
    assert sum(after.values()) == sum(before.values()) == 13
    # Sent a third time, the reset days' ids are known again.
    third = CliRunner().invoke(ingest, mapped)
    assert "accepted: 0  duplicates: 13" in third.stderr, third.output


def test_reset_leaves_other_days_and_their_dedupe_alone(client, run_worker, clock) -> None:  # type: ignore[no-untyped-def]
    today, yesterday = clock.now, clock.now - timedelta(days=1)
    traces = [{"id": f"t{n}", "timestamp": when.isoformat(), "direction": "inbound",
               "tls_version": "TLSv1.2"} for n, when in enumerate([today, yesterday] * 3)]  # fmt: skip
    assert client.post("/api/v1/traces", json=traces).json["accepted"] == 6
    run_worker()
    day = today.date().isoformat()
    reset = client.post("/api/v1/tenant/reset", json={"start": day, "end": day})
    assert reset.status_code == 200 and reset.json["messages_removed"] == 3
    again = client.post("/api/v1/traces", json=traces).json
    assert (again["accepted"], again["duplicates"]) == (3, 3)  # only today's ids are new
    run_worker()
    shown = client.get("/api/v1/tenant").json
    assert [(d["date"], d["messages"]) for d in shown["days"]] == [
        (yesterday.date().isoformat(), 3), (day, 3)]  # fmt: skip
    assert shown["reset_days"] == [{"date": day, "resets": 1}]


def test_reset_refuses_while_traces_of_those_days_wait_to_be_folded(
    client, run_worker, clock, redis_client
) -> None:  # type: ignore[no-untyped-def]
    yesterday = (clock.now - timedelta(days=1)).date().isoformat()
    today = clock.now.date().isoformat()
    trace = {"id": "a", "timestamp": clock.now.isoformat(), "direction": "inbound",
             "tls_version": "TLSv1.3"}  # fmt: skip
    assert client.post("/api/v1/traces", json=[trace]).json["accepted"] == 1
    # Yesterday has nothing waiting: a reset of it goes ahead, alone or before today's refusal.
    assert client.post("/api/v1/tenant/reset",
                       json={"start": yesterday, "end": yesterday}).status_code == 200  # fmt: skip
    partial = client.post("/api/v1/tenant/reset", json={"start": yesterday, "end": today})
    assert partial.status_code == 409
    assert partial.json["detail"].startswith(f"{yesterday}..{yesterday} were reset; ")
    refused = client.post("/api/v1/tenant/reset", json={"start": today, "end": today})
    assert refused.status_code == 409 and refused.mimetype == "application/problem+json"
    assert "waiting to be folded" in refused.json["detail"]
    assert redis_client.hget(keys.dedupe_resets("default"), today) is None  # nothing done
    run_worker()
    done = client.post("/api/v1/tenant/reset", json={"start": today, "end": today})
    assert done.status_code == 200 and done.json["messages_removed"] == 1


def test_reset_refuses_while_a_worker_refreshes_the_tenant(client, clock, redis_client) -> None:  # type: ignore[no-untyped-def]
    assert refresh_lease.take(redis_client, "default", "some-worker", 1.0)
    day = clock.now.date().isoformat()
    refused = client.post("/api/v1/tenant/reset", json={"start": day, "end": day})
    assert refused.status_code == 409 and refused.headers["Retry-After"] == "5"
    refresh_lease.release(redis_client, "default", "some-worker")
    assert client.post("/api/v1/tenant/reset", json={"start": day, "end": day}).status_code == 200


def test_reset_refuses_bad_days(client, clock) -> None:  # type: ignore[no-untyped-def]
    day = clock.now.date()
    backwards = client.post("/api/v1/tenant/reset",
                            json={"start": day.isoformat(),
                                  "end": (day - timedelta(days=1)).isoformat()})  # fmt: skip
    assert backwards.status_code == 422
    too_long = client.post("/api/v1/tenant/reset",
                           json={"start": (day - timedelta(days=400)).isoformat(),
                                 "end": day.isoformat()})  # fmt: skip
    assert too_long.status_code == 422
    assert client.post("/api/v1/tenant/reset", json={"start": "x"}).status_code == 422


def _tenant_keys(redis_client, tenant):  # type: ignore[no-untyped-def]
    return sorted(redis_client.scan_iter(match=keys.tenant_pattern(tenant)))


def test_delete_removes_the_tenant_and_its_keys_and_nothing_else(
    app, redis_server, redis_client, make_key, run_worker, clock
) -> None:  # type: ignore[no-untyped-def]
    trace = {"timestamp": clock.now.isoformat(), "direction": "inbound", "tls_version": "none"}
    for tenant in ("gone", "kept"):
        key = make_key(tenant)
        with app.test_client() as c:
            sent = c.post(
                "/api/v1/traces", json=[trace], headers={"Authorization": f"Bearer {key}"}
            )
            assert sent.status_code == 202
    run_worker()
    with app.test_client() as c:
        c.get("/api/v1/mailflow/snapshot", headers={"Authorization": f"Bearer {key}"})
    kept_before = _tenant_keys(redis_client, "kept")
    assert _tenant_keys(redis_client, "gone")

    env = {"MAILFLOW_REDIS_URL": redis_server.url}
    listed = CliRunner().invoke(cli, ["tenants", "list"], env=env)
    assert listed.stdout.split() == ["default", "gone", "kept"]
    deleted = CliRunner().invoke(cli, ["tenants", "delete", "gone", "--yes"], env=env)
    assert deleted.exit_code == 0, deleted.output
    assert _tenant_keys(redis_client, "gone") == []
    assert _tenant_keys(redis_client, "kept") == kept_before
    assert CliRunner().invoke(cli, ["tenants", "list"], env=env).stdout.split() == [
        "default", "kept"]  # fmt: skip
    assert not redis_client.sismember(keys.tenants(), "gone")
    shown = json.loads(CliRunner().invoke(cli, ["tenants", "show", "kept", "--json"],
                                          env=env).stdout)  # fmt: skip
    assert shown["messages"] == 1 and len(shown["keys"]) == 1
    day = clock.now.date().isoformat()
    text = CliRunner().invoke(cli, ["tenants", "show", "kept"], env=env).stdout
    assert f"tenant kept: 1 messages on 1 days ({day} .. {day})" in text
    assert f"  {day}  1" in text and shown["keys"][0]["id"] in text


def test_delete_refuses_while_a_worker_folds_and_keeps_everything(
    client, redis_client, clock
) -> None:  # type: ignore[no-untyped-def]
    trace = {"timestamp": clock.now.isoformat(), "direction": "inbound", "tls_version": "none"}
    assert client.post("/api/v1/traces", json=[trace]).status_code == 202
    # A worker has read the entry and not folded it yet.
    redis_client.xreadgroup(keys.CONSUMER_GROUP, "w1", {keys.stream("default"): ">"}, count=10)
    before = _tenant_keys(redis_client, "default")
    wrong = client.delete("/api/v1/tenant?confirm=other")
    assert wrong.status_code == 422
    refused = client.delete("/api/v1/tenant?confirm=default")
    assert refused.status_code == 409, refused.json
    assert _tenant_keys(redis_client, "default") == before
    assert client.get("/api/v1/tenant").status_code == 200  # the keys still work


def test_delete_through_the_api_ends_the_keys(client, run_worker, redis_client, clock) -> None:  # type: ignore[no-untyped-def]
    trace = {"timestamp": clock.now.isoformat(), "direction": "inbound", "tls_version": "none"}
    assert client.post("/api/v1/traces", json=[trace]).status_code == 202
    run_worker()
    assert client.delete("/api/v1/tenant?confirm=default").status_code == 204
    assert _tenant_keys(redis_client, "default") == []
    assert client.get("/api/v1/tenant").status_code == 401


def test_cli_reset_removes_the_days_counters_and_says_so(
    client, run_worker, redis_server, redis_client, clock
) -> None:  # type: ignore[no-untyped-def]
    trace = {"timestamp": clock.now.isoformat(), "direction": "inbound", "tls_version": "none"}
    assert client.post("/api/v1/traces", json=[trace, {**trace, "id": "b"}]).status_code == 202
    run_worker()
    day = clock.now.date().isoformat()
    assert redis_client.exists(keys.day_counts("default", day))
    env = {"MAILFLOW_REDIS_URL": redis_server.url}
    args = ["tenants", "reset", "default", "--start", day, "--end", day]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    assert "reset 1 days of default: 2 messages removed" in result.stderr
    assert not redis_client.exists(keys.day_counts("default", day))
    bad = CliRunner().invoke(cli, ["tenants", "reset", "Bad!", "--start", day, "--end", day],
                             env=env)  # fmt: skip
    assert bad.exit_code == 2


def test_a_new_mapping_after_a_reset_is_not_refused_for_the_old_ones_connectors(
    redis_server, redis_client, clock, make_key, run_worker, closing
) -> None:  # type: ignore[no-untyped-def]
    from service.app import create_app

    app = closing(create_app({"redis_url": redis_server.url, "CLOCK": clock,
                              "max_connectors": 3}))  # fmt: skip
    headers = {"Authorization": f"Bearer {make_key('default')}"}
    yesterday = clock.now - timedelta(days=1)

    def send(web, names, when, prefix):  # type: ignore[no-untyped-def]
        traces = [{"id": f"{prefix}{n}", "timestamp": when.isoformat(), "direction": "inbound",
                   "tls_version": "TLS1.2", "connector": name, "connector_type": "partner"}
                  for n, name in enumerate(names)]  # fmt: skip
        return web.post("/api/v1/traces", json=traces, headers=headers).json

    with app.test_client() as web:
        assert send(web, ["kept"], yesterday, "y")["accepted"] == 1  # kept: yesterday too
        assert send(web, ["kept", "old-1", "old-2"], clock.now, "t")["accepted"] == 3
        run_worker()
        day = clock.now.date().isoformat()
        reset = web.post("/api/v1/tenant/reset", json={"start": day, "end": day},
                         headers=headers)  # fmt: skip
        assert reset.status_code == 200
        # old-1 and old-2 had only today: their places are free; `kept` keeps yesterday.
        again = send(web, ["new-1", "new-2"], clock.now, "n")
    assert (again["accepted"], again["rejected"]) == (2, 0), again
    registry = redis_client.zrange(keys.connector_registry("default"), 0, -1, withscores=True)
    assert {(m.decode().split("\x1f")[1], int(s)) for m, s in registry} == {
        ("kept", yesterday.date().toordinal()), ("new-1", clock.now.date().toordinal()),
        ("new-2", clock.now.date().toordinal())}  # fmt: skip


def test_reset_clears_blocked_and_per_domain_counters_and_forgets_admitted_names(
    client, redis_client, settings, clock
) -> None:  # type: ignore[no-untyped-def]
    """A reset day loses its blocked and per-domain counters too (no cached window sum of them
    survives), and a worker that admitted the day's names before the reset asks again: its
    memory of them is of the day before the reset."""
    from service.store.connection import connect_url
    from service.worker.loop import Worker

    now, day = clock.now.isoformat(), clock.now.date().isoformat()

    def sent(domain: str, n: int, **extra: object) -> list[dict]:
        return [{"id": f"{domain}-{extra.get('outcome', 'ok')}-{i}", "timestamp": now,
                 "direction": "outbound", "tls_version": None, "recipient_domain": domain,
                 **extra} for i in range(n)]  # fmt: skip

    def domains() -> dict[str, int]:
        rows = client.get("/api/v1/domains?days=7").json["rows"]
        return {row["domain"]: row["messages"] for row in rows}

    blocked = {"outcome": "blocked", "blocked_reason": "TLS is required, but was not offered"}
    worker_client = connect_url(settings.effective_redis_url)
    try:
        worker = Worker(worker_client, settings.with_overrides({"domain_limit": 2}), clock=clock)
        assert client.post("/api/v1/traces",
                           json=sent("a.example", 2) + sent("b.example", 1)
                           + sent("a.example", 1, **blocked)).json["accepted"] == 4  # fmt: skip
        worker.work(burst=True)
        assert domains() == {"a.example": 2, "b.example": 1}
        assert client.get("/api/v1/mailflow/blocked?days=7").json["records"]

        assert client.post("/api/v1/tenant/reset",
                           json={"start": day, "end": day}).status_code == 200  # fmt: skip
        worker.work(burst=True)
        assert domains() == {}
        assert client.get("/api/v1/mailflow/blocked?days=7").json["records"] == []

        # The day's names set is empty again: c and d take its two places, and a, admitted
        # before the reset, is now one name too many.
        assert (
            client.post(
                "/api/v1/traces", json=sent("c.example", 1) + sent("d.example", 1)
            ).status_code
            == 202
        )
        worker.work(burst=True)
        assert client.post("/api/v1/traces", json=sent("a.example", 2)).status_code == 202
        worker.work(burst=True)
        assert domains() == {"c.example": 1, "d.example": 1, "(other domains)": 2}
    finally:
        worker_client.close()


def test_the_per_name_kinds_a_reset_clears_are_those_counted() -> None:
    from service.core.traces import DIRECTIONS
    from service.core.who import KINDS

    assert tuple(kind.name for kind in KINDS) == keys.WHO_KIND_NAMES
    assert keys.WHO_DIRECTIONS == DIRECTIONS
