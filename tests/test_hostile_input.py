"""Hostile bodies on POST /api/v1/traces: each is a named 4xx problem, never a 500."""

from __future__ import annotations

import gzip

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import test_auth_gunicorn

gunicorn_api = test_auth_gunicorn.gunicorn_api  # the fixture: gunicorn as operators run it

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
    settings = app.extensions["mailflow"].settings
    app.extensions["mailflow"].settings = settings.with_overrides({"max_body_bytes": 50_000})
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


# -- request bodies of every JSON endpoint -----------------------------------------------------

RULE = "/api/v1/insight-rules/connector-unencrypted"
DEFINITION = "/api/v1/connectors/inbound/HQ"


def test_admin_json_bodies_over_the_limit_are_413_before_parsing(client):
    padding = b" " * 70_000
    body = b'{"enabled": false' + padding + b"}"
    problem(client.put(RULE, data=body, content_type=JSON), 413, "payload-too-large")
    problem(client.put(DEFINITION, data=b'{"type": "partner"' + padding + b"}",
                       content_type=JSON), 413, "payload-too-large")  # fmt: skip
    assert client.put(RULE, data=b'{"enabled": false}', content_type=JSON).status_code == 200


@pytest.mark.parametrize("content_type", [
    "application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x", None,
])  # fmt: skip
def test_json_endpoints_answer_415_to_other_content_types(client, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    for url, body in ((RULE, b'{"enabled": false}'), (DEFINITION, b'{"type": "partner"}')):
        problem(client.put(url, data=body, headers=headers), 415, "unsupported-media-type")


DEEP = b"[" * 1000 + b"]" * 1000


@pytest.mark.parametrize(("body", "field"), [
    (b'{"enabled": ' + DEEP + b', "min_p\\u0065rcent": 1}', ""),
    (b'{"min_messages": 1e30}', "min_messages"),
    (b'{"min_messages": 236111302287868337061888}', "min_messages"),
    (b'{"min_messages": ' + b"9" * 5000 + b"}", ""),
    (b'{"min_percent": ' + b"9" * 5000 + b"}", ""),
    (b'{"enabled": "\\ud800"}', ""),
    (b'{"enabled": false, "enabled": true}', ""),
])  # fmt: skip
def test_hostile_rule_settings_are_4xx_naming_the_fault(client, body, field):
    response = client.put(RULE, data=body, content_type=JSON)
    assert response.status_code in (400, 422), response.data[:300]
    assert response.mimetype == "application/problem+json"
    assert response.json["detail"]
    if field:
        assert field in response.json["detail"]


def test_deep_nesting_with_an_escape_is_a_400_not_a_500(client, clock):
    deep = b"[" + record(clock, id='"\\u0061"') + b"," + DEEP + b"]"
    body = problem(post(client, deep), 400, "malformed-json")
    assert "nested" in body["detail"]
    ndjson = record(clock, id='"\\u0061"') + b"\n" + DEEP
    response = post(client, ndjson, NDJSON)
    assert response.status_code == 202 and response.json["accepted"] == 1
    assert [e["index"] for e in response.json["errors"]] == [2]
    long_number = b"[" + record(clock, size_bytes="9" * 5000) + b"]"
    problem(post(client, long_number), 400, "malformed-json")


def test_every_gzip_member_is_read_and_trailing_garbage_refused(app, client, clock):
    first = gzip.compress(b"[" + record(clock, id='"one"') + b"]\n")
    second = gzip.compress(b"\n")
    members = gzip.compress(record(clock, id='"a"') + b"\n") + gzip.compress(
        record(clock, id='"b"') + b"\n"
    )
    response = post(client, members, NDJSON, **{"Content-Encoding": "gzip"})
    assert response.status_code == 202 and response.json["accepted"] == 2, response.json
    assert post(client, first + second, **{"Content-Encoding": "gzip"}).json["accepted"] == 1
    for tail in (b"garbage", b"\x00" * 8, gzip.compress(b"x")[:-4]):
        body = problem(post(client, first + tail, **{"Content-Encoding": "gzip"}), 400,
                       "bad-encoding")  # fmt: skip
        assert "member" in body["detail"]
    settings = app.extensions["mailflow"].settings
    app.extensions["mailflow"].settings = settings.with_overrides({"max_body_bytes": 50_000})
    half = gzip.compress(b" " * 30_000)
    bomb = gzip.compress(b"[") + half + half + gzip.compress(b"]")
    problem(post(client, bomb, **{"Content-Encoding": "gzip"}), 413, "payload-too-large")


def _raw_request(url: str, head: str, body: bytes) -> tuple[int, str, bytes]:
    """Send bytes as they are (a chunked body the client libraries would not send)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\n\r\n" + body)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    header, _, payload = received.partition(b"\r\n\r\n")
    status_line, *lines = header.decode().split("\r\n")
    content_type = next((line.split(":", 1)[1].strip() for line in lines
                         if line.lower().startswith("content-type:")), "")  # fmt: skip
    return int(status_line.split()[1]), content_type, payload


def test_chunked_bodies_with_a_bad_chunk_size_and_over_the_limit(live_api, make_key, clock):
    for path, key in ((TRACES, live_api.key), (RULE, make_key("default", "admin"))):
        head = (f"PUT {path} HTTP/1.1" if path == RULE else f"POST {path} HTTP/1.1") + (
            f"\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json"
            "\r\nTransfer-Encoding: chunked\r\nConnection: close"
        )
        status, content_type, _ = _raw_request(live_api.url, head, b"zz\r\n[]\r\n0\r\n\r\n")
        assert (status, content_type) == (400, "application/problem+json")
    admin = make_key("default", "admin")
    head = (f"PUT {RULE} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close")  # fmt: skip
    chunk = b" " * 10_000
    body = b"1\r\n{\r\n" + (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 10 + b"1\r\n}\r\n0\r\n\r\n"
    status, content_type, _ = _raw_request(live_api.url, head, body)
    assert (status, content_type) == (413, "application/problem+json")
    body = b"11\r\n" + b'{"enabled":false}' + b"\r\n0\r\n\r\n"
    assert _raw_request(live_api.url, head, body)[0] == 200


def test_rejected_field_metric_labels_only_known_fields(client, clock, redis_client):
    from service.store import keys
    from service.telemetry.metrics import METRICS

    odd = [record(clock, **{f"zz{n}": "1"}) for n in range(3)]
    post(client, b"[" + b",".join([record(clock, id='"fine"'), *odd]) + b"]")
    post(client, b"[" + record(clock, direction='"up"') + b"]")
    METRICS.flush(redis_client)
    series = [s.decode() for s in redis_client.hkeys(keys.metrics())]
    rejected = [s for s in series if s.startswith("mailflow_traces_rejected_total")]
    assert 'mailflow_traces_rejected_total{field="other"}' in rejected
    assert 'mailflow_traces_rejected_total{field="direction"}' in rejected
    assert not [s for s in rejected if "zz" in s], rejected


def test_chunked_bodies_with_a_bad_chunk_size_under_gunicorn(gunicorn_api, make_key):
    base, _log = gunicorn_api
    key = make_key("default", "ingest", "admin")
    for method, path in (("POST", TRACES), ("PUT", RULE)):
        head = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                "Connection: close")  # fmt: skip
        status, content_type, _ = _raw_request(base, head, b"zz\r\n[]\r\n0\r\n\r\n")
        assert (status, content_type) == (400, "application/problem+json")
