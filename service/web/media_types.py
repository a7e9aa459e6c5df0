"""Which representation a request asks for, decided once for every lane that answers it.

Media types are case-insensitive (RFC 9110 §8.3.1) and an Accept header may carry wildcards
and q-values, so ``"text/csv" in accept`` is not a test: ``Text/Csv``, ``TEXT/CSV`` and
``text/*`` ask for CSV too, and ``text/csv;q=0`` refuses it. Both the Flask views and the
cached-read lane call ``prefers_csv`` with the raw header, so they always agree.
"""

from __future__ import annotations

from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

JSON = "application/json"
CSV = "text/csv"


def prefers_csv(accept: str | None) -> bool:
    """True when the Accept header ranks CSV above JSON (JSON wins ties and no header)."""
    if not accept:
        return False
    return parse_accept_header(accept, MIMEAccept).best_match([JSON, CSV]) == CSV
