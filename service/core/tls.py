"""TLS versions: the canonical names mailflow reports, and the spellings it accepts."""

from __future__ import annotations

import re
from functools import lru_cache

# Report order: strongest first, unencrypted last.
TLS_VERSIONS: tuple[str, ...] = ("TLS1.3", "TLS1.2", "TLS1.1", "TLS1.0", "SSL3", "none")

# "TLSv1.2", "TLS 1.2", "tls1_2", "TLSv1" (Postfix's name for 1.0), "SSLv3", "SSL 3.0" ...
_SPELLING = re.compile(r"^(tls|ssl)\s*v?\s*(\d)(?:[._](\d))?$")
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
    match = _SPELLING.match(key)
    if match is None:
        return None
    family, major, minor = match.groups()
    return _CANONICAL.get((family, major, minor or "0"))
