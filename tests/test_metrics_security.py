"""``mailflow_messages_total`` carries each message's transport security class, and reads each
tenant's local today: traces of known classes, a Berlin tenant past its local midnight, the
real /metrics endpoint with a token."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.app import create_app
from service.store import tenant_zone
from service.telemetry import metrics

TOKEN = "s3cret-metrics-token"

# (tls_version, tls_auth, tls_policy) -> the class the docs' table gives, and how many.
KNOWN = [
    (("TLS1.3", None, "dane"), "dane", 4),
    (("TLS1.2", "verified", "mta-sts"), "mta-sts", 3),
    (("TLS1.2", "verified", None), "authenticated", 2),
    (("TLS1.2", None, "secure"), "authenticated", 1),
    (("TLS1.2", "untrusted", "dane"), "encrypted", 5),
    (("TLS1.2", None, None), "encrypted", 6),
    (("none", None, None), "none", 7),
]


@pytest.fixture
def token_app(redis_server, clock, closing):  # type: ignore[no-untyped-def]
    return closing(create_app({"redis_url": redis_server.url, "CLOCK": clock,
                               "metrics_token": TOKEN}))  # fmt: skip


def _traces(clock, tag: str) -> list[dict]:  # type: ignore[no-untyped-def]
    out = []
    for (tls, auth, policy), _, n in KNOWN:
        for i in range(n):
            trace = {"timestamp": clock.now.isoformat(), "direction": "outbound",
                     "tls_version": tls, "connector": "Partner", "connector_type": "partner",
                     "id": f"{tag}-{tls}-{auth}-{policy}-{i}"}  # fmt: skip
            trace |= {"tls_auth": auth} if auth else {}
            out.append(trace | ({"tls_policy": policy} if policy else {}))
    return out


def _messages(text: str) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith("mailflow_messages_total{")}  # fmt: skip


def _expected(tenant: str) -> dict[str, float]:
    truth: dict[str, float] = {}
    for (tls, _, _), klass, n in KNOWN:
        series = (f'mailflow_messages_total{{tenant="{tenant}",direction="outbound",'
                  f'connector="Partner",tls_version="{tls}",security="{klass}"}}')  # fmt: skip
        truth[series] = truth.get(series, 0) + n
    return truth


def test_messages_carry_the_security_class_of_each_tenants_local_today(
    token_app, run_worker, clock, make_key, redis_client
) -> None:  # type: ignore[no-untyped-def]
    # 23:30 UTC: already the next day in Berlin (00:30 in winter, 01:30 in summer).
    clock.now = clock.now.replace(hour=23, minute=30, second=0, microsecond=0)
    berlin_key, utc_key = make_key("berlin"), make_key("utc")
    tenant_zone.store_zone(redis_client, "berlin", "Europe/Berlin")
    auth = {"berlin": {"Authorization": f"Bearer {berlin_key}"},
            "utc": {"Authorization": f"Bearer {utc_key}"}}  # fmt: skip
    with token_app.test_client() as web:
        for tenant, headers in auth.items():
            posted = web.post("/api/v1/traces", json=_traces(clock, tenant), headers=headers)
            assert posted.status_code == 202, posted.get_json()
        run_worker()
        scraped = web.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert scraped.status_code == 200
        assert _messages(scraped.get_data(as_text=True)) == _expected("berlin") | _expected("utc")
        text = scraped.get_data(as_text=True)
        assert "each tenant's local today" in text and "local midnight" in text  # the HELP
        # An hour later the UTC tenant's day turns; Berlin's local today still holds its mail.
        clock.advance(hours=1)
        later = _messages(web.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
                          .get_data(as_text=True))  # fmt: skip
    assert later == _expected("berlin")


def test_the_berlin_tenant_reads_its_local_day_not_the_utc_day(
    run_worker, clock, make_key, redis_client, client
) -> None:  # type: ignore[no-untyped-def]
    clock.now = clock.now.replace(hour=23, minute=30, second=0, microsecond=0)
    key = make_key("berlin")
    tenant_zone.store_zone(redis_client, "berlin", "Europe/Berlin")
    posted = client.post("/api/v1/traces", json=_traces(clock, "b"),
                         headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert posted.status_code == 202
    run_worker()
    local = metrics.tenant_messages(redis_client, clock.now, True)
    assert local == _expected("berlin")
    utc_day = clock.now.date().isoformat()
    assert metrics.tenant_messages(redis_client, utc_day, True) == {}  # nothing on the UTC day
    next_day = (clock.now + timedelta(days=1)).date().isoformat()
    assert metrics.tenant_messages(redis_client, next_day, True) == local
