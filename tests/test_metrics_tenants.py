"""/metrics behind MAILFLOW_METRICS_TOKEN: tenant names only with it, then today's message
counters per tenant, direction, connector and TLS version, with bounded label cardinality."""

from __future__ import annotations

import time

import pytest

from service.app import create_app
from service.core.traces import counter_field
from service.telemetry import metrics

TOKEN = "s3cret-metrics-token"


@pytest.fixture
def token_app(redis_server, clock, make_key, closing):  # type: ignore[no-untyped-def]
    return closing(create_app({"redis_url": redis_server.url, "CLOCK": clock,
                               "metrics_token": TOKEN}))  # fmt: skip


def _samples(text: str) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and not line.startswith("#")}  # fmt: skip


def _ingest(client, clock, n: int, connector: str | None, tls: str, tenant_key=None) -> None:  # type: ignore[no-untyped-def]
    traces = [{"timestamp": clock.now.isoformat(), "direction": "inbound", "tls_version": tls,
               "connector": connector, **({"connector_type": "partner"} if connector else {}),
               "id": f"{connector}-{tls}-{i}"} for i in range(n)]  # fmt: skip
    headers = {"Authorization": f"Bearer {tenant_key}"} if tenant_key else {}
    assert client.post("/api/v1/traces", json=traces, headers=headers).status_code == 202


def test_without_a_token_metrics_are_open_and_name_no_tenant(client, run_worker, clock) -> None:  # type: ignore[no-untyped-def]
    _ingest(client, clock, 2, "Contoso", "TLS1.2")
    text = client.get("/metrics").get_data(as_text=True)
    assert "tenant=" not in text
    assert _samples(text)["mailflow_stream_backlog_entries"] == 1  # summed
    run_worker()
    assert "mailflow_messages_total{" not in client.get("/metrics").get_data(as_text=True)


def test_with_a_token_metrics_need_it_and_carry_message_counters(
    token_app, run_worker, clock, make_key
) -> None:  # type: ignore[no-untyped-def]
    with token_app.test_client() as web:
        key, other = make_key("default"), make_key("acme")
        _ingest(web, clock, 3, "Contoso", "TLS1.2", key)
        _ingest(web, clock, 1, None, "none", key)
        _ingest(web, clock, 2, None, "TLS1.3", other)
        run_worker()
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            refused = web.get("/metrics", headers=headers)
            assert refused.status_code == 401 and refused.mimetype == "application/problem+json"
            assert "WWW-Authenticate" in refused.headers
        scraped = web.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert scraped.status_code == 200
    samples = _samples(scraped.get_data(as_text=True))
    name = "mailflow_messages_total"
    assert samples[f'{name}{{tenant="default",direction="inbound",connector="Contoso",'
                   'tls_version="TLS1.2",security="encrypted"}'] == 3  # fmt: skip
    assert samples[f'{name}{{tenant="default",direction="inbound",connector="(none)",'
                   'tls_version="none",security="none"}'] == 1  # fmt: skip
    assert samples[f'{name}{{tenant="acme",direction="inbound",connector="(none)",'
                   'tls_version="TLS1.3",security="encrypted"}'] == 2  # fmt: skip
    assert samples['mailflow_stream_backlog_entries{tenant="default"}'] == 0


def test_connector_labels_are_capped_per_tenant_and_direction(
    client, run_worker, clock, redis_client
) -> None:  # type: ignore[no-untyped-def]
    cap = metrics.MAX_CONNECTORS_LABELLED
    for n in range(cap + 5):  # connector c00 has the most messages, c54 the fewest
        _ingest(client, clock, cap + 5 - n, f"c{n:02d}", "TLS1.2")
    run_worker()
    series = metrics.tenant_messages(redis_client, clock.now.date().isoformat(), True)
    named = {s.split('connector="')[1].split('"')[0] for s in series}
    assert len(named) == cap + 1 and "(other)" in named and "c00" in named
    assert "c54" not in named
    other = [v for s, v in series.items() if 'connector="(other)"' in s]
    assert other == [sum(range(1, 6))]  # the five smallest, summed
    assert sum(series.values()) == sum(range(1, cap + 6))  # nothing lost


def test_scrape_cost_with_many_tenants_stays_bounded(redis_client, clock) -> None:  # type: ignore[no-untyped-def]
    day = clock.now.date().isoformat()
    pipe = redis_client.pipeline(transaction=False)
    for t in range(200):
        pipe.sadd("mf:tenants", f"t{t}")
        fields = {counter_field("inbound", f"c{c}", "partner", "TLS1.2"): 5 for c in range(20)}
        pipe.hset(f"mf:{{t{t}}}:day:{day}", mapping=fields)
    pipe.execute()
    started = time.perf_counter()
    series = metrics.tenant_messages(redis_client, day, True)
    elapsed = time.perf_counter() - started
    assert len(series) == 200 * 20
    assert elapsed < 2.0, elapsed  # measured: see docs/prometheus.md
