"""The all-valid batch path accepts a body only when the exact path accepts every record of it,
and then produces exactly the exact path's columns. Otherwise it declines (None)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.core.trace_batch import accept_valid_batch
from service.core.traces import AcceptedBatch, TraceError, normalize_trace
from service.web.api.body import parse_records
from service.web.errors import Problem
from tests.test_fast_path_property import WINDOW, records

DEFINED = {("inbound", "HQ"): "onpremises", ("outbound", "Partner A"): "partner"}
MAX_RECORDS = 4


def exact(body: bytes, ndjson: bool, defined) -> AcceptedBatch | None:
    """The exact path's columns when it accepts every record; None otherwise."""
    kind = "application/x-ndjson" if ndjson else "application/json"
    accepted = []
    try:
        for _, record, problem in parse_records(body, kind, MAX_RECORDS):
            if problem is not None:
                return None
            accepted.append(normalize_trace(record, WINDOW, defined))
    except (Problem, TraceError):
        return None
    return AcceptedBatch.of(accepted)


def _valid(record: dict) -> bool:
    try:
        normalize_trace(record, WINDOW, DEFINED)
    except TraceError:
        return False
    return True


# Half the batches from valid records only: a batch is taken only when all of it is valid.
batches = st.one_of(
    st.lists(records, min_size=1, max_size=MAX_RECORDS + 1),
    st.lists(records.filter(_valid), min_size=1, max_size=MAX_RECORDS),
)


def encode(batch: list[dict], style: str, ensure_ascii: bool) -> bytes:
    if style == "ndjson":
        return "\n".join(json.dumps(r, ensure_ascii=ensure_ascii) for r in batch).encode()
    document = {"traces": batch} if style == "wrapped" else batch
    if style == "spaced":
        return json.dumps(document, indent=2, separators=(" , ", " : "),
                          ensure_ascii=ensure_ascii).encode()  # fmt: skip
    return json.dumps(document, ensure_ascii=ensure_ascii, separators=(",", ":")).encode()


def repeat_a_field(body: bytes, batch: list[dict]) -> bytes:
    """The body with one record's first field sent twice (the first value is the odd one)."""
    text = body.decode()
    name = next(iter(batch[0]))
    return text.replace(f'"{name}"', f'"{name}": "x", "{name}"', 1).encode()


@settings(max_examples=1200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(
    batch=batches,
    style=st.sampled_from(["array", "wrapped", "ndjson", "spaced"]),
    ensure_ascii=st.booleans(),
    defined=st.sampled_from([{}, DEFINED]),
    repeat=st.integers(0, 5),
)
def test_the_batch_path_agrees_with_the_exact_path(batch, style, ensure_ascii, defined, repeat):
    body = encode(batch, style, ensure_ascii)
    if repeat == 0 and style != "ndjson":
        body = repeat_a_field(body, batch)
    ndjson = style == "ndjson"
    fast = accept_valid_batch(body, ndjson, MAX_RECORDS, WINDOW, defined)
    if fast is not None:
        assert fast == exact(body, ndjson, defined), body


VALID = [
    {"id": "a", "timestamp": "2026-11-27T10:00:00Z", "direction": "inbound",
     "tls_version": "TLSv1.2", "sender_domain": "Example.ORG.", "remote_ip": "[2001:DB8::1]"},
    {"id": "b", "timestamp": "2026-11-26T10:00:00.1234567+00:00", "direction": "outbound",
     "connector": "Partner A", "tls_version": None, "size_bytes": 0},
    {"timestamp": "2026-11-27T01:00:00+02:00", "direction": "inbound", "connector": "HQ",
     "tls_version": "tls1_3", "message_id": "<é@example.org>", "cipher": None},
]  # fmt: skip


@pytest.mark.parametrize("style", ["array", "wrapped", "ndjson", "spaced"])
def test_a_valid_batch_takes_the_batch_path(style):
    body = encode(VALID, style, ensure_ascii=False)
    ndjson = style == "ndjson"
    fast = accept_valid_batch(body, ndjson, MAX_RECORDS, WINDOW, DEFINED)
    assert fast is not None
    assert fast == exact(body, ndjson, DEFINED)
    assert fast.days == ["2026-11-27", "2026-11-26", "2026-11-26"]


@pytest.mark.parametrize("change", [
    lambda body: body.replace(b'"id":"a"', b'"id":"a","id":"c"'),  # a repeated field
    lambda body: body.replace(b'"a"', b'"a\x7f"'),  # a control character JSON allows raw
    lambda body: body.replace(b'"a"', b'"\\u0061"'),  # an escape: only the exact path reads it
    lambda body: body.replace(b'"size_bytes":0', b'"size_bytes":true'),
    lambda body: body.replace(b'"size_bytes":0', b'"size_bytes":%d' % 2**64),  # orjson: a float
    lambda body: body.replace(b"2026-11-27T10", b"2026-11-31T10"),
    lambda body: body.replace(b"2026-11-27T10", b"2026-08-01T10"),  # before the window
    lambda body: body.replace(b'"HQ"', b'"HQ","connector_type":"partner"'),  # contradicts
    lambda body: body.replace(b'"Partner A"', b'"Partner B"'),  # undefined: needs a type
    lambda body: body.replace(b'"TLSv1.2"', b'"TLSv1.4"'),
    lambda body: body.replace(b'"Example.ORG."', b'"-example.org"'),
    lambda body: body.replace(b'"[2001:DB8::1]"', b'"2001:DB8::g"'),
    lambda body: body.replace(b'"id":"a"', b'"id":""'),
    lambda body: body.replace(b'"id":"a"', b'"id":"a","extra":1'),
    lambda body: body.replace(b'"id":"a"', b'"id":"a "'),  # whitespace at the end of an id
    lambda body: body.replace(b'"id":"a"', b'"id":"a\xe2\x80\x8b"'),  # U+200B, zero width
    lambda body: body.replace(b"<\xc3\xa9@", b"<e\xcc\x81@"),  # not NFC (e + U+0301)
    lambda body: body.replace(b"<\xc3\xa9@", b"<\xe2\x80\xa8@"),  # U+2028, line separator
    lambda body: body.replace(b"<\xc3\xa9@", b"<\xc2\x85@"),  # U+0085, NEXT LINE
    lambda body: body.replace(b'"Partner A"', b'"Partner A","cipher":" AES"'),
])  # fmt: skip
def test_the_batch_path_declines_what_it_cannot_vouch_for(change):
    body = encode(VALID, "array", ensure_ascii=False)
    assert accept_valid_batch(body, False, MAX_RECORDS, WINDOW, DEFINED) is not None
    changed = change(body)
    assert changed != body
    assert accept_valid_batch(changed, False, MAX_RECORDS, WINDOW, DEFINED) is None


def test_too_many_records_go_the_exact_path():
    body = encode(VALID, "array", ensure_ascii=False)
    assert accept_valid_batch(body, False, len(VALID) - 1, WINDOW, DEFINED) is None
