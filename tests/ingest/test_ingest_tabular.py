"""Trace files: NDJSON, JSON documents and CSV with trace-field headers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.core.traces import IngestWindow, TraceError, normalize_trace
from service.ingest.connector_map import parse_connector_map
from service.ingest.tabular import CsvParser, JsonParser, NdjsonParser

from .support import feed_all


def test_ndjson_counts_bad_lines() -> None:
    p = NdjsonParser()
    out = feed_all(
        p,
        [
            '{"id": "a", "direction": "inbound", "tls_version": "TLSv1.2", "cipher": null}\n',
            "\n",
            "{not json\n",
            "[1, 2]\n",
        ],
    )
    assert out == [{"id": "a", "direction": "inbound", "tls_version": "TLSv1.2"}]
    assert p.kinds == {"blank": 1, "bad_json": 1, "not_an_object": 1}


def test_json_document_both_shapes() -> None:
    p = JsonParser()
    assert len(feed_all(p, ['{"traces": [{"id": "a"},\n', ' {"id": "b"}]}\n'])) == 2
    p = JsonParser()
    assert feed_all(p, ['[{"id": "a"}]']) == [{"id": "a"}]
    p = JsonParser()
    assert feed_all(p, ["[{"]) == [] and p.kinds == {"bad_json": 1}


def test_csv_types_empty_cells_and_quoted_newlines() -> None:
    mapping = parse_connector_map(
        '[[rule]]\nconnector = "P"\ntype = "partner"\nsender_domain = "p.example"\n'
    )
    p = CsvParser(mapping)
    out = feed_all(
        p,
        [
            "id,timestamp,direction,tls_version,sender_domain,size_bytes,connector,message_id\n",
            "a,2025-03-03T10:00:00Z,inbound,TLS1.2,p.example,123,,<m1>\n",
            'b,2025-03-03T10:00:01Z,outbound,none,,,Mine,"two\n',
            'lines"\n',
            "c,too,few\n",
        ],
    )
    assert out[0] == {
        "id": "a",
        "timestamp": "2025-03-03T10:00:00Z",
        "direction": "inbound",
        "tls_version": "TLS1.2",
        "sender_domain": "p.example",
        "size_bytes": 123,
        "message_id": "<m1>",
        "connector": "P",
        "connector_type": "partner",
    }
    assert out[1]["connector"] == "Mine" and "connector_type" not in out[1]
    assert out[1]["message_id"] == "twolines"  # control characters are stripped
    assert p.kinds == {"bad_csv_row": 1}
    assert p.used + sum(p.kinds.values()) == p.lines == 5


def test_csv_transport_security_columns() -> None:
    out = feed_all(
        CsvParser(),
        [
            "id,direction,tls_version,tls_auth,tls_policy,tls_downgraded,outcome,blocked_reason\n",
            "a,outbound,TLS1.2,untrusted,encrypt,true,,\n",
            "b,outbound,TLS1.3,verified,dane,false,,\n",
            "c,outbound,,,dane,,blocked,Server certificate not verified\n",
            "d,outbound,none,,none,maybe,,\n",
        ],
    )
    assert out[0]["tls_downgraded"] is True
    assert "tls_downgraded" not in out[1] and out[1]["tls_policy"] == "dane"
    assert out[2] == {"id": "c", "direction": "outbound", "tls_version": None, "tls_policy": "dane",
                      "outcome": "blocked", "blocked_reason": "Server certificate not verified"}  # fmt: skip
    assert out[3]["tls_downgraded"] == "maybe"  # not a flag: the API says why


def test_csv_blocked_row_with_an_empty_version_is_what_the_api_takes() -> None:
    """An empty cell is CSV's only way to say null, and a blocked message had no TLS session: its
    tls_version is sent as null, which the API requires. A delivered row's empty version stays
    unknown (omitted: the API refuses it, naming the field, rather than count it as plaintext)."""
    window = IngestWindow(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 12, 31, tzinfo=UTC))
    blocked, delivered = feed_all(CsvParser(), [
        "id,timestamp,direction,tls_version,outcome,blocked_reason\n",
        "c,2025-03-03T10:00:00Z,outbound,,blocked,TLSA lookup error\n",
        "d,2025-03-03T10:00:00Z,outbound,,,\n",
    ])  # fmt: skip
    assert blocked["tls_version"] is None
    assert normalize_trace(blocked, window)  # taken: no TraceError
    assert "tls_version" not in delivered
    with pytest.raises(TraceError) as refused:
        normalize_trace(delivered, window)
    assert refused.value.field == "tls_version"
