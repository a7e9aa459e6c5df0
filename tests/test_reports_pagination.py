"""Paging through a large connector report while mail keeps arriving: every row exactly once."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from service.app import create_app
from tests.conftest import KeyedClient, close_app
from tests.helpers import post_batches

CONNECTORS = 2000


@pytest.fixture
def app(redis_client, redis_server, clock, make_key):
    """The app with room for more connectors than MAILFLOW_MAX_CONNECTORS allows by default:
    a report of thousands of rows to page through."""
    app = create_app({"redis_url": redis_server.url, "CLOCK": clock, "max_connectors": 5000})
    app.test_client_class = type("DefaultTenantClient", (KeyedClient,),
                                 {"default_key": make_key("default")})  # fmt: skip
    yield app
    close_app(app)


def traces_for(names, clock, prefix: str, rng: random.Random):
    return [
        {"id": f"{prefix}{i}", "timestamp": clock.now.isoformat(), "direction": "inbound",
         "connector": name, "connector_type": "partner",
         "tls_version": rng.choice(["TLS1.2", "TLS1.3", "TLS1.0", None])}
        for i, name in enumerate(names)
    ]  # fmt: skip


@pytest.mark.parametrize("sort", ["-messages", "name", "-TLS1.2"])
def test_every_row_exactly_once_while_traces_arrive(client, clock, run_worker, sort):
    rng = random.Random(9)
    names = [f"conn-{n:04d}" for n in range(CONNECTORS)]
    first = traces_for(names, clock, "a", rng) + traces_for(names[:700], clock, "b", rng)
    post_batches(client, first)
    run_worker()
    truth = Counter(t["connector"] for t in first)

    seen: list[str] = []
    cursor, pages, batch = None, 0, 0
    while True:
        query = {"limit": 300, "sort": sort}
        if cursor:
            query["cursor"] = cursor
        page = client.get("/api/v1/connectors", query_string=query)
        assert page.status_code == 200, page.json
        for row in page.json["rows"]:
            seen.append(row["name"])
            assert row["messages"] == truth[row["name"]]  # the numbers of the first page's moment
        assert page.json["total_rows"] == CONNECTORS
        cursor, pages = page.json["next_cursor"], pages + 1
        if cursor is None:
            break
        # Mail keeps flowing between pages: more traffic on existing connectors (changing the
        # sort order) and new connectors, folded by the worker before the next page.
        batch += 1
        busy = rng.sample(names, 400) + [f"new-{batch}-{n}" for n in range(50)]
        post_batches(client, traces_for(busy, clock, f"c{batch}-", rng))
        run_worker()
    assert pages == 7
    assert len(seen) == len(set(seen)) == CONNECTORS
    assert set(seen) == set(names)

    fresh = client.get("/api/v1/connectors", query_string={"limit": 1000}).json
    assert fresh["total_rows"] == CONNECTORS + 50 * batch  # a new query sees the new mail


def test_expired_cursor_is_410(client, clock, run_worker, redis_client):
    rng = random.Random(1)
    post_batches(client, traces_for([f"c{n}" for n in range(30)], clock, "x", rng))
    run_worker()
    page = client.get("/api/v1/connectors?limit=10").json
    assert page["next_cursor"]
    pins = list(redis_client.scan_iter(match="mf:{default}:pin:*"))
    assert pins and all(0 < redis_client.ttl(k) <= 600 for k in pins)
    redis_client.delete(*pins)  # what PIN_SECONDS of waiting would do
    response = client.get(f"/api/v1/connectors?limit=10&cursor={page['next_cursor']}")
    assert response.status_code == 410
    assert response.json["type"] == "/problems/cursor-expired"


def test_single_page_pins_nothing(client, clock, run_worker, redis_client):
    post_batches(client, traces_for(["only"], clock, "x", random.Random(2)))
    run_worker()
    assert client.get("/api/v1/connectors").json["next_cursor"] is None
    assert list(redis_client.scan_iter(match="mf:{default}:pin:*")) == []


def test_first_page_of_a_paged_query_follows_new_data(client, clock, run_worker):
    rng = random.Random(3)
    post_batches(client, traces_for([f"c{n:02d}" for n in range(30)], clock, "x", rng))
    run_worker()
    first = client.get("/api/v1/connectors?limit=10&sort=-messages").json
    again = client.get("/api/v1/connectors?limit=10&sort=-messages").json  # read from the pin
    assert again == first
    more = traces_for(["c29"], clock, "y", rng) + traces_for(["c29"], clock, "z", rng)
    post_batches(client, more)
    run_worker()
    fresh = client.get("/api/v1/connectors?limit=10&sort=-messages").json
    assert fresh["rows"][0]["name"] == "c29" and fresh["rows"][0]["messages"] == 3
    assert fresh["next_cursor"] != first["next_cursor"]
