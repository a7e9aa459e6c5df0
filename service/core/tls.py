"""TLS versions: the canonical names mailflow reports, and the spellings it accepts."""

from __future__ import annotations

import re
from functools import lru_cache

# Report order: strongest first, unencrypted last.
TLS_VERSIONS: tuple[str, ...] = ("TLS1.3", "TLS1.2", "TLS1.1", "TLS1.0", "SSL3", "none")

# The one list of spellings, for the API and the log readers alike (``service.ingest``): what
# mail servers and clients write. Postfix and OpenSSL say "TLSv1.2" and "TLSv1" for TLS 1.0,
# newer OpenSSL builds of Exim and GnuTLS "TLS1.2", very old logs "SSLv3"; people write
# "TLS 1.2", "tls1_2", "SSL 3.0". Case and whitespace anywhere do not matter.
_SPELLING = re.compile(r"(tls|ssl)v?(\d)(?:[._](\d))?")
_CANONICAL = {
    ("tls", "1", "0"): "TLS1.0",
    ("tls", "1", "1"): "TLS1.1",
    ("tls", "1", "2"): "TLS1.2",
    ("tls", "1", "3"): "TLS1.3",
    ("ssl", "3", "0"): "SSL3",
}
_NONE_SPELLINGS = frozenset({"none", "no", "plaintext", "cleartext"})


@lru_cache(maxsize=1024)
def canonical_tls_version(value: str | None) -> str | None:
    """The canonical name of a TLS version spelling, ``none`` for null; None if unknown."""
    if value is None:
        return "none"
    key = value.strip().lower()
    if key in _NONE_SPELLINGS:
        return "none"
    match = _SPELLING.fullmatch("".join(key.split()))
    if match is None:
        return None
    family, major, minor = match.groups()
    return _CANONICAL.get((family, major, minor or "0"))
