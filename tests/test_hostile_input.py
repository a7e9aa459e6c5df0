"""Hostile bodies on POST /api/v1/traces: each is a named 4xx problem, never a 500."""

from __future__ import annotations

import gzip

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TRACES = "/api/v1/traces"
JSON = "application/json"
NDJSON = "application/x-ndjson"


def record(clock, **fields) -> bytes:
    base = (f'"timestamp":"{clock.now.isoformat()}","direction":"inbound",'
            f'"tls_version":"TLS1.2"')  # fmt: skip
    extra = "".join(f',"{name}":{value}' for name, value in fields.items())
    return ("{" + base + extra + "}").encode()


def post(client, body: bytes, content_type: str = JSON, **headers: str):
    return client.post(TRACES, data=body, content_type=content_type, headers=headers)


def problem(response, status: int, slug: str):
    assert response.status_code == status, response.data[:300]
    assert response.mimetype == "application/problem+json"
    assert response.json["type"] == f"/problems/{slug}"
    assert response.json["status"] == status
    return response.json


@pytest.mark.parametrize(
    ("body", "content_type", "status", "slug"),
    [
        (b"[" * 10_000 + b"]" * 10_000, JSON, 400, "malformed-json"),
        (b'{"a":' * 5_000 + b"1" + b"}" * 5_000, JSON, 400, "malformed-json"),
        (b'[{"size_bytes": NaN}]', JSON, 400, "malformed-json"),
        (b'[{"size_bytes": Infinity}]', JSON, 400, "malformed-json"),
        (b'[{"size_bytes": 1e999}]', JSON, 400, "malformed-json"),
        (b'[{"connector": "\xff\xfe"}]', JSON, 400, "malformed-json"),
        (b'[{"connector": "\\ud800"}]', JSON, 400, "malformed-json"),
        (b"[1, 2", JSON, 400, "malformed-json"),
        (b"   ", JSON, 400, "empty-body"),
        (b"[]", "text/plain", 415, "unsupported-media-type"),
        (b"[]", "application/x-www-form-urlencoded", 415, "unsupported-media-type"),
        (b"[]", "application/json; charset=latin-1", 415, "unsupported-charset"),
    ],
)  # fmt: skip
def test_unreadable_bodies_are_4xx_problems(client, body, content_type, status, slug):
    problem(post(client, body, content_type), status, slug)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"connector": '"' + "a" * 2_000_000 + '"', "connector_type": '"partner"'},
         "connector", "longer"),
        ({"message_id": '"<a@b>\\r\\nBcc: x@evil.example"'}, "message_id", "control"),
        ({"cipher": '"AES\\u0000"'}, "cipher", "control"),
        ({"sender_domain": '"exa\\tmple.org"'}, "sender_domain", ""),
        ({"colour": '"blue"'}, "colour", "unknown"),
        ({"direction": '"outbound"'}, "direction", "more than once"),
        ({"dir\\u0065ction": '"outbound"'}, "direction", "more than once"),
        ({"size_bytes": "123456789012345678901234567890"}, "size_bytes", ""),
        ({"size_bytes": '"12"'}, "size_bytes", ""),
    ],
)  # fmt: skip
def test_a_hostile_record_is_rejected_by_name_and_the_good_one_kept(
    client, clock, fields, field, message
):
    body = b"[" + record(clock, id='"good"') + b"," + record(clock, **fields) + b"]"
    response = post(client, body)
    assert response.status_code == 202, response.data[:300]
    assert response.json["accepted"] == 1 and response.json["rejected"] == 1
    [error] = response.json["errors"]
    assert (error["index"], error["field"]) == (1, field)
    assert message in error["message"]
    problem(post(client, b"[" + record(clock, **fields) + b"]"), 422, "invalid-traces")


def test_repeated_fields_are_found_in_ndjson_and_in_the_wrapper(client, clock):
    lines = [record(clock, id='"a"'), record(clock, id='"b"', tls_version='"TLS1.0"')]
    response = post(client, b"\n".join(lines), NDJSON)
    assert [(e["index"], e["field"]) for e in response.json["errors"]] == [(2, "tls_version")]
    wrapped = b'{"traces": [' + record(clock) + b'], "traces": []}'
    body = problem(post(client, wrapped), 400, "malformed-json")
    assert body["errors"][0]["field"] == "traces"


def test_a_value_that_looks_like_a_field_name_is_not_a_repeat(client, clock):
    body = b"[" + record(clock, connector='"direction"', connector_type='"partner"') + b"]"
    assert post(client, body).json["accepted"] == 1


def test_gzip_bombs_truncated_and_corrupt_gzip(app, clock):
    settings = app.extensions["mailflow"]["settings"]
    app.extensions["mailflow"]["settings"] = settings.with_overrides({"max_body_bytes": 50_000})
    client = app.test_client()
    bomb = gzip.compress(b"[" + b" " * 50_000_000 + b"]", compresslevel=9)
    assert len(bomb) < 100_000
    problem(post(client, bomb, **{"Content-Encoding": "gzip"}), 413, "payload-too-large")
    whole = gzip.compress(b"[" + record(clock) + b"]")
    problem(post(client, whole[:-12], **{"Content-Encoding": "gzip"}), 400, "bad-encoding")
    problem(post(client, b"not gzip at all", **{"Content-Encoding": "gzip"}), 400, "bad-encoding")
    problem(post(client, whole, **{"Content-Encoding": "br"}), 415, "unsupported-encoding")
    assert post(client, whole, **{"Content-Encoding": "gzip"}).status_code == 202
    problem(post(client, b"[" + b" " * 60_000 + b"]"), 413, "payload-too-large")


@settings(max_examples=150, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
            | st.floats(allow_nan=False)
            | st.text(max_size=20),
            lambda inner: st.lists(inner, max_size=4)
            | st.dictionaries(st.sampled_from(["id", "direction", "timestamp", "tls_version",
                                               "connector", "size_bytes", "x"]), inner,
                              max_size=5),
        ).map(orjson.dumps),
    ),
    content_type=st.sampled_from([JSON, NDJSON]),
    gzipped=st.booleans(),
)  # fmt: skip
def test_no_body_causes_a_server_error(client, body, content_type, gzipped):
    headers = {"Content-Encoding": "gzip"} if gzipped else {}
    response = post(client, gzip.compress(body) if gzipped else body, content_type, **headers)
    assert response.status_code < 500, response.data[:300]
    if response.status_code >= 400:
        assert response.mimetype == "application/problem+json"
