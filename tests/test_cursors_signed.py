"""Cursors are signed: a tampered, malformed or foreign cursor is a 400 naming `cursor`, never
a 500 and never another slice of rows."""

from __future__ import annotations

import base64
import json
import random
import zlib

import pytest

from service.app import close_app, create_app
from tests.helpers import post_batches
from tests.test_reports_pagination import traces_for

CONNECTORS = "/api/v1/connectors"
INSIGHTS = "/api/v1/insights"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _payload(cursor: str) -> dict:
    """The JSON a cursor carries, read without its secret: the part before the signature,
    zlib-compressed when it starts with a dot (or, for an unsigned cursor, the whole of it)."""
    part = cursor.rsplit(".", 1)[0] if "." in cursor else cursor
    raw = base64.urlsafe_b64decode(part.lstrip(".") + "=" * (-len(part.lstrip(".")) % 4))
    return json.loads(zlib.decompress(raw) if part.startswith(".") else raw)


def _forgeries(cursor: str, changes: list[dict]) -> list[str]:
    """``cursor`` with each change applied, as an unsigned token and with the old signature."""
    state = _payload(cursor)
    signature = cursor.rsplit(".", 1)[1] if "." in cursor else ""
    forged = []
    for change in changes:
        tampered = {k: v for k, v in {**state, **change}.items() if v is not _DROP}
        encoded = _b64(json.dumps(tampered, separators=(",", ":")).encode())
        forged += [encoded, f"{encoded}.{signature}"]
    return forged


_DROP = object()
MALFORMED = ["0", "-1", "x", "....", "a.b", "." * 40, "%%%", "eyJ9", "W10", "bnVsbA", "A" * 600,
             _b64(b"[]"), _b64(b'"s"'), _b64(b"1e999"), ".eJyLjgUAARUAuQ.x"]  # fmt: skip


@pytest.fixture
def paged(client, clock, run_worker):
    post_batches(client, traces_for([f"c{n:02d}" for n in range(30)], clock, "x", random.Random(3)))
    run_worker()
    first = client.get(CONNECTORS, query_string={"limit": 10}).json
    assert first["next_cursor"]
    return first


def _assert_cursor_refused(response) -> None:
    assert response.status_code == 400, (response.status_code, response.data[:300])
    assert response.content_type.startswith("application/problem+json")
    assert response.json["type"] == "/problems/invalid-cursor"
    assert [e["field"] for e in response.json["errors"]] == ["cursor"]


def test_tampered_connector_cursors_are_400(client, paged):
    changes = [{"o": -1}, {"o": -3}, {"o": "10"}, {"o": 0}, {"o": 5}, {"o": 10.5},
               {"o": True}, {"o": 10**30}, {"s": "not a date"}, {"s": 7}, {"e": "2020-13-45"},
               {"t": _DROP}, {"s": _DROP}, {"o": _DROP}, {"t": None}, {"q": "0" * 16}]  # fmt: skip
    for cursor in _forgeries(paged["next_cursor"], changes) + MALFORMED:
        response = client.get(CONNECTORS, query_string={"limit": 10, "cursor": cursor})
        _assert_cursor_refused(response)


def test_the_issued_cursor_still_reads_the_next_slice(client, paged):
    second = client.get(CONNECTORS, query_string={"limit": 10, "cursor": paged["next_cursor"]})
    assert second.status_code == 200
    names = [r["name"] for r in paged["rows"]] + [r["name"] for r in second.json["rows"]]
    assert len(set(names)) == 20


def test_tampered_insight_cursors_are_400(client):
    cursor = client.get(INSIGHTS, query_string={"state": "all"}).json["next_cursor"]
    changes = [{"s": -1}, {"s": "0"}, {"s": 10**30}, {"s": _DROP}, {"s": None}, {"s": 1.5}]
    for forged in _forgeries(cursor, changes) + MALFORMED:
        response = client.get(INSIGHTS, query_string={"state": "all", "cursor": forged})
        _assert_cursor_refused(response)
    assert client.get(INSIGHTS, query_string={"state": "all", "cursor": cursor}).status_code == 200


def test_a_cursor_of_another_tenant_is_refused(client, paged, make_key):
    other = {"Authorization": f"Bearer {make_key('other')}"}
    response = client.get(CONNECTORS, query_string={"limit": 10, "cursor": paged["next_cursor"]},
                          headers=other)  # fmt: skip
    _assert_cursor_refused(response)
    feed_cursor = client.get(INSIGHTS).json["next_cursor"]
    _assert_cursor_refused(client.get(INSIGHTS, query_string={"cursor": feed_cursor},
                                      headers=other))  # fmt: skip


def test_every_api_process_accepts_the_cursors_of_another(app, client, paged, redis_server,
                                                          clock, make_key):  # fmt: skip
    """A second process (and one started after a restart) shares the secret kept in Redis."""
    second = create_app({"redis_url": redis_server.url, "CLOCK": clock})
    try:
        headers = {"Authorization": f"Bearer {make_key('default')}"}
        response = second.test_client().get(
            CONNECTORS, query_string={"limit": 10, "cursor": paged["next_cursor"]},
            headers=headers,
        )  # fmt: skip
        assert response.status_code == 200, response.json
    finally:
        close_app(second)


def test_a_configured_secret_key_signs_instead(redis_server, clock, make_key, paged):
    """MAILFLOW_SECRET_KEY replaces the stored secret: cursors signed with another are refused."""
    configured = create_app({"redis_url": redis_server.url, "CLOCK": clock,
                             "secret_key": "operator-chosen"})  # fmt: skip
    try:
        client = configured.test_client()
        headers = {"Authorization": f"Bearer {make_key('default')}"}
        response = client.get(CONNECTORS, query_string={"limit": 10,
                              "cursor": paged["next_cursor"]}, headers=headers)  # fmt: skip
        _assert_cursor_refused(response)
        own = client.get(CONNECTORS, query_string={"limit": 10}, headers=headers).json
        assert client.get(CONNECTORS, query_string={"limit": 10, "cursor": own["next_cursor"]},
                          headers=headers).status_code == 200  # fmt: skip
    finally:
        close_app(configured)


def test_a_cursor_with_a_csv_export_is_refused_not_ignored(client, paged):
    for query in ({"format": "csv"}, {}):
        headers = {} if query else {"Accept": "text/csv"}
        for cursor in (paged["next_cursor"], "0.0", "garbage"):
            response = client.get(CONNECTORS, query_string={**query, "cursor": cursor},
                                  headers=headers)  # fmt: skip
            _assert_cursor_refused(response)
