"""Bad input gets a clear problem+json naming the record and field, and loses nothing good."""

from __future__ import annotations

import gzip
from datetime import timedelta

import pytest

GOOD = {"id": "good-1", "direction": "inbound", "tls_version": "TLSv1.2"}


def good(clock, **changes):
    return {**GOOD, "timestamp": clock.now.isoformat(), **changes}


def assert_problem(response, status: int):
    assert response.status_code == status, response.data[:300]
    assert response.mimetype == "application/problem+json"
    body = response.json
    assert body["status"] == status and body["type"].startswith("/problems/")
    assert body["title"] and body["detail"]
    return body


BAD_RECORDS = [
    ({"direction": 5}, "direction"),
    ({"direction": "sideways"}, "direction"),
    ({"tls_version": "TLS9"}, "tls_version"),
    ({"tls_version": 1.2}, "tls_version"),
    ({"timestamp": "yesterday"}, "timestamp"),
    ({"timestamp": "2026-11-27T10:00:00"}, "timestamp"),  # no offset
    ({"timestamp": "2026-02-30T10:00:00Z"}, "timestamp"),
    ({"timestamp": None}, "timestamp"),
    ({"connector": "Partner A"}, "connector_type"),
    ({"connector_type": "partner"}, "connector_type"),
    ({"connector": "Partner A", "connector_type": "cloud"}, "connector_type"),
    ({"connector": "x" * 129, "connector_type": "partner"}, "connector"),
    ({"connector": "", "connector_type": "partner"}, "connector"),
    ({"id": "a\r\nb"}, "id"),
    ({"id": 42}, "id"),
    ({"size_bytes": -1}, "size_bytes"),
    ({"size_bytes": True}, "size_bytes"),
    ({"size_bytes": "10"}, "size_bytes"),
    ({"sender_domain": "not a domain"}, "sender_domain"),
    ({"remote_ip": "300.1.1.1"}, "remote_ip"),
    ({"cipher": "x\x00y"}, "cipher"),
    ({"colour": "blue"}, "colour"),
]


@pytest.mark.parametrize(("change", "field"), BAD_RECORDS)
def test_a_bad_record_is_rejected_by_name_while_the_good_one_is_kept(client, clock, change, field):
    bad = good(clock, **{"id": "bad-1", **change})
    response = client.post("/api/v1/traces", json=[good(clock), bad])
    assert response.status_code == 202
    assert (response.json["accepted"], response.json["rejected"]) == (1, 1)
    [error] = response.json["errors"]
    assert error["index"] == 1 and error["field"] == field and error["message"]


def test_missing_required_fields_are_named(client, clock):
    for missing in ("timestamp", "direction", "tls_version"):
        record = good(clock)
        del record[missing]
        body = assert_problem(client.post("/api/v1/traces", json=[record]), 422)
        assert body["errors"] == [
            {"index": 0, "field": missing, "message": body["errors"][0]["message"]}
        ]


def test_timestamps_outside_retention_or_in_the_future_are_rejected(client, clock):
    too_old = clock.now - timedelta(days=90)
    edge = (clock.now - timedelta(days=89)).replace(hour=0, minute=0, second=0)
    future = clock.now + timedelta(minutes=16)
    near_future = clock.now + timedelta(minutes=14)
    records = [good(clock, id=str(i), timestamp=t.isoformat())
               for i, t in enumerate((too_old, edge, future, near_future))]  # fmt: skip
    body = client.post("/api/v1/traces", json=records).json
    assert body["accepted"] == 2
    assert [(e["index"], e["field"]) for e in body["errors"]] == [
        (0, "timestamp"),
        (2, "timestamp"),
    ]


def test_a_batch_with_nothing_acceptable_is_422_listing_every_record(client, clock):
    records = [good(clock, direction="up"), good(clock, tls_version="TLS7")]
    body = assert_problem(client.post("/api/v1/traces", json=records), 422)
    assert [(e["index"], e["field"]) for e in body["errors"]] == [
        (0, "direction"),
        (1, "tls_version"),
    ]


def test_ndjson_errors_name_the_line(client, clock):
    import orjson

    lines = [orjson.dumps(good(clock)), b"", b"{not json", orjson.dumps(good(clock, direction="x"))]
    response = client.post("/api/v1/traces", data=b"\n".join(lines),
                           content_type="application/x-ndjson")  # fmt: skip
    assert response.status_code == 202
    assert [(e["index"], e["field"]) for e in response.json["errors"]] == [
        (3, ""),
        (4, "direction"),
    ]


@pytest.mark.parametrize(
    ("data", "headers", "status"),
    [
        (b"not json", {}, 400),
        (b"", {}, 400),
        (b"   ", {}, 400),
        (b'{"a": 1}', {}, 400),
        (b"42", {}, 400),
        (b"[1,2", {}, 400),
        (b"\xff\xfe[]", {}, 400),
        (b"[NaN]", {}, 400),
        (b"not gzip", {"Content-Encoding": "gzip"}, 400),
        (gzip.compress(b"[]")[:-6], {"Content-Encoding": "gzip"}, 400),
        (b"[]", {"Content-Encoding": "br"}, 415),
        (b"[]", {"Content-Type": "text/plain"}, 415),
    ],
)
def test_unreadable_bodies_get_a_problem(client, data, headers, status):
    headers = {"Content-Type": "application/json", **headers}
    assert_problem(client.post("/api/v1/traces", data=data, headers=headers), status)


