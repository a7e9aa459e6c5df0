"""The hand-written fast path accepts exactly what TraceSchema accepts, and normalises alike."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from service.core.traces import IngestWindow, TraceError, normalize_trace
from service.web.api.schemas import TraceSchema

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
WINDOW = IngestWindow.at(NOW, 90)

junk = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**12), st.floats(allow_nan=False),
    st.text(max_size=12), st.lists(st.integers(), max_size=2),
)  # fmt: skip


def mostly(valid, invalid):
    """Valid values nine times in ten, so that accepted records are common, not rare."""
    return st.integers(0, 9).flatmap(lambda n: invalid if n == 0 else valid)


timestamps = mostly(
    st.datetimes(min_value=datetime(2026, 8, 31), max_value=datetime(2026, 11, 27, 12),
                 timezones=st.sampled_from([UTC])).map(lambda d: d.isoformat()),
    st.one_of(st.sampled_from(["2026-11-27t10:00:00.123456789+02:00", "2026-11-27 10:00:00-05:30",
                               "2026-11-27T10:00:00", "2026-11-27", "2026-13-01T00:00:00Z",
                               "2026-11-27T25:00:00Z", "2026-08-30T00:00:00Z",
                               "2026-08-29T23:59:59Z", "2026-11-27T12:15:00Z",
                               "2026-11-27T12:15:01Z"]), junk),
)  # fmt: skip
tls = mostly(
    st.sampled_from(["TLS1.2", "TLSv1", "TLSv1.1", "tls1_3", "TLS 1.2", "SSLv3", "SSL 3.0",
                     "none", "NONE", None]),
    st.one_of(st.sampled_from(["TLS2.0", "TLSv1.4", "SSL2", "", "tlsv 1.2"]), junk),
)  # fmt: skip
domains = mostly(
    st.sampled_from(["example.org", "Mail.Example.NET.", "xn--bcher-kva.example", "localhost"]),
    st.one_of(st.sampled_from(["-bad.org", "a..b", "ex_ample.org", "bücher.example",
                               "a" * 64 + ".org", ""]), junk),
)  # fmt: skip
# What the text rule is about: controls (C0, DEL, C1 such as NEXT LINE), format characters
# (zero-width space, bidi override, BOM, soft hyphen, a tag beyond U+FFFF), line and paragraph
# separators, whitespace at the ends (ASCII and not), and strings that are not NFC.
tricky = st.sampled_from(
    [
        "\u0085",
        "\u2028",
        "\u2029",
        "\u202e",
        "\u200b",
        "\ufeff",
        "\xad",
        "\U000e0041",
        "\x7f",
        "\x00",
        "\t",
        " ",
        "\u00a0",
        "\u3000",
        "u\u0308",
        "e\u0301",
        "\u00fc",
        "\u212b",
        "A",
        "HQ",
    ]
)
texts = mostly(
    st.one_of(st.text(max_size=140), st.lists(tricky | st.text(max_size=3), max_size=8).map("".join)),
    junk,
)  # fmt: skip
records = st.fixed_dictionaries(
    {"timestamp": timestamps,
     "direction": mostly(st.sampled_from(["inbound", "outbound"]), junk),
     "tls_version": tls},
    optional={
        "id": texts, "connector": mostly(st.sampled_from(["Partner A", "HQ"]),
                            st.sampled_from(["HQ ", " HQ", "HQ\u200b", "Partner\u00a0A"]) | texts),
        "connector_type": mostly(st.sampled_from(["partner", "onpremises"]), junk),
        "cipher": texts, "message_id": texts, "auth_user": texts, "sender_domain": domains,
        "recipient_domain": domains, "remote_host": domains,
        "remote_ip": mostly(st.sampled_from(["192.0.2.1", "[2001:db8::1]", "2001:DB8::1",
                                             "::ffff:1.2.3.4"]), st.one_of(st.just("1.2.3"), junk)),
        "size_bytes": mostly(st.integers(0, 10**9), junk),
        "tls_auth": mostly(st.sampled_from(["verified", "trusted", "untrusted", "anonymous"]),
                           st.sampled_from(["Verified", "", "dane"]) | junk),
        "tls_policy": mostly(st.sampled_from(["dane", "DANE-only", "mta-sts", "STS", "verify",
                                              "fingerprint", "secure", "encrypt", "may", "none",
                                              " May "]),
                             st.sampled_from(["", "dane?", "x" * 40, "optional"]) | junk),
        "tls_downgraded": mostly(st.booleans(), junk),
        "outcome": mostly(st.sampled_from(["delivered", "blocked"]),
                          st.sampled_from(["Blocked", "deferred"]) | junk),
        "blocked_reason": mostly(st.sampled_from(["TLS is required, but was not offered",
                                                  "Server certificate not verified"]), texts),
        "surprise": junk,
    },
)  # fmt: skip


def _schema_result(record):
    try:
        return TraceSchema(window=WINDOW).load(record)
    except ValidationError:
        return None


def _fast_result(record):
    try:
        return normalize_trace(record, WINDOW)
    except TraceError:
        return None


@settings(max_examples=1500, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(records)
def test_fast_path_agrees_with_the_schema(record):
    fast, reference = _fast_result(record), _schema_result(record)
    assert (fast is None) == (reference is None), (record, fast, reference)
    if fast is not None:
        day = reference.pop("_day")
        assert fast.record == reference
        assert fast.day == day
        assert_text_rule(fast.record)


def assert_text_rule(record: dict) -> None:
    """Every accepted string is NFC, without controls, format characters or line and
    paragraph separators; names and ids have no whitespace at either end."""
    for name, value in record.items():
        if isinstance(value, str):
            assert unicodedata.is_normalized("NFC", value), (name, value)
            assert not {unicodedata.category(c) for c in value} & {"Cc", "Cf", "Zl", "Zp"}
            if name in ("id", "connector", "cipher"):
                assert value == value.strip(), (name, value)


@pytest.mark.parametrize("record", [
    {"timestamp": "2026-11-27T10:00:00Z", "direction": "inbound", "tls_version": "TLSv1.2"},
    {"timestamp": "2026-11-27T10:00:00Z", "direction": "inbound", "tls_version": None,
     "connector": "HQ", "connector_type": "onpremises", "remote_ip": "2001:DB8::1"},
])  # fmt: skip
def test_the_property_is_not_vacuous(record):
    assert _fast_result(record) is not None and _schema_result(record) is not None
