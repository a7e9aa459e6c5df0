"""One list of TLS spellings: what the log readers take, the API takes, and the other way."""

from __future__ import annotations

import pytest

from service.core.tls import canonical_tls_version
from service.ingest.traces import canonical_tls


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        # Logged by mail servers: Postfix and OpenSSL, GnuTLS and newer Exim, old logs.
        ("TLSv1", "TLS1.0"),
        ("TLSv1.2", "TLS1.2"),
        ("TLS1.3", "TLS1.3"),
        ("SSLv3", "SSL3"),
        ("ssl3.0", "SSL3"),
        # Written by people: spaces and underscores, anywhere.
        ("TLS 1.2", "TLS1.2"),
        ("tls1_2", "TLS1.2"),
        ("SSL 3.0", "SSL3"),
        ("TLS v1 .2", "TLS1.2"),
        (" TLSv1.1\t", "TLS1.1"),
        ("tls\tv1.3", "TLS1.3"),
        # No TLS at all.
        ("none", "none"),
        ("Plaintext", "none"),
        # Nobody's version: Exim's test spelling, versions that do not exist.
        ("TLS1.x", None),
        ("TLSv9.9", None),
        ("TLS2.0", None),
    ],
)
def test_the_api_and_the_log_readers_read_a_spelling_alike(
    spelling: str, canonical: str | None
) -> None:
    assert canonical_tls_version(spelling) == canonical
    assert canonical_tls(spelling) == canonical
