"""The connector report as CSV: Microsoft's columns and headers (plus TLS 1.3), spreadsheet-safe."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from service.core.connectors import ConnectorRow, security_columns, tls_split

HEADER: tuple[str, ...] = (
    "Date", "Connector direction and name", "Connector type", "Forced TLS?",
    "No TLS %", "TLS 1.0 %", "TLS 1.1 %", "TLS 1.2 %", "TLS 1.3 %", "Volume", "SSL 3.0 %",
)  # fmt: skip
# Transport security, after Microsoft's columns so theirs keep their positions.
HEADER += ("Authenticated %", "DANE %", "MTA-STS %", "Encrypted only %", "Blocked")
_SECURITY_COLUMNS = ("authenticated_percent", "dane_percent", "mta_sts_percent",
                     "encrypted_only_percent")  # fmt: skip
_PERCENT_COLUMNS = ("none", "TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3")
_TYPE_NAMES = {"partner": "Partner", "onpremises": "OnPremises"}
# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """Neutralise formula injection: such a cell is shown as text, with a leading apostrophe."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def csv_cells(row: ConnectorRow, window_label: str) -> list[str]:
    split = tls_split(row.counts)
    name = row.name if row.name is not None else "(no connector)"
    label = f"{row.direction.capitalize()} - {name}"
    cells = [
        row.date or window_label, label, _TYPE_NAMES.get(row.type or "", ""),
        "Yes" if row.forced_tls else "No",
        *(f"{split[v]['percent']:.1f}" for v in _PERCENT_COLUMNS),
        str(sum(row.counts)), f"{split.get('SSL3', {'percent': 0.0})['percent']:.1f}",
    ]  # fmt: skip
    security = security_columns(row)
    cells += [*(f"{security[c]:.1f}" for c in _SECURITY_COLUMNS), str(row.blocked)]
    return [safe_cell(cell) for cell in cells]


def csv_lines(
    rows: Iterable[ConnectorRow], window_label: str, chunk_rows: int = 500
) -> Iterator[str]:
    """The CSV text in chunks of rows, for a streamed response."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    pending = 0
    for row in rows:
        writer.writerow(csv_cells(row, window_label))
        pending += 1
        if pending >= chunk_rows:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue()