def test_oversized_bodies_and_batches_are_413(app, client, clock):
    app.extensions["mailflow"].settings = app.extensions["mailflow"].settings.with_overrides(
        {"max_body_bytes": 10_000, "max_batch": 10}
    )
    assert_problem(client.post("/api/v1/traces", data=b"[" + b" " * 20_000 + b"]",
                               content_type="application/json"), 413)  # fmt: skip
    bomb = gzip.compress(b"[" + b" " * 1_000_000 + b"]")
    assert len(bomb) < 10_000
    assert_problem(client.post("/api/v1/traces", data=bomb, content_type="application/json",
                               headers={"Content-Encoding": "gzip"}), 413)  # fmt: skip
    eleven = [good(clock, id=str(i)) for i in range(11)]
    assert_problem(client.post("/api/v1/traces", json=eleven), 413)
    assert client.post("/api/v1/traces", json=eleven[:10]).status_code == 202


@pytest.mark.parametrize(
    "query",
    ["days=0", "days=91", "days=abc", "start=2026-11-01", "start=2026-11-10&end=2026-11-01",
     "start=2026-01-01&end=2026-01-02", "end=2026-12-31&start=2026-11-01", "days=7&start=2026-11-01",
     "colour=blue"],
)  # fmt: skip
def test_bad_window_parameters_are_422_naming_the_parameter(client, query):
    body = assert_problem(client.get(f"/api/v1/mailflow/snapshot?{query}"), 422)
    assert body["errors"] and all(e["field"] for e in body["errors"])


def test_unknown_routes_and_methods_are_problems(client):
    assert_problem(client.get("/api/v1/nothing"), 404)
    assert_problem(client.delete("/api/v1/traces"), 405)


# -- Unicode: NFC, and no control, format or line-separator characters -------------------------

UNICODE_BAD = [
    ({"id": "good-\u0085"}, "id"),  # NEXT LINE, a C1 control
    ({"id": "a\u200bb"}, "id"),  # ZERO WIDTH SPACE, a format character
    ({"connector": "HQ\u2028", "connector_type": "partner"}, "connector"),  # line separator
    ({"connector": "\u202eQH", "connector_type": "partner"}, "connector"),  # right-to-left
    ({"connector": "HQ\u2029x", "connector_type": "partner"}, "connector"),
    ({"connector": "HQ ", "connector_type": "partner"}, "connector"),  # trailing space
    ({"connector": "\u00a0HQ", "connector_type": "partner"}, "connector"),
    ({"id": " good-1"}, "id"),
    ({"cipher": "AES\ufeff"}, "cipher"),
    ({"message_id": "<a@b>\u2028Bcc: x"}, "message_id"),
]


@pytest.mark.parametrize("ensure_ascii", [True, False])
@pytest.mark.parametrize(("change", "field"), UNICODE_BAD)
def test_unicode_controls_format_and_separators_are_rejected_by_name(
    client, clock, change, field, ensure_ascii
):
    import json

    bad = good(clock, **{"id": "bad-1", **change})
    body = json.dumps([good(clock), bad], ensure_ascii=ensure_ascii).encode()
    response = client.post("/api/v1/traces", data=body, content_type="application/json")
    assert response.status_code == 202
    assert (response.json["accepted"], response.json["rejected"]) == (1, 1), response.json
    [error] = response.json["errors"]
    assert error["index"] == 1 and error["field"] == field and error["message"]


def test_look_alike_names_are_one_connector_and_one_trace(client, clock, run_worker):
    import json

    nfc, nfd = "Z\u00fcrich", "Zu\u0308rich"
    records = [good(clock, id=f"t{n}", connector=name, connector_type="partner")
               for n, name in enumerate((nfc, nfd, nfc))]  # fmt: skip
    records.append(good(clock, id="caf\u00e9", connector=nfd, connector_type="partner"))
    records.append(good(clock, id="cafe\u0301", connector=nfc, connector_type="partner"))
    body = json.dumps(records, ensure_ascii=False).encode()
    response = client.post("/api/v1/traces", data=body, content_type="application/json")
    assert response.json["accepted"] == 4 and response.json["duplicates"] == 1, response.json
    run_worker()
    rows = client.get("/api/v1/connectors?direction=inbound&type=partner").json["rows"]
    assert [(row["name"], row["messages"]) for row in rows] == [(nfc, 4)]


@pytest.mark.parametrize(("name", "description"), [
    ("HQ\u2028", None), ("\u202eQH", None), ("HQ\u200b", None), ("HQ ", None), (" HQ", None),
    ("HQ\u0085", None), ("HQ", "line\u2028break"), ("HQ", "bidi \u202e"), ("HQ", "nul\x00"),
])  # fmt: skip
def test_connector_definitions_refuse_unicode_controls_by_name(client, name, description):
    from urllib.parse import quote

    response = client.put(f"/api/v1/connectors/inbound/{quote(name)}",
                          json={"type": "partner", "description": description})  # fmt: skip
    body = assert_problem(response, 422)
    assert body["errors"][0]["field"] == ("name" if description is None else "description")


def test_connector_definition_names_are_nfc(client):
    response = client.put("/api/v1/connectors/inbound/Zu%CC%88rich",
                          json={"type": "partner", "description": "Cafe\u0301"})  # fmt: skip
    assert response.status_code == 200
    assert (response.json["name"], response.json["description"]) == ("Z\u00fcrich", "Caf\u00e9")


def test_a_connector_is_found_whichever_normal_form_the_url_spells(client):
    assert client.put("/api/v1/connectors/inbound/Z%C3%BCrich", json={"type": "partner"}).json
    detail = client.get("/api/v1/connectors/inbound/Zu%CC%88rich")
    assert detail.status_code == 200 and detail.json["name"] == "Z\u00fcrich"
    assert client.delete("/api/v1/connectors/inbound/Zu%CC%88rich").status_code == 204
